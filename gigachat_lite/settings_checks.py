"""The checks behind :class:`~gigachat_lite.config.Config`: each takes a raw value and names the setting it refuses.

A bad value is a :class:`ValueError` or :class:`TypeError` whose message names
the setting; a secret's value is never echoed.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional, Tuple, Union
from urllib.parse import urlsplit

__all__ = [
    "api_key", "secret", "choice", "api_version", "url", "model", "path", "cert", "flag", "seconds", "timeout",
    "count", "store_url", "slots", "size", "optional_seconds", "proxy", "hide_password", "Timeout", "CertArg",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024  # bytes in one stream event (or line): far above any real one
API_VERSIONS = ("v1", "v2")  # the chat contracts: /api/v1/chat/completions and /api/v2/chat/completions

Timeout = Union[float, Tuple[float, float]]
CertArg = Union[str, Tuple[str, str]]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_PROXY_SCHEMES = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"}


def api_key(value: Any) -> Optional[str]:
    key = secret(value, "api_key")
    if key is not None and key[:6].lower() == "basic ":
        key = key[6:].strip()  # users paste the whole header value from the Sber console
    return key


def api_version(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"api_version must be 'v1' or 'v2', got {type(value).__name__}")
    if value.strip().lower() not in API_VERSIONS:
        raise ValueError(f"api_version (GIGACHAT_API_VERSION) must be 'v1' or 'v2', got {value!r}")
    return value.strip().lower()


def choice(value: Any, name: str, choices: Tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def secret(value: Any, name: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    text: str = value.strip()
    if not text:
        return None
    # A control character would split the Authorization header; the value is not echoed.
    if any((ord(c) < 0x20 or ord(c) == 0x7F) for c in text):
        raise ValueError(f"{name} contains a control character (the value is not shown)")
    return text


def url(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str URL, got {type(value).__name__}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL with a host, got {value!r}")
    return value.strip().rstrip("/")


def model(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"model must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("model must be a non-empty str")
    return value.strip()


def path(value: Any, name: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(value).__name__}")
    path = os.fspath(value)
    if not os.path.exists(path):
        raise ValueError(f"{name}: no such file: {path}")
    return path


def cert(value: Any) -> Optional[CertArg]:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return path(value, "cert")
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (path(value[0], "cert (certificate file)") or "", path(value[1], "cert (key file)") or "")
    raise TypeError("cert must be a path or a (cert_file, key_file) pair")


def flag(value: Any, name: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}")


def seconds(value: Any, name: str, default: float, *, allow_zero: bool = False) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if math.isnan(number) or math.isinf(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number of seconds, got {value!r}")
    return number


def timeout(value: Any) -> Timeout:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError("timeout must be seconds or a (connect, read) pair")
        return (seconds(value[0], "timeout (connect)", DEFAULT_TIMEOUT), seconds(value[1], "timeout (read)", DEFAULT_TIMEOUT))
    return seconds(value, "timeout", DEFAULT_TIMEOUT)


def count(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a non-negative int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def store_url(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    # Lazy: the coordination package (uuid, the stores) is imported only by those who set it.
    from .coordination.opener import check_store_url

    return check_store_url(value)


def slots(value: Any, name: str) -> Optional[int]:
    if value is None or value == "":
        return None
    number = count(value, name, 0)
    if number < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return number


def size(value: Any, name: str, default: int) -> int:
    number = count(value, name, default)
    if number == 0:
        raise ValueError(f"{name} must be a positive number of bytes, got 0")
    return number


def optional_seconds(value: Any, name: str) -> Optional[float]:
    """``None`` (no limit) or a positive number of seconds."""
    return None if value is None else seconds(value, name, 0.0)


def proxy(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"proxy must be a str URL, got {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"proxy must be a URL like http://host:port, got {hide_password(value)!r}")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"proxy has a bad port: {hide_password(value)!r}") from None
    if parts.scheme.startswith("socks"):
        try:
            import socks  # type: ignore[import-untyped]  # noqa: F401  (PySocks: what requests needs for SOCKS)
        except ImportError:
            raise ValueError("proxy: a SOCKS proxy needs PySocks (pip install 'requests[socks]')") from None
    return value


def hide_password(url: str) -> str:
    password = urlsplit(url).password
    return url.replace(":" + password + "@", ":***@", 1) if password else url

"""One frozen settings object: argument > ``GIGACHAT_*`` environment variable > default.

Every value is checked here, before any request, and a bad one is a
:class:`ValueError` (or :class:`TypeError`) that names the setting: never its
value when the value is a secret.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from .errors import MissingAuthError

__all__ = ["Config", "DEFAULT_BASE_URL", "DEFAULT_AUTH_URL", "DEFAULT_SCOPE", "SCOPES", "API_VERSIONS"]

DEFAULT_BASE_URL = "https://gigachat.devices.sberbank.ru/api/v1"
DEFAULT_AUTH_URL = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
DEFAULT_SCOPE = "GIGACHAT_API_PERS"
DEFAULT_MODEL = "GigaChat"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_REFRESH_MARGIN = 60.0
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
API_VERSIONS = ("v1", "v2")  # the chat contracts: /api/v1/chat/completions and /api/v2/chat/completions

Timeout = Union[float, Tuple[float, float]]
CertArg = Union[str, Tuple[str, str]]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_PROXY_SCHEMES = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"}


_FIELDS = (
    "api_key", "access_token", "scope", "base_url", "auth_url", "model", "ca_bundle",
    "verify", "cert", "proxy", "timeout", "max_retries", "refresh_margin", "api_version",
)
_SECRET_FIELDS = ("api_key", "access_token")


class Config:
    """Resolved client settings. Build it with :meth:`Config.resolve`.

    Immutable and hashable, so that equal configurations share one connection
    pool and one token; the key and the token are kept out of ``repr()``.
    (A hand-written class rather than a dataclass: ``dataclasses`` imports
    ``inspect``, which would add milliseconds to ``import gigachat_lite``.)
    """

    __slots__ = _FIELDS
    api_key: Optional[str]
    access_token: Optional[str]
    scope: str
    base_url: str
    auth_url: str
    model: str
    ca_bundle: Optional[str]
    verify: bool
    cert: Optional[CertArg]
    proxy: Optional[str]
    timeout: Timeout
    max_retries: int
    refresh_margin: float
    # None: not chosen, so v1 (the default) unless a call uses a v2-only feature (see request_v2.py).
    api_version: Optional[str]

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        access_token: Optional[str] = None,
        scope: str = DEFAULT_SCOPE,
        base_url: str = DEFAULT_BASE_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        model: str = DEFAULT_MODEL,
        ca_bundle: Optional[str] = None,
        verify: bool = True,
        cert: Optional[CertArg] = None,
        proxy: Optional[str] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        api_version: Optional[str] = None,
    ) -> None:
        values = locals()
        for name in _FIELDS:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is immutable; build another with Config.resolve()")

    def _key(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        def show(name: str) -> str:
            value = getattr(self, name)
            if name in _SECRET_FIELDS:
                return f"{name}={'***' if value else None}"
            if name == "proxy" and value:
                return f"proxy={_hide_password(value)!r}"  # http://user:password@host: the password is a secret
            return f"{name}={value!r}"

        shown = ", ".join(show(name) for name in _FIELDS)
        return f"Config({shown})"

    @classmethod
    def resolve(
        cls,
        *,
        api_key: Optional[str] = None,
        access_token: Optional[str] = None,
        scope: Optional[str] = None,
        base_url: Optional[str] = None,
        auth_url: Optional[str] = None,
        model: Optional[str] = None,
        ca_bundle: Optional[str] = None,
        verify: Optional[bool] = None,
        cert: Optional[CertArg] = None,
        proxy: Optional[str] = None,
        timeout: Optional[Timeout] = None,
        max_retries: Optional[int] = None,
        refresh_margin: Optional[float] = None,
        api_version: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> "Config":
        """Merge arguments, environment and defaults, and validate the result.

        Raises:
            MissingAuthError: no key and no access token anywhere.
            ValueError, TypeError: a setting is malformed; the message names it.
        """
        env = os.environ if env is None else env

        def pick(value: Any, *names: str) -> Any:
            if value is not None:
                return value
            for name in names:
                if env.get(name):
                    return env[name]
            return None

        key = _secret(pick(api_key, "GIGACHAT_CREDENTIALS", "GIGACHAT_API_KEY"), "api_key")
        if key is not None and key[:6].lower() == "basic ":
            key = key[6:].strip()  # users paste the whole header value from the Sber console
        token = _secret(pick(access_token, "GIGACHAT_ACCESS_TOKEN"), "access_token")
        if key is None and token is None:
            raise MissingAuthError(
                "no GigaChat credentials: pass api_key= (or set GIGACHAT_CREDENTIALS), "
                "or pass access_token= (or set GIGACHAT_ACCESS_TOKEN)"
            )

        scope_v = pick(scope, "GIGACHAT_SCOPE") or DEFAULT_SCOPE
        if not isinstance(scope_v, str) or scope_v not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope_v!r}")

        cert_v: Optional[CertArg] = cert
        if cert_v is None and env.get("GIGACHAT_CERT_FILE"):
            key_file = env.get("GIGACHAT_KEY_FILE")
            cert_v = (env["GIGACHAT_CERT_FILE"], key_file) if key_file else env["GIGACHAT_CERT_FILE"]

        return cls(
            api_key=key,
            access_token=token,
            scope=scope_v,
            base_url=_url(pick(base_url, "GIGACHAT_BASE_URL") or DEFAULT_BASE_URL, "base_url"),
            auth_url=_url(pick(auth_url, "GIGACHAT_AUTH_URL") or DEFAULT_AUTH_URL, "auth_url"),
            model=_model(pick(model, "GIGACHAT_MODEL") or DEFAULT_MODEL),
            ca_bundle=_path(pick(ca_bundle, "GIGACHAT_CA_BUNDLE_FILE"), "ca_bundle"),
            verify=_bool(pick(verify, "GIGACHAT_VERIFY_SSL_CERTS"), "verify", default=True),
            cert=_cert(cert_v),
            proxy=_proxy(proxy),
            timeout=_timeout(pick(timeout, "GIGACHAT_TIMEOUT")),
            max_retries=_count(pick(max_retries, "GIGACHAT_MAX_RETRIES"), "max_retries", DEFAULT_MAX_RETRIES),
            refresh_margin=_seconds(refresh_margin, "refresh_margin", DEFAULT_REFRESH_MARGIN, allow_zero=True),
            api_version=_api_version(pick(api_version, "GIGACHAT_API_VERSION")),
        )

    @property
    def connect_timeout(self) -> float:
        return self.timeout[0] if isinstance(self.timeout, tuple) else self.timeout

    @property
    def read_timeout(self) -> float:
        return self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout


def _api_version(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"api_version must be 'v1' or 'v2', got {type(value).__name__}")
    if value.strip().lower() not in API_VERSIONS:
        raise ValueError(f"api_version (GIGACHAT_API_VERSION) must be 'v1' or 'v2', got {value!r}")
    return value.strip().lower()


def _secret(value: Any, name: str) -> Optional[str]:
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


def _url(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str URL, got {type(value).__name__}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL with a host, got {value!r}")
    return value.strip().rstrip("/")


def _model(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"model must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("model must be a non-empty str")
    return value.strip()


def _path(value: Any, name: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(value).__name__}")
    path = os.fspath(value)
    if not os.path.exists(path):
        raise ValueError(f"{name}: no such file: {path}")
    return path


def _cert(value: Any) -> Optional[CertArg]:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return _path(value, "cert")
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (_path(value[0], "cert (certificate file)") or "", _path(value[1], "cert (key file)") or "")
    raise TypeError("cert must be a path or a (cert_file, key_file) pair")


def _bool(value: Any, name: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    return number


def _seconds(value: Any, name: str, default: float, *, allow_zero: bool = False) -> float:
    if value is None:
        return default
    number = _number(value, name)
    if math.isnan(number) or math.isinf(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number of seconds, got {value!r}")
    return number


def _timeout(value: Any) -> Timeout:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError("timeout must be seconds or a (connect, read) pair")
        return (_seconds(value[0], "timeout (connect)", DEFAULT_TIMEOUT), _seconds(value[1], "timeout (read)", DEFAULT_TIMEOUT))
    return _seconds(value, "timeout", DEFAULT_TIMEOUT)


def _count(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a non-negative int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _proxy(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"proxy must be a str URL, got {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"proxy must be a URL like http://host:port, got {_hide_password(value)!r}")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"proxy has a bad port: {_hide_password(value)!r}") from None
    if parts.scheme.startswith("socks"):
        try:
            import socks  # type: ignore[import-untyped]  # noqa: F401  (PySocks: what requests needs for SOCKS)
        except ImportError:
            raise ValueError("proxy: a SOCKS proxy needs PySocks (pip install 'requests[socks]')") from None
    return value


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@", 1)
    return url

"""The client's settings, each declared once: argument > ``GIGACHAT_*`` environment variable > default.

:class:`Config` declares every field in its class body (type, environment
variables, check); :class:`Options` is the same fields as the typed keywords
every entry point takes (``chat(api_key=...)``, ``Session(timeout=...)``).
Every value is checked here, before any request, and a bad one is a
:class:`ValueError` (or :class:`TypeError`) that names the setting: never its
value when the value is a secret.
"""

# No ``from __future__ import annotations`` here: ConnectionOptions would then hold
# strings, and TypedDict compiles each one into a ForwardRef when the module is imported
# (~1 ms of ``import gigachat_lite``); built from the types themselves they cost a third of that.

import math
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, TypedDict, Union
from urllib.parse import urlsplit

from .errors import MissingAuthError

if TYPE_CHECKING:  # typing_extensions ships with mypy; at run time the annotations stay strings
    from typing_extensions import Unpack

__all__ = [
    "Config", "Options", "ConnectionOptions", "DEFAULT_BASE_URL", "DEFAULT_AUTH_URL", "DEFAULT_SCOPE", "SCOPES", "API_VERSIONS",
    "DEFAULT_MAX_EVENT_SIZE", "DEFAULT_MAX_REPLY_SIZE", "FIELD_NAMES", "LEGACY_BASE_URL", "unknown_keyword", "Timeout", "CertArg", "hide_password",
]

DEFAULT_BASE_URL = "https://api.giga.chat/v1"  # the official SDK's since 0.2.3: GigaChat-3 models live there
LEGACY_BASE_URL = "https://gigachat.devices.sberbank.ru/api/v1"
DEFAULT_AUTH_URL = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
DEFAULT_SCOPE = "GIGACHAT_API_PERS"
DEFAULT_MODEL = "GigaChat"
DEFAULT_MAX_RETRIES = 2
DEFAULT_REFRESH_MARGIN = 60.0
DEFAULT_MAX_COOL_DOWN = 30.0  # the longest Retry-After one call sleeps on (retry.GigaChatRetry.max_wait)
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024  # bytes in one stream event (or line): far above any real one
DEFAULT_MAX_REPLY_SIZE = 64 * 1024 * 1024  # bytes in one whole reply: GigaChat's largest file (a 40 MB document) fits
API_VERSIONS = ("v1", "v2")  # the chat contracts: /api/v1/chat/completions and /api/v2/chat/completions

Timeout = Union[float, Tuple[float, float]]
CertArg = Union[str, Tuple[str, str]]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_PROXY_SCHEMES = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"}


# -- the checks: each takes a raw value and names the setting it refuses (never a secret's value) --


def _api_key(value: Any) -> Optional[str]:
    key = _secret(value, "api_key")
    if key is not None and key[:6].lower() == "basic ":
        key = key[6:].strip()  # users paste the whole header value from the Sber console
    return key


def _api_version(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"api_version must be 'v1' or 'v2', got {type(value).__name__}")
    if value.strip().lower() not in API_VERSIONS:
        raise ValueError(f"api_version (GIGACHAT_API_VERSION) must be 'v1' or 'v2', got {value!r}")
    return value.strip().lower()


def _choice(value: Any, name: str, choices: Tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


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
    try:
        parts = urlsplit(value.strip())
    except ValueError as exc:  # a broken IPv6 address
        raise ValueError(f"{name} is not a URL ({exc})") from None
    if "@" in parts.netloc:
        # Never used (GigaChat takes the key or a token) and it would show in every message and repr.
        raise ValueError(f"{name} must not carry a user or password (the URL is not shown); GigaChat takes "
                         "api_key= or access_token=, and a proxy's password goes in proxy=")
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


def _flag(value: Any, name: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}")


#: The longest any setting in seconds may be: more breaks a socket timeout or a thread's wait.
MAX_SECONDS = 1e9


def _seconds(value: Any, name: str, default: float, *, allow_zero: bool = False) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an int past floats (10**400)
        raise ValueError(f"{name} must be a number of seconds, got {value!r:.40}") from None
    if math.isnan(number) or math.isinf(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number of seconds, got {value!r}")
    if number > MAX_SECONDS:  # sockets, clocks and waits overflow well before 1e300
        raise ValueError(f"{name} must be at most {MAX_SECONDS:.0e} seconds (about 31 years), got {value!r}")
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


def _store_url(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    # Lazy: the coordination package (uuid, the stores) is imported only by those who set it.
    from .coordination.opener import check_store_url

    return check_store_url(value)


def _slots(value: Any, name: str) -> Optional[int]:
    if value is None or value == "":
        return None
    number = _count(value, name, 0)
    if number < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return number


def _size(value: Any, name: str, default: int) -> int:
    number = _count(value, name, default)
    if number == 0:
        raise ValueError(f"{name} must be a positive number of bytes, got 0")
    return number


def _optional_seconds(value: Any, name: str) -> Optional[float]:
    """``None`` (no limit) or a positive number of seconds."""
    return None if value is None else _seconds(value, name, 0.0)


def _proxy(value: Any) -> Optional[str]:
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


def _header(value: Any, name: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{name} must be printable ASCII (it is sent as a header)")
    return value


def _flags(value: Any, name: str) -> Optional[Tuple[str, ...]]:
    if value is None:
        return None
    if isinstance(value, str):  # GIGACHAT_FLAGS=a,b
        value = [flag.strip() for flag in value.split(",") if flag.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(flag, str) and flag for flag in value):
        raise TypeError(f"{name} must be a list of str (or a comma-separated str), got {value!r}")
    return tuple(value)


def _optional_flag(value: Any, name: str) -> Optional[bool]:
    return None if value is None or value == "" else _flag(value, name, default=False)


# Names the official SDK (and others) give settings we name differently: refused with ours named.
_OTHER_NAMES = {
    "credentials": "api_key", "verify_ssl_certs": "verify", "ca_bundle_file": "ca_bundle",
    "cert_file": "cert (a path, or a (cert_file, key_file) pair)", "key_file": "cert=(cert_file, key_file)",
    "max_connections": "max_concurrency", "api_key_file": "api_key",
}


def unknown_keyword(name: str, known: Any, other_names: Optional[Mapping[str, str]] = None) -> TypeError:
    """The error for a keyword nobody takes: naming ours when it is another client's name, else the closest."""
    import difflib  # only on a mistake: difflib costs ~2 ms at import time

    names = {**_OTHER_NAMES, **(other_names or {})}
    if name in names:
        return TypeError(f"{name!r} is not a gigachat_lite setting: it is called {names[name]} here")
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else " (body settings GigaChat knows and gigachat_lite does not go in extra_body=)"
    return TypeError(f"unexpected keyword argument {name!r}{hint}")


def hide_password(url: str) -> str:
    password = urlsplit(url).password
    return url.replace(":" + password + "@", ":***@", 1) if password else url


class ConnectionOptions(TypedDict, total=False):
    """The configuration keywords besides ``model`` (see :class:`Config` for each one's variable)."""

    api_key: Optional[str]
    access_token: Optional[str]
    user: Optional[str]
    password: Optional[str]
    scope: Optional[str]
    base_url: Optional[str]
    auth_url: Optional[str]
    ca_bundle: Optional[str]
    verify: Optional[bool]
    coordination: Optional[str]
    coordination_fallback: Optional[bool]
    max_concurrency: Optional[int]
    max_cool_down: Optional[float]
    cert: Optional[CertArg]
    proxy: Optional[str]
    timeout: Optional[Timeout]
    max_retries: Optional[int]
    refresh_margin: Optional[float]
    api_version: Optional[str]
    deadline: Optional[float]
    first_byte_timeout: Optional[float]
    max_event_size: Optional[int]
    max_reply_size: Optional[int]
    session_id: Optional[str]
    client_id: Optional[str]
    trace_id: Optional[str]
    flags: Optional[Sequence[str]]
    profanity_check: Optional[bool]


class Options(ConnectionOptions, total=False):
    """Every configuration keyword: :class:`ConnectionOptions` and the default ``model``."""

    model: Optional[str]


class _Field(NamedTuple):
    """How one setting resolves: its environment variables, then its check (which applies the default)."""

    env: Tuple[str, ...]
    check: Callable[[Any, str], Any]
    secret: bool


def _field(*env: str, check: Callable[[Any, str], Any], secret: bool = False) -> Any:
    # Typed Any so that ``api_key: Optional[str] = _field(...)`` declares the attribute's type.
    return _Field(env, check, secret)


class Config:
    """Resolved client settings. Build it with :meth:`Config.resolve`.

    Immutable and hashable, so that equal configurations share one connection
    pool and one token; the key and the token are kept out of ``repr()``.
    (A hand-written class rather than a dataclass: ``dataclasses`` imports
    ``inspect``, which would add milliseconds to ``import gigachat_lite``.)
    """

    # Each field, once: its type, the variables it falls back to, its check and default.
    api_key: Optional[str] = _field("GIGACHAT_CREDENTIALS", "GIGACHAT_API_KEY", check=lambda v, n: _api_key(v), secret=True)
    access_token: Optional[str] = _field("GIGACHAT_ACCESS_TOKEN", check=lambda v, n: _secret(v, n), secret=True)
    # User and password auth (POST {base_url}/token, Basic), as the official SDK does it: used when there is no key.
    user: Optional[str] = _field("GIGACHAT_USER", check=lambda v, n: _secret(v, n))
    password: Optional[str] = _field("GIGACHAT_PASSWORD", check=lambda v, n: _secret(v, n), secret=True)
    scope: str = _field("GIGACHAT_SCOPE", check=lambda v, n: _choice(v or DEFAULT_SCOPE, n, SCOPES))
    base_url: str = _field("GIGACHAT_BASE_URL", check=lambda v, n: _url(v or DEFAULT_BASE_URL, n))
    auth_url: str = _field("GIGACHAT_AUTH_URL", check=lambda v, n: _url(v or DEFAULT_AUTH_URL, n))
    model: str = _field("GIGACHAT_MODEL", check=lambda v, n: DEFAULT_MODEL if v is None else _model(v))
    ca_bundle: Optional[str] = _field("GIGACHAT_CA_BUNDLE_FILE", check=lambda v, n: _path(v, n))
    verify: bool = _field("GIGACHAT_VERIFY_SSL_CERTS", check=lambda v, n: _flag(v, n, default=True))
    # Sharing the token, the in-flight limit and 429 pauses with other workers (issue 11);
    # None: this process alone, as before. max_concurrency None: GigaChat's per-scope limit.
    coordination: Optional[str] = _field("GIGACHAT_COORDINATION", check=lambda v, n: _store_url(v))
    coordination_fallback: bool = _field("GIGACHAT_COORDINATION_FALLBACK", check=lambda v, n: _flag(v, n, default=False))
    max_concurrency: Optional[int] = _field("GIGACHAT_MAX_CONCURRENCY", check=lambda v, n: _slots(v, n))
    # The longest pause one 429's Retry-After imposes on the other workers (issue 20, item 9); 0: none.
    max_cool_down: float = _field("GIGACHAT_MAX_COOL_DOWN", check=lambda v, n: _seconds(v, n, DEFAULT_MAX_COOL_DOWN, allow_zero=True))
    cert: Optional[CertArg] = _field("GIGACHAT_CERT_FILE", check=lambda v, n: _cert(v))  # + GIGACHAT_KEY_FILE
    proxy: Optional[str] = _field(check=lambda v, n: _proxy(v))  # requests reads HTTPS_PROXY itself
    timeout: Timeout = _field("GIGACHAT_TIMEOUT", check=lambda v, n: _timeout(v))
    max_retries: int = _field("GIGACHAT_MAX_RETRIES", check=lambda v, n: _count(v, n, DEFAULT_MAX_RETRIES))
    refresh_margin: float = _field(check=lambda v, n: _seconds(v, n, DEFAULT_REFRESH_MARGIN, allow_zero=True))
    # None: not chosen, so v1 unless a call uses a v2-only feature (see _chat/request.py).
    api_version: Optional[str] = _field("GIGACHAT_API_VERSION", check=lambda v, n: _api_version(v))
    # Whole-call bounds (see deadline.py): None is no bound, and costs nothing.
    deadline: Optional[float] = _field("GIGACHAT_DEADLINE", check=lambda v, n: _optional_seconds(v, n))
    first_byte_timeout: Optional[float] = _field("GIGACHAT_FIRST_BYTE_TIMEOUT", check=lambda v, n: _optional_seconds(v, n))
    max_event_size: int = _field("GIGACHAT_MAX_EVENT_SIZE", check=lambda v, n: _size(v, n, DEFAULT_MAX_EVENT_SIZE))
    max_reply_size: int = _field("GIGACHAT_MAX_REPLY_SIZE", check=lambda v, n: _size(v, n, DEFAULT_MAX_REPLY_SIZE))
    # Ids sent with every call of the session (a call may give its own): X-Session-ID is
    # GigaChat's key for prompt caching; the client and trace ids are for the caller's logs.
    session_id: Optional[str] = _field("GIGACHAT_SESSION_ID", check=lambda v, n: _header(v, n))
    client_id: Optional[str] = _field("GIGACHAT_CLIENT_ID", check=lambda v, n: _header(v, n))
    trace_id: Optional[str] = _field("GIGACHAT_TRACE_ID", check=lambda v, n: _header(v, n))
    # Body defaults for every chat of the session (a call's own value wins).
    flags: Optional[Tuple[str, ...]] = _field("GIGACHAT_FLAGS", check=lambda v, n: _flags(v, n))
    profanity_check: Optional[bool] = _field("GIGACHAT_PROFANITY_CHECK", check=lambda v, n: _optional_flag(v, n))

    def __init__(self, **values: "Unpack[Options]") -> None:
        given: Dict[str, Any] = dict(values)
        unknown = set(given) - set(_FIELDS)
        if unknown:
            raise TypeError(f"unknown setting {sorted(unknown)[0]!r}")
        for name, field in _FIELDS.items():
            object.__setattr__(self, name, given[name] if name in given else field.check(None, name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is immutable; build another with Config.resolve()")

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._values() == other._values()

    def __hash__(self) -> int:
        # Hashed on every chat() call (the shared session is found by it): immutable, so hashed once.
        cached: Optional[int] = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(self._values())
            object.__setattr__(self, "_hash", cached)
        return cached

    def __repr__(self) -> str:
        def show(name: str) -> str:
            value = getattr(self, name)
            if _FIELDS[name].secret:
                return f"{name}={'***' if value else None}"
            if name in ("proxy", "coordination") and value:
                return f"{name}={hide_password(value)!r}"  # scheme://user:password@host: the password is a secret
            return f"{name}={value!r}"

        return f"Config({', '.join(show(name) for name in _FIELDS)})"

    @classmethod
    def resolve(cls, *, env: Optional[Mapping[str, str]] = None, **options: "Unpack[Options]") -> "Config":
        """Merge arguments, environment and defaults, and validate the result.

        Raises:
            MissingAuthError: no key and no access token anywhere.
            ValueError, TypeError: a setting is malformed; the message names it.
        """
        key = None
        if env is None:
            env = os.environ
            # chat(..., **settings) resolves on every call: the same arguments and
            # variables give the same Config, so it is built once (files rechecked).
            try:
                key = (tuple(sorted(options.items())), _variables())
                hit = _RESOLVED.get(key)
            except TypeError:  # an unhashable argument: resolved, and refused or not, the long way
                key = hit = None
            if hit is not None and all(map(os.path.exists, _files(hit))):
                return hit
        given: Dict[str, Any] = dict(options)
        unknown = set(given) - set(_FIELDS)
        if unknown:
            raise unknown_keyword(sorted(unknown)[0], _FIELDS)
        values: Dict[str, Any] = {}
        for name, field in _FIELDS.items():
            value = given.get(name)
            if value is None:
                value = next((env[var] for var in field.env if env.get(var)), None)
                if name == "cert" and value is not None and env.get("GIGACHAT_KEY_FILE"):
                    value = (value, env["GIGACHAT_KEY_FILE"])
            values[name] = field.check(value, name)
        if values["api_key"] is None and values["access_token"] is None and not (values["user"] and values["password"]):
            raise MissingAuthError(
                "no GigaChat credentials: pass api_key= (or set GIGACHAT_CREDENTIALS), "
                "access_token= (or GIGACHAT_ACCESS_TOKEN), or user= and password= (or GIGACHAT_USER and GIGACHAT_PASSWORD)"
            )
        config = cls(**values)
        if key is not None:
            if len(_RESOLVED) >= 64:
                _RESOLVED.clear()
            _RESOLVED[key] = config
        return config

    @classmethod
    def check(cls, name: str, value: Any) -> Any:
        """One setting checked on its own (a per-call ``model`` or ``api_version``); ``None`` stays ``None``."""
        return None if value is None else _FIELDS[name].check(value, name)

    @property
    def connect_timeout(self) -> float:
        return self.timeout[0] if isinstance(self.timeout, tuple) else self.timeout

    @property
    def read_timeout(self) -> float:
        return self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout


_FIELDS: Dict[str, _Field] = {name: value for name, value in vars(Config).items() if isinstance(value, _Field)}
for _name in _FIELDS:
    delattr(Config, _name)  # instances hold the values; the class keeps no stale _Field defaults
FIELD_NAMES = tuple(_FIELDS)
_ENV_NAMES = tuple(var for field in _FIELDS.values() for var in field.env) + ("GIGACHAT_KEY_FILE",)
_RESOLVED: Dict[Any, Config] = {}  # Config.resolve's results by (arguments, variables)


def _variables() -> Tuple[Optional[str], ...]:
    """The values of every variable a Config reads."""
    return tuple(map(os.environ.get, _ENV_NAMES))


def forget_resolved() -> None:
    """Drop the remembered :meth:`Config.resolve` results (for :func:`gigachat_lite.reset`)."""
    _RESOLVED.clear()


def _files(config: Config) -> Tuple[str, ...]:
    """The files a Config names, which must still exist for a remembered Config to stand."""
    cert = config.cert
    return tuple(f for f in (config.ca_bundle, *(cert if isinstance(cert, tuple) else (cert,))) if f)

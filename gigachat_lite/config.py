"""The client's settings, each declared once: argument > ``GIGACHAT_*`` environment variable > default.

:class:`Config` declares every field in its class body (type, environment
variables, check); :class:`Options` is the same fields as the typed keywords
every entry point takes (``chat(api_key=...)``, ``Session(timeout=...)``).
Every value is checked here, before any request, and a bad one is a
:class:`ValueError` (or :class:`TypeError`) that names the setting: never its
value when the value is a secret.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, NamedTuple, Optional, Tuple, TypedDict

import gigachat_lite.settings_checks as checks  # the module: each field names its check
from .errors import MissingAuthError
from .settings_checks import API_VERSIONS, CertArg, Timeout

if TYPE_CHECKING:  # typing_extensions ships with mypy; at run time the annotations stay strings
    from typing_extensions import Unpack

__all__ = [
    "Config", "Options", "ConnectionOptions", "DEFAULT_BASE_URL", "DEFAULT_AUTH_URL", "DEFAULT_SCOPE", "SCOPES", "API_VERSIONS",
]

DEFAULT_BASE_URL = "https://gigachat.devices.sberbank.ru/api/v1"
DEFAULT_AUTH_URL = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
DEFAULT_SCOPE = "GIGACHAT_API_PERS"
DEFAULT_MODEL = "GigaChat"
DEFAULT_MAX_RETRIES = 2
DEFAULT_REFRESH_MARGIN = 60.0
DEFAULT_MAX_COOL_DOWN = 30.0  # the longest Retry-After one call sleeps on (retry.GigaChatRetry.max_wait)
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")



class ConnectionOptions(TypedDict, total=False):
    """The configuration keywords besides ``model`` (see :class:`Config` for each one's variable)."""

    api_key: Optional[str]
    access_token: Optional[str]
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
    api_key: Optional[str] = _field("GIGACHAT_CREDENTIALS", "GIGACHAT_API_KEY", check=lambda v, n: checks.api_key(v), secret=True)
    access_token: Optional[str] = _field("GIGACHAT_ACCESS_TOKEN", check=lambda v, n: checks.secret(v, n), secret=True)
    scope: str = _field("GIGACHAT_SCOPE", check=lambda v, n: checks.choice(v or DEFAULT_SCOPE, n, SCOPES))
    base_url: str = _field("GIGACHAT_BASE_URL", check=lambda v, n: checks.url(v or DEFAULT_BASE_URL, n))
    auth_url: str = _field("GIGACHAT_AUTH_URL", check=lambda v, n: checks.url(v or DEFAULT_AUTH_URL, n))
    model: str = _field("GIGACHAT_MODEL", check=lambda v, n: checks.model(v or DEFAULT_MODEL))
    ca_bundle: Optional[str] = _field("GIGACHAT_CA_BUNDLE_FILE", check=lambda v, n: checks.path(v, n))
    verify: bool = _field("GIGACHAT_VERIFY_SSL_CERTS", check=lambda v, n: checks.flag(v, n, default=True))
    # Sharing the token, the in-flight limit and 429 pauses with other workers (issue 11);
    # None: this process alone, as before. max_concurrency None: GigaChat's per-scope limit.
    coordination: Optional[str] = _field("GIGACHAT_COORDINATION", check=lambda v, n: checks.store_url(v))
    coordination_fallback: bool = _field("GIGACHAT_COORDINATION_FALLBACK", check=lambda v, n: checks.flag(v, n, default=False))
    max_concurrency: Optional[int] = _field("GIGACHAT_MAX_CONCURRENCY", check=lambda v, n: checks.slots(v, n))
    # The longest pause one 429's Retry-After imposes on the other workers (issue 20, item 9); 0: none.
    max_cool_down: float = _field("GIGACHAT_MAX_COOL_DOWN", check=lambda v, n: checks.seconds(v, n, DEFAULT_MAX_COOL_DOWN, allow_zero=True))
    cert: Optional[CertArg] = _field("GIGACHAT_CERT_FILE", check=lambda v, n: checks.cert(v))  # + GIGACHAT_KEY_FILE
    proxy: Optional[str] = _field(check=lambda v, n: checks.proxy(v))  # requests reads HTTPS_PROXY itself
    timeout: Timeout = _field("GIGACHAT_TIMEOUT", check=lambda v, n: checks.timeout(v))
    max_retries: int = _field("GIGACHAT_MAX_RETRIES", check=lambda v, n: checks.count(v, n, DEFAULT_MAX_RETRIES))
    refresh_margin: float = _field(check=lambda v, n: checks.seconds(v, n, DEFAULT_REFRESH_MARGIN, allow_zero=True))
    # None: not chosen, so v1 unless a call uses a v2-only feature (see request_v2.py).
    api_version: Optional[str] = _field("GIGACHAT_API_VERSION", check=lambda v, n: checks.api_version(v))
    # Whole-call bounds (see deadline.py): None is no bound, and costs nothing.
    deadline: Optional[float] = _field("GIGACHAT_DEADLINE", check=lambda v, n: checks.optional_seconds(v, n))
    first_byte_timeout: Optional[float] = _field("GIGACHAT_FIRST_BYTE_TIMEOUT", check=lambda v, n: checks.optional_seconds(v, n))
    max_event_size: int = _field("GIGACHAT_MAX_EVENT_SIZE", check=lambda v, n: checks.size(v, n, checks.DEFAULT_MAX_EVENT_SIZE))

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
        return hash(self._values())

    def __repr__(self) -> str:
        def show(name: str) -> str:
            value = getattr(self, name)
            if _FIELDS[name].secret:
                return f"{name}={'***' if value else None}"
            if name in ("proxy", "coordination") and value:
                return f"{name}={checks.hide_password(value)!r}"  # scheme://user:password@host: the password is a secret
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
            raise TypeError(f"unexpected keyword argument {sorted(unknown)[0]!r}")
        values: Dict[str, Any] = {}
        for name, field in _FIELDS.items():
            value = given.get(name)
            if value is None:
                value = next((env[var] for var in field.env if env.get(var)), None)
                if name == "cert" and value is not None and env.get("GIGACHAT_KEY_FILE"):
                    value = (value, env["GIGACHAT_KEY_FILE"])
            values[name] = field.check(value, name)
            if name == "access_token" and values["api_key"] is None and values["access_token"] is None:
                raise MissingAuthError(
                    "no GigaChat credentials: pass api_key= (or set GIGACHAT_CREDENTIALS), "
                    "or pass access_token= (or set GIGACHAT_ACCESS_TOKEN)"
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
_ENV_KEYS = tuple(map(os.fsencode, _ENV_NAMES))
_RESOLVED: Dict[Any, Config] = {}  # Config.resolve's results by (arguments, variables)


def _variables() -> Tuple[Any, ...]:
    """The values of every variable a Config reads, as cheaply as the platform allows."""
    # os.environ.get() raises and catches a KeyError inside for each unset variable
    # (~0.7 us each, 14 us for all of them); on POSIX os.environ is a view over the
    # bytes dict _data, which answers the same question with plain lookups.
    data = getattr(os.environ, "_data", None)
    if os.name == "posix" and type(data) is dict:
        return tuple(map(data.get, _ENV_KEYS))
    return tuple(map(os.environ.get, _ENV_NAMES))


def forget_resolved() -> None:
    """Drop the remembered :meth:`Config.resolve` results (for :func:`gigachat_lite.reset`)."""
    _RESOLVED.clear()


def _files(config: Config) -> Tuple[str, ...]:
    """The files a Config names, which must still exist for a remembered Config to stand."""
    cert = config.cert
    return tuple(f for f in (config.ca_bundle, *(cert if isinstance(cert, tuple) else (cert,))) if f)

"""The requests plumbing under :class:`~gigachat_lite.Session`: one place where GigaChat calls meet the network.

:class:`Transport` is a :class:`requests.Session` with the CA bundle mounted
(one shared SSL context per bundle, :mod:`.tls_context`), the retry policy of
:mod:`.retry`, default timeouts, the proxy and :class:`~gigachat_lite.auth.TokenAuth`;
the environment is read as :mod:`.environment` says, and a call whose request
differs from the last only in its body is copied from a template (:mod:`.request_template`).
Plain ``get``/``post`` keep requests' semantics; :meth:`Transport.call` sends one
GigaChat request and raises gigachat_lite's exceptions. With ``coordination`` set,
the token, the key's in-flight slots (a stream's slot goes to its reader) and 429
pauses are shared with every worker on the same store; unset, none of it runs.
"""

from __future__ import annotations

import functools
import json as _json
import logging
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Dict, Hashable, Mapping, Optional, Union

import requests
from urllib3.exceptions import InsecureRequestWarning

from .auth import TOKENS, Token, TokenAuth, TokenStore, fetch_token
from .certs import default_bundle
from .config import Config, Options
from .deadline import Deadline, WatchedAdapter, current
from .environment import EnvironmentSettings
from .errors import AuthenticationError, GigaChatError, error_from_response, translate
from .request_template import Templates
from .retry import retry_policy
from .tls_context import SharedContextAdapter
from .version import __version__

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .coordination.fleet import Coordination
    from .coordination.limiter import Lease

__all__ = ["Transport", "encode_body", "stream_lease", "close_coordination"]

log = logging.getLogger("gigachat_lite")

def encode_body(body: Any) -> bytes:
    """UTF-8 JSON as is: Cyrillic stays 2 bytes a letter instead of a 6-byte ``\\u`` escape."""
    return _json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class Transport(EnvironmentSettings):
    """A requests ``Session`` configured for GigaChat: the base of :class:`~gigachat_lite.Session`.

    Takes the configuration keywords once (see :class:`~gigachat_lite.config.Options`)
    or a ready ``config=``.

    Raises:
        MissingAuthError: no key and no token anywhere.
        ValueError, TypeError: a malformed setting, named in the message.
    """

    def __init__(self, *, config: Optional[Config] = None, **options: "Unpack[Options]") -> None:
        if config is None:
            config = Config.resolve(**options)
        elif options:
            raise TypeError(f"pass config= or configuration keywords, not both (got {', '.join(sorted(options))})")
        super().__init__()
        self.config = config
        if not config.verify:
            warnings.warn(
                "gigachat_lite: TLS certificate verification is OFF (verify=False); "
                "anyone on the network path can read your key and replies",
                InsecureRequestWarning,
                stacklevel=2,
            )
            self.verify: Union[bool, str] = False
        else:
            self.verify = config.ca_bundle or default_bundle()
        self.cert = config.cert
        if config.proxy:
            self.proxies = {"http": config.proxy, "https": config.proxy}
        self.headers["User-Agent"] = f"gigachat_lite/{__version__} {requests.utils.default_user_agent()}"
        self._default_timeout = (config.connect_timeout, config.read_timeout)
        cache_key = (config.auth_url, config.api_key, config.scope)
        cache: TokenStore = TOKENS
        self._coordination: Optional[Coordination] = None
        self._fleet_key: Hashable = None
        if config.coordination is not None:
            self._coordination, self._fleet_key = _coordinate(config)
            cache = self._coordination.tokens
        self.auth = TokenAuth(
            functools.partial(fetch_token, self, config, self._default_timeout) if config.api_key else None,
            cache_key=cache_key,
            access_token=config.access_token,
            margin=config.refresh_margin,
            cache=cache,
        )
        # None sends every call through request() (the tests compare the two paths).
        own = all(getattr(type(self), name) is getattr(Transport, name) for name in _PREPARATION)
        self._templates: Optional[Templates] = Templates() if own else None
        self._mount_adapter()

    def _mount_adapter(self) -> None:
        # The process that made the pools: a forked child gets its own (see request()).
        self._pid = os.getpid()
        retry = retry_policy(self.config.max_retries)
        if self._coordination is not None:
            # A partial, not a bound method: the adapter must not hold the session (no cycle).
            retry.on_rate_limit = functools.partial(
                self._coordination.share_cool_down, self._fleet_key, cap=self.config.max_cool_down)
        bounded = self.config.deadline is not None or self.config.first_byte_timeout is not None
        # 128: a pool smaller than the streams in flight reconnects the surplus every round.
        adapter = (WatchedAdapter if bounded else SharedContextAdapter)(max_retries=retry, pool_connections=4, pool_maxsize=128)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"<gigachat_lite.Session base_url={self.config.base_url!r} scope={self.config.scope!r}>"

    def request(self, method: Union[str, bytes], url: Union[str, bytes], *args: Any, **kwargs: Any) -> requests.Response:
        if self._pid != os.getpid():
            # Forked: the parent's keep-alive sockets are dropped, never closed or
            # read here (each process would read the other's replies).
            self._mount_adapter()
        if len(args) < 7 and kwargs.get("timeout") is None:  # args[6] would be timeout
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        # requests merges request.params into Session.params with merge_setting, whose
        # typing-Protocol isinstance costs ~5 µs a side on Python 3.11, to merge two empty
        # dicts on every call; None merges to the session's params without that.
        if request.params or self.params:
            return super().prepare_request(request)
        params, request.params = request.params, None
        try:
            return super().prepare_request(request)
        finally:
            request.params = params  # the caller's Request is left as it came

    @property
    def token(self) -> Optional[Token]:
        """The access token this session uses now (not fetched), or ``None``."""
        assert isinstance(self.auth, TokenAuth)
        return self.auth.cached()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        stream: bool = False,
        headers: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send ``method`` to ``base_url + path``; return a 2xx response or raise ours.

        This is the one place where GigaChat calls meet the network: every
        endpoint goes through it, so auth, retries and error mapping are shared.
        When coordinating, it first waits out the key's cool-down and takes a
        concurrency slot (within the call's read timeout), and gives the slot
        back once the reply is read; a streamed reply carries it to its reader
        (:func:`stream_lease`).

        Raises:
            ConcurrencyLimitTimeout: no slot freed up within the timeout.
            CoordinationError: the coordination store failed (and no fallback).
        """
        if (self.config.deadline or self.config.first_byte_timeout) and current() is None:
            deadline = Deadline(self.config.deadline, self.config.first_byte_timeout, stream=stream)
            bounded: requests.Response = deadline.run(
                lambda **kw: self.call(method, path, json=json, stream=stream, headers=headers, **kw), kwargs, self._default_timeout)
            return bounded
        lease = None if self._coordination is None else self._take_slot(kwargs.get("timeout"))
        if lease is None:
            return self._send(method, path, json, stream, headers, kwargs)
        try:
            response = self._send(method, path, json, stream, headers, kwargs)
        except BaseException:
            lease.release()
            raise
        if stream:
            response.__dict__[_LEASE] = lease
        else:
            lease.release()  # the body is read already
        return response

    def _take_slot(self, timeout: Any) -> "Lease":
        assert self._coordination is not None
        if timeout is None:
            timeout = self._default_timeout
        # The read timeout is how long the caller will wait for a reply: the wait for a slot fits in it.
        return self._coordination.take_slot(self._fleet_key, float(timeout[1] if isinstance(timeout, tuple) else timeout))

    def _send(
        self, method: str, path: str, json: Any, stream: bool, headers: Optional[Mapping[str, str]], kwargs: Dict[str, Any]
    ) -> requests.Response:
        # v2 chat lives beside base_url (/api/v2 next to /api/v1): its caller passes the whole URL.
        url = path if path.startswith(("https://", "http://")) else self.config.base_url + path
        if json is not None:
            kwargs["data"] = encode_body(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            response = self._request(method, url, stream, headers, kwargs)
        except GigaChatError:
            raise
        except requests.RequestException as exc:
            raise translate(exc, url=url, bundle=self.verify) from exc
        if response.status_code >= 400:
            error = error_from_response(response)
            if response.status_code == 401:
                refreshed = bool(response.history)
                assert isinstance(self.auth, TokenAuth)
                how = "after a token refresh" if refreshed else (
                    "and no key is configured to get a new one" if not self.auth.refreshable else "")
                error = AuthenticationError(
                    f"the access token was refused {how}: {error.message}".replace("  ", " "),
                    status_code=401, request_id=error.request_id, response=response,
                )
            log.debug("%s %s -> %s (request id %s)", method, path, response.status_code, error.request_id)
            raise error
        log.debug("%s %s -> %s (request id %s)", method, path, response.status_code, response.headers.get("x-request-id"))
        return response

    def _request(
        self, method: str, url: str, stream: bool, headers: Optional[Mapping[str, str]], kwargs: Dict[str, Any]
    ) -> requests.Response:
        """``self.request(...)``, with the request copied from a template when only the body differs (request_template.py)."""
        # A forked child goes through request(), which remounts the adapter; so
        # does a session whose request or prepare_request is patched on the instance.
        if self._templates is not None and self._pid == os.getpid() and not self.__dict__.keys() & _PREPARATION:
            response = self._templates.send(self, method, url, stream, headers, kwargs, self._default_timeout)
            if response is not None:
                return response
        return self.request(method, url, stream=stream, headers=headers, **kwargs)


# How a request is prepared: a subclass overriding either gets it called on every request (no templates).
_PREPARATION = ("request", "prepare_request")


_LEASE = "_gigachat_lite_lease"


def stream_lease(response: requests.Response) -> Optional["Lease"]:
    """Take the concurrency lease :meth:`Transport.call` left on a streamed reply (``None`` if none).

    Whoever takes it releases it when the stream ends, as :class:`~gigachat_lite.ChatStream` does.
    """
    lease: Optional[Lease] = response.__dict__.pop(_LEASE, None)
    return lease


def _coordinate(config: Config) -> "tuple[Coordination, Hashable]":
    # Lazy: the coordination package is imported only by sessions that coordinate.
    from .coordination.fleet import coordination_for, identity

    coordination = coordination_for(config.coordination, fallback=config.coordination_fallback, limit=config.max_concurrency)
    return coordination, identity(config.auth_url, config.api_key, config.access_token, config.scope)


def close_coordination() -> None:
    """Close every coordination store this process opened (for :func:`gigachat_lite.reset`)."""
    fleet = sys.modules.get("gigachat_lite.coordination.fleet")
    if fleet is not None:  # never opened: importing it just to close nothing would cost every reset
        fleet.close_all()

"""``Session``: a :class:`requests.Session` that knows GigaChat.

It mounts the CA bundle (Russian Trusted Root CA + certifi by default), an
adapter whose urllib3 ``Retry`` retries 429/5xx and connection failures before
the first byte of a reply, default timeouts, the proxy, and :class:`TokenAuth`.
Plain ``get``/``post`` keep requests' semantics; the GigaChat calls
(:meth:`Session.chat`, ...) raise gigachat_lite's exceptions.
"""

from __future__ import annotations

import json as _json
import logging
import os
import random
import threading
import time
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Union

from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from urllib3.exceptions import InsecureRequestWarning, MaxRetryError, NewConnectionError, TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from . import __version__
from .auth import Token, TokenAuth, oauth_request, parse_token_reply
from .certs import default_bundle
from .config import CertArg, Config, Timeout
from .errors import AuthenticationError, GigaChatError
from .failures import error_from_response, parse_retry_after, translate

__all__ = ["Session", "shared_session"]

log = logging.getLogger("gigachat_lite")

RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
# What urllib's getproxies()/proxy_bypass() read for http(s) URLs (CGI's REQUEST_METHOD disables HTTP_PROXY).
_PROXY_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for name in (base, base.upper())
) + ("REQUEST_METHOD",)


def encode_body(body: Any) -> bytes:
    """UTF-8 JSON as is: Cyrillic stays 2 bytes a letter instead of a 6-byte ``\\u`` escape."""
    return _json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class _Retry(Retry):
    """urllib3's Retry, but a ``Retry-After`` longer than ``max_wait`` is not slept on.

    urllib3 would sleep for whatever the server asks (an hour, if it says so);
    instead we stop retrying and hand the wait to the caller as
    :attr:`RateLimitError.retry_after`.
    """

    max_wait = 30.0

    def get_backoff_time(self) -> float:
        # urllib3 retries the first failure at once; a 429 or 503 retried at once
        # is most likely refused again, so every retry waits (0.5 s, 1 s, 2 s, ...).
        backoff = super().get_backoff_time()
        if backoff == 0 and self.history:
            backoff = min(self.backoff_max, self.backoff_factor + random.random() * self.backoff_jitter)
        return backoff

    def increment(self, method: Optional[str] = None, url: Optional[str] = None, response: Any = None, error: Any = None, _pool: Any = None, _stacktrace: Any = None) -> Retry:  # type: ignore[override]
        if response is not None and error is None:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and wait > self.max_wait:
                raise MaxRetryError(_pool, url or "", None)  # urlopen returns this response as is
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: Optional[BaseHTTPResponse] = None) -> None:
        # urllib3's sleep, plus one INFO record saying how long and why, so that a
        # caller (the command line's "retrying in 2 s after 429") can show the wait.
        wait = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        if not wait:
            wait = self.get_backoff_time()
        if wait > 0:
            reason = _retry_reason(self.history[-1]) if self.history else "a failure"
            log.info("retrying in %.1f s after %s", wait, reason, extra={"retry_in": wait, "retry_reason": reason})
            time.sleep(wait)


def _retry_reason(last: Any) -> str:
    if last.status:
        return str(last.status)
    if isinstance(last.error, NewConnectionError):  # also DNS and unreachable networks
        return "connection refused" if "refused" in str(last.error).lower() else "connection failure"
    if isinstance(last.error, Urllib3Timeout):
        return "timeout"
    return "connection reset" if last.error is not None else "a failure"


def _retry(count: int) -> Retry:
    return _Retry(
        total=count,
        connect=count,
        read=count,
        status=count,
        other=0,
        redirect=0,
        allowed_methods=None,  # POST too: a request that failed before the reply did no work
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.5,
        backoff_jitter=0.25,
        backoff_max=8.0,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 429/5xx comes back and becomes our typed error
        raise_on_redirect=False,
    )


class Session(requests.Session):
    """A requests ``Session`` configured for GigaChat.

    Takes the configuration keywords once (see :meth:`Config.resolve`):
    ``api_key``, ``access_token``, ``scope``, ``base_url``, ``auth_url``,
    ``model``, ``ca_bundle``, ``verify``, ``cert``, ``proxy``, ``timeout``,
    ``max_retries``, ``refresh_margin``; or a ready ``config=``.

    Raises:
        MissingAuthError: no key and no token anywhere.
        ValueError, TypeError: a malformed setting, named in the message.
    """

    def __init__(
        self,
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
        config: Optional[Config] = None,
    ) -> None:
        if config is None:
            config = Config.resolve(
                api_key=api_key, access_token=access_token, scope=scope, base_url=base_url,
                auth_url=auth_url, model=model, ca_bundle=ca_bundle, verify=verify, cert=cert,
                proxy=proxy, timeout=timeout, max_retries=max_retries, refresh_margin=refresh_margin,
            )
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
        adapter = HTTPAdapter(max_retries=_retry(config.max_retries), pool_connections=4, pool_maxsize=64)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.headers["User-Agent"] = f"gigachat_lite/{__version__} {requests.utils.default_user_agent()}"
        self.auth = TokenAuth(
            self._fetch_token if config.api_key else None,
            cache_key=(config.auth_url, config.api_key, config.scope),
            access_token=config.access_token,
            margin=config.refresh_margin,
        )
        self._default_timeout = (config.connect_timeout, config.read_timeout)
        self._proxy_cache: Dict[Any, Dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"<gigachat_lite.Session base_url={self.config.base_url!r} scope={self.config.scope!r}>"

    # -- requests plumbing --------------------------------------------------------

    def request(self, method: Union[str, bytes], url: Union[str, bytes], *args: Any, **kwargs: Any) -> requests.Response:
        if len(args) < 7 and kwargs.get("timeout") is None:  # args[6] would be timeout
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' merge, with two overrides and a cache (see the comments)."""
        proxies = dict(proxies or {})
        per_request_proxies = bool(proxies)
        if self.trust_env:
            for scheme, proxy in self._environ_proxies(url, proxies.get("no_proxy")).items():
                proxies.setdefault(scheme, proxy)
            if verify is True:  # an explicit per-request verify=True keeps requests' meaning
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        if self.config.proxy and not per_request_proxies:
            # requests lets HTTPS_PROXY/HTTP_PROXY override Session.proxies
            # (psf/requests#2018): the proxy= argument must beat the environment.
            proxies = dict(self.proxies)
        return {
            "proxies": merge_setting(proxies, self.proxies),  # type: ignore[no-untyped-call]
            "stream": merge_setting(stream, self.stream),  # type: ignore[no-untyped-call]
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify
            # (psf/requests#3829); the bundle we mounted wins unless this request says otherwise.
            "verify": self.verify if verify is None else verify,
            "cert": merge_setting(cert, self.cert),  # type: ignore[no-untyped-call]
        }

    def _environ_proxies(self, url: Any, no_proxy: Any) -> Dict[str, str]:
        # requests walks the whole environment for proxies on every request
        # (urllib's getproxies()): a quarter of a small call's time. The answer
        # depends only on the origin and a few variables, so cache it on those.
        parts = urlsplit(url if isinstance(url, str) else url.decode())
        key = (parts.scheme, parts.netloc, no_proxy, tuple(os.environ.get(name) for name in _PROXY_VARIABLES))
        found = self._proxy_cache.get(key)
        if found is None:
            found = get_environ_proxies(url, no_proxy=no_proxy)
            if len(self._proxy_cache) > 64:
                self._proxy_cache.clear()
            self._proxy_cache[key] = found
        return found

    # -- auth ------------------------------------------------------------------------

    def _fetch_token(self) -> Token:
        config = self.config
        assert config.api_key is not None
        log.debug("requesting an access token from %s (scope %s)", config.auth_url, config.scope)
        try:
            response = oauth_request(self, config.auth_url, config.api_key, config.scope, self._default_timeout)
        except requests.RequestException as exc:
            raise translate(exc, url=config.auth_url, bundle=self.verify) from exc
        if response.status_code >= 400:
            raise error_from_response(response, oauth=True)
        try:
            token = parse_token_reply(response.json())
        except ValueError as exc:
            raise AuthenticationError(f"unusable OAuth reply from {config.auth_url}: {exc}", status_code=response.status_code) from None
        log.debug("got an access token valid for %.0f s", token.expires_at - token.obtained_at)
        return token

    @property
    def token(self) -> Optional[Token]:
        """The access token this session uses now (not fetched), or ``None``."""
        assert isinstance(self.auth, TokenAuth)
        return self.auth.cached()

    # -- GigaChat calls ----------------------------------------------------------------

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
        """
        url = self.config.base_url + path
        if json is not None:
            kwargs["data"] = encode_body(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            response = self.request(method, url, stream=stream, headers=headers, **kwargs)
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

    def chat(
        self,
        messages: Any,
        *,
        model: Optional[str] = None,
        stream: bool = True,
        update_interval: Optional[float] = None,
        **params: Any,
    ) -> Any:
        """Send a chat; return a :class:`ChatStream` (``stream=True``) or a :class:`ChatReply`.

        ``messages`` is a ``str`` (one user message) or a list of
        ``{"role", "content"}`` dicts. Every other keyword goes into the JSON
        body (``temperature``, ``max_tokens``, ``functions``, ...), ``None``
        values left out. Input is validated before any request.
        """
        from .chat import prepare_chat, send_chat  # chat.py imports this module: import at call time

        body = prepare_chat(messages, model=model or self.config.model, stream=stream, update_interval=update_interval, params=params)
        return send_chat(self, body)

    # The other endpoints live in endpoints.py; these methods only hand it this session.

    def models(self) -> List[Dict[str, Any]]:
        """``GET /models``: the available models as dicts (see :func:`gigachat_lite.models`)."""
        from . import endpoints

        return endpoints.models(session=self)

    def model(self, model_id: str) -> Dict[str, Any]:
        """``GET /models/{id}``; raises :class:`NotFoundError` for an unknown id."""
        from . import endpoints

        return endpoints.model(model_id, session=self)

    def embeddings(self, texts: Any, model: str = "Embeddings") -> Any:
        """``POST /embeddings``: an :class:`Embeddings` with one vector per text, in order."""
        from . import endpoints

        return endpoints.embeddings(texts, model, session=self)

    def tokens_count(self, texts: Any, model: Optional[str] = None) -> List[Any]:
        """``POST /tokens/count``: one :class:`TokenCount` per text (model: this session's)."""
        from . import endpoints

        return endpoints.tokens_count(texts, model, session=self)

    def balance(self) -> Dict[str, int]:
        """``GET /balance``: usage -> tokens left; 403 (post-paid) is :class:`PermissionDeniedError`."""
        from . import endpoints

        return endpoints.balance(session=self)

    def upload_file(self, path_or_fileobj: Any, purpose: str = "general", **options: Any) -> Dict[str, Any]:
        """``POST /files``: upload; ``options`` are ``filename=`` and ``mime_type=``."""
        from . import endpoints

        return endpoints.upload_file(path_or_fileobj, purpose, session=self, **options)

    def files(self) -> List[Dict[str, Any]]:
        """``GET /files``: the uploaded files as dicts."""
        from . import endpoints

        return endpoints.files(session=self)

    def file(self, file_id: str) -> Dict[str, Any]:
        """``GET /files/{id}``; raises :class:`NotFoundError` for an unknown id."""
        from . import endpoints

        return endpoints.file(file_id, session=self)

    def delete_file(self, file_id: str) -> Dict[str, Any]:
        """``POST /files/{id}/delete``: ``{"id": ..., "deleted": True}``."""
        from . import endpoints

        return endpoints.delete_file(file_id, session=self)

    def file_content(self, file_id: str) -> bytes:
        """``GET /files/{id}/content``: the file's bytes."""
        from . import endpoints

        return endpoints.file_content(file_id, session=self)


_SHARED: "OrderedDict[Config, Session]" = OrderedDict()
_SHARED_LOCK = threading.Lock()
_SHARED_MAX = 8


def shared_session(config: Config) -> Session:
    """The process's session for ``config``: one connection pool per configuration.

    A few configurations are kept (least recently used first out); an evicted
    session is closed, which only drops its idle connections.
    """
    with _SHARED_LOCK:
        session = _SHARED.get(config)
        if session is not None:
            _SHARED.move_to_end(config)
            return session
        session = Session(config=config)
        _SHARED[config] = session
        while len(_SHARED) > _SHARED_MAX:
            _, old = _SHARED.popitem(last=False)
            old.close()
        return session

"""``Session``: a :class:`requests.Session` configured for GigaChat, with the API as its methods.

The session mounts the CA bundle (:mod:`._http.certs`), an adapter with one
SSL context per bundle and the retry policy (:mod:`._http.adapter`,
:mod:`._http.retry`), default timeouts, the proxy and token auth
(:class:`~.auth.TokenAuth`). Plain ``get``/``post`` keep requests' semantics;
:meth:`Session.call` sends one GigaChat request and raises gigachat_lite's
exceptions, and every endpoint method (``chat``, ``models``, ``embeddings``,
...) is defined once here, on top of it. :func:`gigachat_lite.chat` and the
other module functions call these methods on a shared session per
configuration (:func:`shared_session`), as ``requests.get`` calls
``Session.request``; :mod:`gigachat_lite.aio` runs the same calls off the
event loop.

Two environment rules differ from requests' (see
:meth:`Session.merge_environment_settings`): the ``proxy=`` setting beats
``HTTPS_PROXY`` (requests lets the environment win, psf/requests#2018), and the
mounted CA bundle beats ``REQUESTS_CA_BUNDLE`` (psf/requests#3829).

With ``coordination`` set, the token, the key's in-flight slots (a stream's
slot goes to its reader) and 429 pauses are shared with every worker on the
same store; unset, none of it runs.
"""

from __future__ import annotations

import functools
import json as _json
import logging
import os
import sys
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Hashable, List, Literal, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union, overload
from urllib.parse import quote, urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from urllib3.exceptions import InsecureRequestWarning

from ._assistants import Assistants
from ._attachments import UPLOADS
from ._chat.request import Messages, Prepared, chat_url_v2, prepare
from ._http.adapter import GigaChatAdapter
from ._http.body import read_body
from ._http.certs import default_bundle
from ._http.deadline import Deadline, current
from ._http.retry import retry_policy
from ._redact import remember
from ._threads import Threads
from .auth import TOKENS, Token, TokenAuth, TokenStore, fetch_token, fetch_user_token
from .config import Config, forget_resolved
from .errors import AuthenticationError, CoordinationError, GigaChatError, InvalidResponseError, PermissionDeniedError, StreamError, error_from_response, translate
from .results import ChatReply, ChatReplyV2, Embeddings, TokenCount, data_list, json_object, json_reply
from .stream import ChatStream, ChatStreamV2
from .structured import parse_reply
from .version import __version__

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._chat.request import ChatBody, ParseBody
    from .config import Options
    from .coordination.fleet import Coordination
    from .coordination.limiter import Lease

__all__ = ["Session", "shared_session", "reset", "DEFAULT_EMBEDDINGS_MODEL", "Texts", "FileArg"]

log = logging.getLogger("gigachat_lite")

DEFAULT_EMBEDDINGS_MODEL = "Embeddings"
# What urllib's getproxies()/proxy_bypass() read for http(s) URLs (CGI's REQUEST_METHOD disables HTTP_PROXY).
_PROXY_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for name in (base, base.upper())
) + ("REQUEST_METHOD",)
Texts = Union[str, Sequence[str]]
FileArg = Union[str, "os.PathLike[str]", IO[bytes]]
_JSON = {"Accept": "application/json"}
_S = TypeVar("_S", bound=ChatStream)
_T = TypeVar("_T")


def encode_body(body: Any) -> bytes:
    """UTF-8 JSON as is: Cyrillic stays 2 bytes a letter instead of a 6-byte ``\\u`` escape."""
    return _json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class Session(requests.Session):
    """A requests ``Session`` configured for GigaChat, with the API as methods.

    ``Session(api_key=..., timeout=...)`` takes the configuration keywords
    (argument > ``GIGACHAT_*`` variable > default) or ``config=``. Plain
    ``get``/``post`` keep requests' semantics; the methods below raise
    gigachat_lite's exceptions.

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
        self._proxy_cache: Dict[Any, Dict[str, str]] = {}
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
        for url in (config.proxy, config.coordination):
            password = urlsplit(url).password if url else None
            if password:
                remember(password, min_length=4)  # a proxy or a store that echoes it never gets it into our messages
        if config.proxy:
            self.proxies = {"http": config.proxy, "https": config.proxy}
        self.headers["User-Agent"] = f"gigachat_lite/{__version__} {requests.utils.default_user_agent()}"
        for name, header in (("session_id", "X-Session-ID"), ("client_id", "X-Client-ID"), ("trace_id", "X-Trace-ID")):
            if getattr(config, name):
                self.headers[header] = getattr(config, name)
        self._default_timeout = (config.connect_timeout, config.read_timeout)
        fetch: Optional[Callable[[], Token]] = None
        cache_key: Tuple[str, str, str] = (config.auth_url, config.api_key or "", config.scope)
        if config.api_key:
            fetch = functools.partial(fetch_token, self, config, self._default_timeout)
        elif config.user and config.password:
            fetch = functools.partial(fetch_user_token, self, config, self._default_timeout)
            cache_key = (config.base_url + "/token", f"user:{config.user}\0{config.password}", config.scope)
        cache: TokenStore = TOKENS
        self._coordination: Optional[Coordination] = None
        self._fleet_key: Hashable = None
        if config.coordination is not None:
            self._coordination, self._fleet_key = _coordinate(config, cache_key)
            cache = self._coordination.tokens
        self.auth = TokenAuth(fetch, cache_key=cache_key, access_token=config.access_token, margin=config.refresh_margin,
                              cache=cache)
        self._mount_adapter()

    def _mount_adapter(self) -> None:
        # The process that made the pools: a forked child gets its own (see request()).
        self._pid = os.getpid()
        retry = retry_policy(self.config.max_retries)
        if self._coordination is not None:
            # A partial, not a bound method: the adapter must not hold the session (no cycle).
            retry.on_rate_limit = functools.partial(
                self._coordination.share_cool_down, self._fleet_key, cap=self.config.max_cool_down)
        # 128: a pool smaller than the streams in flight reconnects the surplus every round.
        adapter = GigaChatAdapter(max_retries=retry, pool_connections=4, pool_maxsize=128)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"<gigachat_lite.Session base_url={self.config.base_url!r} scope={self.config.scope!r}>"

    @property
    def token(self) -> Optional[Token]:
        """The access token this session uses now (not fetched), or ``None``."""
        assert isinstance(self.auth, TokenAuth)
        return self.auth.cached()

    @property
    def assistants(self) -> Assistants:
        """The assistants API on this session: ``session.assistants.create(...)``, ``.list()``, ... (see :class:`Assistants`)."""
        return Assistants(lambda: self)  # made per access: the session holds no reference back (no cycle)

    @property
    def threads(self) -> Threads:
        """The threads API on this session: ``session.threads.run_messages(...)``, ... (see :class:`Threads`)."""
        return Threads(lambda: self)

    # -- requests' Session, with gigachat_lite's defaults -----------------------------------------

    def request(self, method: Union[str, bytes], url: Union[str, bytes], *args: Any, **kwargs: Any) -> requests.Response:
        """requests' ``Session.request``, with the session's default timeout."""
        self._after_fork()
        if len(args) < 7 and kwargs.get("timeout") is None:  # args[6] would be timeout
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            # Forked: the parent's keep-alive sockets are dropped, never closed or
            # read here (each process would read the other's replies).
            self._mount_adapter()

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' merge of the environment into a request's settings, with two rules of ours and a cache.

        The rules: the session's ``proxy=`` beats ``HTTPS_PROXY``/``HTTP_PROXY``
        (requests lets the environment win, psf/requests#2018), and the mounted
        CA bundle beats ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` unless the
        request gives its own ``verify`` (psf/requests#3829). The cache:
        requests walks the whole environment four times per request to find
        proxies (urllib's ``getproxies()``, 15 % of a small call's CPU with a
        CI's 160 variables); the answer depends only on the URL's origin and
        the proxy variables, so it is kept per those (tests compare this
        method with requests' own).
        """
        proxies = dict(proxies or {})
        per_request_proxies = bool(proxies)
        if self.trust_env:
            for scheme, proxy in self._environ_proxies(url, proxies.get("no_proxy")).items():
                proxies.setdefault(scheme, proxy)
            if verify is True:  # an explicit per-request verify=True keeps requests' meaning
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        if self.config.proxy and not per_request_proxies:
            proxies = dict(self.proxies)
        return {
            "proxies": merge_setting(proxies, self.proxies),  # type: ignore[no-untyped-call]
            "stream": merge_setting(stream, self.stream),  # type: ignore[no-untyped-call]
            "verify": self.verify if verify is None else verify,
            "cert": merge_setting(cert, self.cert),  # type: ignore[no-untyped-call]
        }

    def _environ_proxies(self, url: Any, no_proxy: Any) -> Dict[str, str]:
        parts = urlsplit(url if isinstance(url, str) else url.decode())
        key = (parts.scheme, parts.netloc, no_proxy, tuple(map(os.environ.get, _PROXY_VARIABLES)))
        found = self._proxy_cache.get(key)
        if found is None:
            found = get_environ_proxies(url, no_proxy=no_proxy)
            if len(self._proxy_cache) >= 64:
                self._proxy_cache.clear()
            self._proxy_cache[key] = found
        return found

    # -- one GigaChat request --------------------------------------------------------------------

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
        endpoint goes through it, so auth, retries and error mapping are
        shared. ``json`` is sent as UTF-8 JSON; other keywords are requests'
        (``data=``, ``files=``, ``timeout=``, ...). The request is prepared
        first (requests' ``prepare_request``, which fetches a token that is
        due); when coordinating, the call then waits out the key's cool-down and
        takes a concurrency slot (within the call's read timeout), so only the
        send waits for the slot, and gives it back once the reply is read, or,
        with ``stream=True``, when the response is closed.

        Raises:
            APIError (and subclasses), TransportError: the call failed.
            ConcurrencyLimitTimeout: no slot freed up within the timeout.
            CoordinationError: the coordination store failed (and no fallback).
        """
        response, lease, _ = self._call(method, path, json, stream, headers, kwargs)
        if lease is not None:
            response.close = _closing(response.close, lease.release)  # type: ignore[method-assign]
        return response

    def _call(
        self, method: str, path: str, json: Any, stream: bool, headers: Optional[Mapping[str, str]], kwargs: Dict[str, Any],
        bounded: bool = False,
    ) -> Tuple[requests.Response, Optional["Lease"], Optional[Deadline]]:
        """:meth:`call`, returning the slot a streamed reply holds and the deadline its reader must finish."""
        if (self.config.deadline or self.config.first_byte_timeout) and not bounded:
            deadline = Deadline(self.config.deadline, self.config.first_byte_timeout, stream=stream)
            found: List[Any] = []

            def send(**kw: Any) -> requests.Response:
                response, lease, _ = self._call(method, path, json, stream, headers, kw, bounded=True)
                found.append(lease)
                return response

            response: requests.Response = deadline.run(send, kwargs, self._default_timeout)
            return response, found[-1] if found else None, deadline if stream else None
        # Prepared before the slot is taken (a token fetched too, if one is due), so that only
        # the send waits for it: a key shared by a fleet sits idle for none of this work.
        prepared, settings = self._prepare(method, path, json, headers, kwargs)
        lease = None if self._coordination is None else self._take_slot(settings["timeout"])
        try:
            response = self._send(prepared, settings, stream, path)
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        if lease is not None and not stream:
            lease.release()  # the body is read already
            lease = None
        return response, lease, None

    def _take_slot(self, timeout: Any) -> "Lease":
        assert self._coordination is not None
        if timeout is None:
            timeout = self._default_timeout
        # The read timeout is how long the caller will wait for a reply: the wait for a slot fits in it.
        # The call's scope (aio's cancel, deadline=) shuts its sockets when it fires, but a waiter for a
        # slot has none yet: it is woken through the store instead.
        return self._coordination.take_slot(
            self._fleet_key, float(timeout[1] if isinstance(timeout, tuple) else timeout), current())

    def _prepare(
        self, method: str, path: str, json: Any, headers: Optional[Mapping[str, str]], kwargs: Dict[str, Any]
    ) -> Tuple[requests.PreparedRequest, Dict[str, Any]]:
        """The request and its send settings, as :meth:`request` would make them (requests' prepared-request flow).

        ``kwargs`` are :meth:`request`'s keywords: those of :class:`requests.Request`
        (``data``, ``files``, ``params``, ...) and ``timeout``, ``proxies``,
        ``verify``, ``cert``, ``allow_redirects``.
        """
        self._after_fork()
        # v2 chat lives beside base_url (/api/v2 next to /api/v1): its caller passes the whole URL.
        url = path if path.startswith(("https://", "http://")) else self.config.base_url + path
        options = dict(kwargs)
        if json is not None:
            options["data"] = encode_body(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        timeout = options.pop("timeout", None)
        send = {"timeout": self._default_timeout if timeout is None else timeout,
                "allow_redirects": options.pop("allow_redirects", True)}
        proxies, verify, cert = options.pop("proxies", None), options.pop("verify", None), options.pop("cert", None)
        try:
            prepared = self.prepare_request(requests.Request(method.upper(), url, headers=headers, **options))
            # Always streamed: a whole reply's body is read in _send, within max_reply_size (_http/body.py).
            send.update(self.merge_environment_settings(prepared.url, proxies or {}, True, verify, cert))
        except GigaChatError:
            raise
        except requests.RequestException as exc:
            raise translate(exc, url=url, bundle=self.verify) from exc
        return prepared, send

    def _send(self, prepared: requests.PreparedRequest, settings: Dict[str, Any], stream: bool, path: str) -> requests.Response:
        url, method = prepared.url or "", prepared.method
        try:
            response = self.send(prepared, **settings)
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
        if not stream:
            read_body(response, self.config.max_reply_size, bundle=self.verify)
        return response

    # -- chat ----------------------------------------------------------------------------------

    @overload
    def chat(
        self, messages: Messages, *, model: Optional[str] = ..., stream: Literal[True] = ..., update_interval: Optional[float] = ...,
        api_version: Optional[str] = ..., **params: "Unpack[ChatBody]",
    ) -> ChatStream: ...  # noqa: E704

    @overload
    def chat(
        self, messages: Messages, *, model: Optional[str] = ..., stream: Literal[False], update_interval: Optional[float] = ...,
        api_version: Optional[str] = ..., **params: "Unpack[ChatBody]",
    ) -> ChatReply: ...  # noqa: E704

    @overload
    def chat(
        self, messages: Messages, *, model: Optional[str] = ..., stream: bool, update_interval: Optional[float] = ...,
        api_version: Optional[str] = ..., **params: "Unpack[ChatBody]",
    ) -> Union[ChatStream, ChatReply]: ...  # noqa: E704

    def chat(
        self,
        messages: Messages,
        *,
        model: Optional[str] = None,
        stream: bool = True,
        update_interval: Optional[float] = None,
        api_version: Optional[str] = None,
        **params: "Unpack[ChatBody]",
    ) -> Union[ChatStream, ChatReply]:
        """Send a chat; return a :class:`ChatStream` (``stream=True``) or a :class:`ChatReply`.

        ``messages`` is a ``str`` (one user message) or a list of
        ``{"role", "content"}`` dicts (on v2, content may be a list of parts).
        Every other keyword goes into the JSON body (``temperature``,
        ``max_tokens``, ``functions``, ``response_format``, ``tools``, ...),
        ``None`` values left out. ``api_version`` overrides the session's for
        this call (see :func:`gigachat_lite.chat`). Input is validated before
        any request.
        """
        prepared = prepare(
            messages, model=Config.check("model", model) or self.config.model, stream=stream, update_interval=update_interval,
            params=params, api_version=Config.check("api_version", api_version) or self.config.api_version,
            defaults=self.chat_defaults, model_given=model is not None,
        )
        return self.send_chat(prepared)

    @property
    def chat_defaults(self) -> Dict[str, Any]:
        """The body settings this session's configuration gives every chat (``flags``, ``profanity_check``)."""
        return {"flags": self.config.flags and list(self.config.flags), "profanity_check": self.config.profanity_check}

    def send_chat(self, prepared: Union[Prepared, Dict[str, Any]]) -> Union[ChatStream, ChatReply]:
        """Send a request prepared by :meth:`chat`'s checks (or a ready v1 body) and wrap the reply.

        Files the messages carry are uploaded first, once per distinct file
        (for the whole fleet with ``coordination``), see :mod:`._attachments`.
        """
        if not isinstance(prepared, Prepared):
            prepared = Prepared("v1", prepared, None)
        if prepared.uploads is not None:
            shared = None if self._coordination is None else (self._coordination.files, self._fleet_key)
            version, output, headers = prepared.api_version, prepared.output, prepared.headers
            return prepared.uploads.send(self, prepared.body, headers,
                                         lambda body: self.send_chat(Prepared(version, body, output, headers)), shared)
        v2 = prepared.api_version == "v2"
        path = chat_url_v2(self.config.base_url) if v2 else "/chat/completions"
        result: Union[ChatStream, ChatReply]
        if prepared.body.get("stream"):
            result = self._open_stream(path, prepared.body, ChatStreamV2 if v2 else ChatStream, prepared.headers)
        else:
            response = self.call("POST", path, json=prepared.body, headers={**_JSON, **(prepared.headers or {})})
            payload, request_id = json_reply(response), response.headers.get("x-request-id")
            result = ChatReplyV2(payload, request_id) if v2 else ChatReply(payload, request_id)
        result.session = self
        return result

    def _open_stream(
        self, path: str, body: Dict[str, Any], stream_class: Type[_S], extra_headers: Optional[Mapping[str, str]] = None
    ) -> _S:
        """``POST`` ``body`` to ``path``; the reply read as a ``stream_class`` (a chat's, a thread run's).

        Raises:
            StreamError: the reply is not an event stream.
        """
        # identity: a stream's bytes are parsed as they arrive (a compressed one is still decoded, see stream.py)
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity", **(extra_headers or {})}
        response, lease, deadline = self._call("POST", path, body, True, headers, {})
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            response.close()
            if deadline is not None:
                deadline.finish()
            if lease is not None:
                lease.release()
            raise StreamError(
                f"expected a text/event-stream reply, got {content_type or 'no content type'!r}"
                f" (request id {response.headers.get('x-request-id')})"
            )
        return stream_class(response, lease, max_event_size=self.config.max_event_size, deadline=deadline)

    @overload
    def parse(self, messages: Messages, response_format: Type[_T], **params: "Unpack[ParseBody]") -> _T: ...  # noqa: E704

    @overload
    def parse(self, messages: Messages, response_format: Any, **params: "Unpack[ParseBody]") -> Any: ...  # noqa: E704

    def parse(self, messages: Messages, response_format: Any, **params: Any) -> Any:
        """Structured output: ask with ``response_format=`` and return the parsed object.

        ``response_format`` is a JSON schema dict, a regex format or
        ``re.Pattern``, a pydantic model, a dataclass or a TypedDict class;
        the result is a model or dataclass instance, a ``dict`` or a ``str``.
        Takes :meth:`chat`'s keywords; the request is not streamed.

        Raises:
            StructuredOutputError: the reply does not match (``.text`` and
                ``.reply`` say what came back); and whatever :meth:`chat` raises.
        """
        params["stream"] = False
        return parse_reply(self.chat(messages, response_format=response_format, **params), response_format)

    # -- models, embeddings, token counts, balance ----------------------------------------

    def models(self) -> List[Dict[str, Any]]:
        """``GET /models``: the available models, as dicts (``id``, ``object``, ``owned_by``, ``type``)."""
        return data_list(self._get("/models"), "models")

    def model(self, model_id: str) -> Dict[str, Any]:
        """``GET /models/{id}``: one model as a dict; :class:`NotFoundError` for an unknown id."""
        return json_object(self._get("/models/" + _quote_id(model_id, "model_id")), "model")

    def embeddings(self, texts: Texts, model: str = DEFAULT_EMBEDDINGS_MODEL) -> Embeddings:
        """``POST /embeddings``: one vector per text, in input order.

        ``texts`` is a str (one text) or a non-empty list of non-empty str.
        """
        body = {"input": _check_texts(texts), "model": _check_name(model, "model")}
        return Embeddings(json_reply(self.call("POST", "/embeddings", json=body, headers=_JSON)))

    def tokens_count(self, texts: Texts, model: Optional[str] = None) -> List[TokenCount]:
        """``POST /tokens/count``: each text's :class:`TokenCount` (an ``int`` with ``.characters``).

        ``model`` defaults to the session's model.
        """
        body = {"model": self.config.model if model is None else _check_name(model, "model"), "input": _check_texts(texts)}
        reply = json_reply(self.call("POST", "/tokens/count", json=body, headers=_JSON))
        if not isinstance(reply, list) or not all(isinstance(item, dict) and isinstance(item.get("tokens"), int) for item in reply):
            raise InvalidResponseError("the tokens/count reply is not a list of counts")
        return [TokenCount(item["tokens"], item.get("characters")) for item in reply]

    def balance(self) -> Dict[str, int]:
        """``GET /balance``: tokens left, by usage (model name or ``"embeddings"``).

        Raises:
            PermissionDeniedError: the account is post-paid (only pre-paid
                accounts have a balance).
        """
        try:
            payload = self._get("/balance")
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                f"the balance is only available for pre-paid accounts (server said: {exc.message})",
                status_code=exc.status_code, request_id=exc.request_id, response=exc.response,
            ) from exc
        entries = payload.get("balance") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            raise InvalidResponseError("the balance reply has no 'balance' list")
        balance: Dict[str, int] = {}
        for item in entries:
            if not isinstance(item, dict) or "usage" not in item:
                continue  # an entry of another shape: not a balance line
            usage, value = item["usage"], item.get("value")
            if not isinstance(usage, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidResponseError(f"a balance entry is not {{'usage': str, 'value': number}}: {str(item)[:80]}")
            balance[usage] = value  # type: ignore[assignment]  # GigaChat sends whole numbers of tokens
        return balance

    # -- files ------------------------------------------------------------------------------

    def upload_file(
        self, path_or_fileobj: FileArg, purpose: str = "general", *, filename: Optional[str] = None, mime_type: Optional[str] = None
    ) -> Dict[str, Any]:
        """``POST /files`` (multipart ``file`` and ``purpose``): upload; return the file's dict.

        The dict has ``id`` (to put in a message's ``attachments``), ``bytes``,
        ``filename``, ``purpose``, ``created_at``. The part's type is guessed from
        the file name unless ``mime_type`` is given.
        """
        _check_name(purpose, "purpose")
        part, opened = _file_part(path_or_fileobj, filename, mime_type)
        try:
            response = self.call("POST", "/files", files={"file": part}, data={"purpose": purpose}, headers=_JSON)
        finally:
            if opened is not None:
                opened.close()
        return json_object(json_reply(response), "upload")

    def files(self) -> List[Dict[str, Any]]:
        """``GET /files``: the uploaded files, as dicts."""
        return data_list(self._get("/files"), "files")

    def file(self, file_id: str) -> Dict[str, Any]:
        """``GET /files/{id}``: one file's dict; :class:`NotFoundError` for an unknown id."""
        return json_object(self._get("/files/" + _quote_id(file_id, "file_id")), "file")

    def delete_file(self, file_id: str) -> Dict[str, Any]:
        """``POST /files/{id}/delete``: delete; return ``{"id": ..., "deleted": True}``."""
        path = f"/files/{_quote_id(file_id, 'file_id')}/delete"
        reply = json_object(json_reply(self.call("POST", path, headers=_JSON)), "delete")
        UPLOADS.forget_id(file_id)  # the same bytes attached again are uploaded again
        if self._coordination is not None:
            try:
                self._coordination.files.forget_id(self._fleet_key, file_id)
            except CoordinationError as exc:
                # The file is gone all the same; a worker handed its id finds it refused and uploads again.
                log.warning("the file is deleted, but the coordination store could not forget its id: %s", exc)
        return reply

    def file_content(self, file_id: str) -> bytes:
        """``GET /files/{id}/content``: the file's bytes (e.g. an image the model drew)."""
        path = f"/files/{_quote_id(file_id, 'file_id')}/content"
        # The official SDK asks for "application/jpg"; anything else is accepted too.
        content: bytes = self.call("GET", path, headers={"Accept": "application/jpg, */*"}).content
        return content

    # -- AI-text detection and OpenAPI conversion -----------------------------------------

    def ai_check(self, text: str, model: Optional[str] = None) -> Dict[str, Any]:
        """``POST /ai/check``: how much of ``text`` a model wrote.

        Returns the reply dict: ``category`` ("ai", "human" or "mixed"),
        ``characters``, ``tokens`` and ``ai_intervals`` (``[start, end]``
        character ranges written by a model). ``model`` defaults to the
        session's model.
        """
        body = {"input": _check_name(text, "text"), "model": self.config.model if model is None else _check_name(model, "model")}
        reply = json_object(json_reply(self.call("POST", "/ai/check", json=body, headers=_JSON)), "ai/check")
        if not isinstance(reply.get("category"), str):
            raise InvalidResponseError("the ai/check reply has no 'category'")
        return reply

    def functions_convert(self, openapi: Union[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
        """``POST /functions/convert``: GigaChat function descriptions from an OpenAPI document.

        ``openapi`` is the document as text (JSON or YAML, sent as is) or as a
        dict (sent as JSON). Returns the ``functions`` list, ready for
        ``chat(..., functions=...)`` or ``tools=``.
        """
        headers = dict(_JSON)
        if isinstance(openapi, dict):
            try:
                data = encode_body(openapi)
            except (ValueError, TypeError, RecursionError) as exc:  # NaN, a cycle, a set, nested past the encoder
                reason = "it is nested too deeply" if isinstance(exc, RecursionError) else exc
                raise ValueError(f"openapi is not a JSON document: {reason}") from None
            headers["Content-Type"] = "application/json"
        elif isinstance(openapi, str) and openapi.strip():
            data = openapi.encode("utf-8")
        else:
            raise TypeError(f"openapi must be a non-empty str or a dict, got {type(openapi).__name__}")
        # The official SDK sends the document as the raw body; so do we.
        reply = json_object(json_reply(self.call("POST", "/functions/convert", data=data, headers=headers)), "functions/convert")
        if not isinstance(reply.get("functions"), list):
            raise InvalidResponseError("the functions/convert reply has no 'functions' list")
        functions: List[Dict[str, Any]] = reply["functions"]
        return functions

    def _get(self, path: str) -> Any:
        return json_reply(self.call("GET", path, headers=_JSON))


def _closing(close: Callable[[], None], release: Callable[[], None]) -> Callable[[], None]:
    """``response.close`` that also gives the call's concurrency slot back, once.

    It holds the response's own ``close`` weakly: stored on the response, a
    strong one would make a cycle, and a response dropped unclosed would keep
    its slot (the only one, on a personal key) until the cycle collector ran.
    Freed, it frees the lease, whose finaliser gives the slot back.
    """
    weak_close = weakref.WeakMethod(close)

    def close_and_release() -> None:
        try:
            method = weak_close()
            if method is not None:
                method()
        finally:
            release()
    return close_and_release


def _coordinate(config: Config, cache_key: Tuple[str, str, str]) -> "Tuple[Coordination, Hashable]":
    # Lazy: the coordination package is imported only by sessions that coordinate.
    from .coordination.fleet import coordination_for, identity

    coordination = coordination_for(config.coordination, fallback=config.coordination_fallback, limit=config.max_concurrency)
    auth_url, key, scope = cache_key
    return coordination, identity(auth_url, key or None, config.access_token, scope)


def _close_coordination() -> None:
    fleet = sys.modules.get("gigachat_lite.coordination.fleet")
    if fleet is not None:  # never opened: importing it just to close nothing would cost every reset
        fleet.close_all()


# -- the endpoints' inputs, checked before any request ------------------------------------------



def _check_texts(texts: Texts) -> List[str]:
    # A str is one text, as chat() takes a str as one message.
    if isinstance(texts, str):
        texts = [texts]
    elif not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    if not texts:
        raise ValueError("texts is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError(f"texts[{i}] is an empty str")
    return list(texts)


def _quote_id(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty str")
    if value in (".", ".."):  # quote() keeps dots, and a URL's "." and ".." segments are resolved away
        raise ValueError(f"{what} {value!r} is not an id: it would leave its place in the URL")
    return quote(value, safe="")  # an id with "/" or "?" must stay one path segment


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty str")
    return value


def _file_part(source: FileArg, filename: Optional[str], mime_type: Optional[str]) -> Tuple[Tuple[str, Any, str], Optional[IO[bytes]]]:
    """The multipart ``file`` part and the file we opened (to close), if any."""
    import mimetypes  # only uploads need it

    opened: Optional[IO[bytes]] = None
    fileobj: IO[bytes]
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ValueError(f"path_or_fileobj: no such file: {path}")
        opened = fileobj = open(path, "rb")
        name = filename or os.path.basename(path)
    elif hasattr(source, "read"):
        fileobj = source
        given = getattr(source, "name", None)
        name = filename or (os.path.basename(given) if isinstance(given, str) else "")
        if not name:
            raise ValueError("filename= is needed for a file object without a name (GigaChat types files by name)")
    else:
        raise TypeError(f"path_or_fileobj must be a path or a binary file object, got {type(source).__name__}")
    # GigaChat checks the part's type against what it accepts; requests would send none.
    kind = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return (name, fileobj, kind), opened


# -- the shared sessions ------------------------------------------------------------------------

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


def _after_fork() -> None:
    # A forked child must not share the parent's keep-alive sockets (each would
    # read replies meant for the other) nor wait on a lock a parent thread held:
    # it drops its references (closing nothing the parent uses) and starts afresh.
    global _SHARED, _SHARED_LOCK
    _SHARED, _SHARED_LOCK = OrderedDict(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def reset() -> None:
    """Close the shared sessions, forget every cached token and uploaded file id, close the coordination stores (tests, key rotation).

    The next call builds a fresh session and fetches a fresh token. Tokens
    already in a shared store (file, Redis) stay there for the fleet.
    """
    with _SHARED_LOCK:
        sessions = list(_SHARED.values())
        _SHARED.clear()
    for session in sessions:
        session.close()
    TOKENS.clear()
    UPLOADS.clear()
    forget_resolved()
    _close_coordination()

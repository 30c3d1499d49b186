"""``Session``: the GigaChat API as methods of a :class:`requests.Session`, each call defined once.

:func:`gigachat_lite.chat`, :func:`gigachat_lite.models` and the rest call
these methods on a shared session (:mod:`gigachat_lite.api`), as
``requests.get`` calls ``Session.request``; :mod:`gigachat_lite.aio` runs the
same calls off the event loop. Input is checked by :mod:`.payloads` before any
request; replies are read by :mod:`.results` and :mod:`.stream`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from .auth import TOKENS
from .config import Config, forget_resolved
from .errors import InvalidResponseError, PermissionDeniedError, StreamError
from .inputs import FileArg, Texts, check_name, check_texts, file_part, quote_id
from .payloads import Messages, Prepared, prepare
from .request_v2 import chat_url_v2
from .results import ChatReply, ChatReplyV2, Embeddings, TokenCount, data_list, json_object, json_reply
from .stream import ChatStream, ChatStreamV2
from .structured import parse_reply
from .transport import Transport, close_coordination, encode_body, stream_lease

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .payloads import ChatBody

__all__ = ["Session", "shared_session", "reset", "DEFAULT_EMBEDDINGS_MODEL"]

DEFAULT_EMBEDDINGS_MODEL = "Embeddings"
_JSON = {"Accept": "application/json"}


class Session(Transport):
    """A requests ``Session`` configured for GigaChat, with the API as methods.

    ``Session(api_key=..., timeout=...)`` takes the configuration keywords
    (argument > ``GIGACHAT_*`` variable > default) or ``config=``. Plain
    ``get``/``post`` keep requests' semantics; the methods below raise
    gigachat_lite's exceptions.
    """

    # -- chat -------------------------------------------------------------------------------

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
        )
        return self.send_chat(prepared)

    def send_chat(self, prepared: Union[Prepared, Dict[str, Any]]) -> Union[ChatStream, ChatReply]:
        """Send a request made by :func:`~gigachat_lite.payloads.prepare` (or a v1 body) and wrap the reply."""
        if not isinstance(prepared, Prepared):
            prepared = Prepared("v1", prepared, None)
        v2 = prepared.api_version == "v2"
        stream = bool(prepared.body.get("stream"))
        # identity: a stream's bytes are parsed as they arrive (a compressed one is still decoded, see stream.py)
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"} if stream else _JSON
        path = chat_url_v2(self.config.base_url) if v2 else "/chat/completions"
        response = self.call("POST", path, json=prepared.body, stream=stream, headers=headers)
        result: Union[ChatStream, ChatReply]
        if not stream:
            payload, request_id = json_reply(response), response.headers.get("x-request-id")
            result = ChatReplyV2(payload, request_id) if v2 else ChatReply(payload, request_id)
        else:
            lease = stream_lease(response)
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                response.close()
                if lease is not None:
                    lease.release()
                raise StreamError(
                    f"expected a text/event-stream reply, got {content_type or 'no content type'!r}"
                    f" (request id {response.headers.get('x-request-id')})"
                )
            result = (ChatStreamV2 if v2 else ChatStream)(response, lease, max_event_size=self.config.max_event_size)
        result.session = self
        return result

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
        return json_object(self._get("/models/" + quote_id(model_id, "model_id")), "model")

    def embeddings(self, texts: Texts, model: str = DEFAULT_EMBEDDINGS_MODEL) -> Embeddings:
        """``POST /embeddings``: one vector per text, in input order.

        ``texts`` is a str (one text) or a non-empty list of non-empty str.
        """
        body = {"input": check_texts(texts), "model": check_name(model, "model")}
        return Embeddings(json_reply(self.call("POST", "/embeddings", json=body, headers=_JSON)))

    def tokens_count(self, texts: Texts, model: Optional[str] = None) -> List[TokenCount]:
        """``POST /tokens/count``: each text's :class:`TokenCount` (an ``int`` with ``.characters``).

        ``model`` defaults to the session's model.
        """
        body = {"model": self.config.model if model is None else check_name(model, "model"), "input": check_texts(texts)}
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
        return {item["usage"]: item["value"] for item in entries if isinstance(item, dict) and "usage" in item}

    # -- files ------------------------------------------------------------------------------

    def upload_file(
        self, path_or_fileobj: FileArg, purpose: str = "general", *, filename: Optional[str] = None, mime_type: Optional[str] = None
    ) -> Dict[str, Any]:
        """``POST /files`` (multipart ``file`` and ``purpose``): upload; return the file's dict.

        The dict has ``id`` (to put in a message's ``attachments``), ``bytes``,
        ``filename``, ``purpose``, ``created_at``. The part's type is guessed from
        the file name unless ``mime_type`` is given.
        """
        check_name(purpose, "purpose")
        part, opened = file_part(path_or_fileobj, filename, mime_type)
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
        return json_object(self._get("/files/" + quote_id(file_id, "file_id")), "file")

    def delete_file(self, file_id: str) -> Dict[str, Any]:
        """``POST /files/{id}/delete``: delete; return ``{"id": ..., "deleted": True}``."""
        path = f"/files/{quote_id(file_id, 'file_id')}/delete"
        return json_object(json_reply(self.call("POST", path, headers=_JSON)), "delete")

    def file_content(self, file_id: str) -> bytes:
        """``GET /files/{id}/content``: the file's bytes (e.g. an image the model drew)."""
        path = f"/files/{quote_id(file_id, 'file_id')}/content"
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
        body = {"input": check_name(text, "text"), "model": self.config.model if model is None else check_name(model, "model")}
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
            data = encode_body(openapi)
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
    """Close the shared sessions, forget every cached token and close the coordination stores (tests, key rotation).

    The next call builds a fresh session and fetches a fresh token. Tokens
    already in a shared store (file, Redis) stay there for the fleet.
    """
    with _SHARED_LOCK:
        sessions = list(_SHARED.values())
        _SHARED.clear()
    for session in sessions:
        session.close()
    TOKENS.clear()
    forget_resolved()
    close_coordination()

"""``Session``: the GigaChat API as methods of a :class:`requests.Session`, each call defined once.

:func:`gigachat_lite.chat`, :func:`gigachat_lite.models` and the rest call
these methods on a shared session (:mod:`gigachat_lite.api`), as
``requests.get`` calls ``Session.request``; :mod:`gigachat_lite.aio` runs the
same calls off the event loop. Input is checked by :mod:`.payloads` before any
request; replies are read by :mod:`.results` and :mod:`.stream`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from .auth import TOKENS
from .config import Config
from .errors import InvalidResponseError, PermissionDeniedError, StreamError
from .payloads import FileArg, Messages, Texts, check_name, check_texts, file_part, prepare_chat, quote_id
from .results import ChatReply, Embeddings, TokenCount, data_list, json_object, json_reply
from .stream import ChatStream
from .transport import Transport, close_coordination, stream_lease

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .payloads import ChatParams

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
        **params: "Unpack[ChatParams]",
    ) -> Union[ChatStream, ChatReply]:
        """Send a chat; return a :class:`ChatStream` (``stream=True``) or a :class:`ChatReply`.

        ``messages`` is a ``str`` (one user message) or a list of
        ``{"role", "content"}`` dicts. Every other keyword goes into the JSON
        body (``temperature``, ``max_tokens``, ``functions``, ...), ``None``
        values left out. Input is validated before any request.
        """
        body = prepare_chat(
            messages, model=model or self.config.model, stream=stream, update_interval=update_interval, params=params
        )
        return self.send_chat(body)

    def send_chat(self, body: Dict[str, Any]) -> Union[ChatStream, ChatReply]:
        """Send a body made by :func:`~gigachat_lite.payloads.prepare_chat` and wrap the reply."""
        stream = bool(body.get("stream"))
        headers = {"Accept": "text/event-stream"} if stream else _JSON
        response = self.call("POST", "/chat/completions", json=body, stream=stream, headers=headers)
        if not stream:
            return ChatReply(json_reply(response), response.headers.get("x-request-id"))
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
        return ChatStream(response, lease)

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
    close_coordination()

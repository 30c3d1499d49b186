"""The GigaChat API besides chat: models, embeddings, token counts, balance, files.

Each call is a thin function over :meth:`Session.call`, so auth, retries and
error mapping are the chat path's own. Every function takes either
``session=`` (a :class:`~gigachat_lite.Session`) or the configuration
keywords of :func:`~gigachat_lite.chat` (``api_key``, ``base_url``, ...), in
which case the process's shared session for that configuration is used::

    from gigachat_lite import embeddings, models
    ids = [m["id"] for m in models()]
    vectors = embeddings(["первый текст", "второй"]).vectors

Input is validated before any request; a bad value is a ``TypeError`` or
``ValueError`` that names it.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from .config import Config
from .errors import PermissionDeniedError, StreamError

__all__ = [
    "Embeddings",
    "TokenCount",
    "models",
    "model",
    "embeddings",
    "tokens_count",
    "balance",
    "upload_file",
    "files",
    "file",
    "delete_file",
    "file_content",
    "ai_check",
    "functions_convert",
    "DEFAULT_EMBEDDINGS_MODEL",
]

DEFAULT_EMBEDDINGS_MODEL = "Embeddings"

Texts = Union[str, Sequence[str]]
FileArg = Union[str, "os.PathLike[str]", IO[bytes]]


# -- result types -------------------------------------------------------------------


class Embeddings:
    """The vectors of ``POST /embeddings``, in the order of the input texts.

    Iterating, ``len()`` and indexing go over :attr:`vectors`.

    Attributes:
        vectors: one ``list[float]`` per input text.
        usage: one usage dict per input text (``{"prompt_tokens": N}``), same order.
        model: the model that made them.
        raw: the parsed reply as sent.
    """

    __slots__ = ("vectors", "usage", "model", "raw")

    def __init__(self, payload: Any) -> None:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or not all(isinstance(item, dict) and isinstance(item.get("embedding"), list) for item in data):
            raise StreamError("the embeddings reply has no list of embeddings")
        if all(isinstance(item.get("index"), int) for item in data):
            data = sorted(data, key=lambda item: item["index"])  # the API does not promise input order
        self.vectors: List[List[float]] = [item["embedding"] for item in data]
        self.usage: List[Dict[str, Any]] = [item.get("usage") or {} for item in data]
        self.model: Optional[str] = payload.get("model")
        self.raw: Dict[str, Any] = payload

    @property
    def prompt_tokens(self) -> int:
        """Tokens billed for all the texts together."""
        return sum(int(u.get("prompt_tokens") or 0) for u in self.usage)

    def __iter__(self) -> Iterator[List[float]]:
        return iter(self.vectors)

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, index: int) -> List[float]:
        return self.vectors[index]

    def __repr__(self) -> str:
        size = len(self.vectors[0]) if self.vectors else 0
        return f"<Embeddings model={self.model!r} count={len(self.vectors)} size={size} prompt_tokens={self.prompt_tokens}>"


class TokenCount(int):
    """A token count (an ``int``) that also knows the text's length in characters."""

    characters: Optional[int]

    def __new__(cls, tokens: int, characters: Optional[int] = None) -> "TokenCount":
        value = super().__new__(cls, tokens)
        value.characters = characters
        return value

    def __repr__(self) -> str:
        return f"TokenCount({int(self)}, characters={self.characters})"


# -- validation and plumbing ----------------------------------------------------------


def _texts(texts: Texts) -> List[str]:
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


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty str")
    return quote(value, safe="")  # an id with "/" or "?" must stay one path segment


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty str")
    return value


def _session(session: Any, config: Dict[str, Any]) -> Any:
    if session is not None:
        if config:
            raise TypeError(f"pass session= or configuration keywords, not both (got {', '.join(sorted(config))})")
        return session
    from .session import shared_session  # session.py imports this module for its methods

    return shared_session(Config.resolve(**config))


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise StreamError(f"the reply is not JSON (request id {response.headers.get('x-request-id')})") from None


def _get(session: Any, path: str) -> Any:
    return _json(session.call("GET", path, headers={"Accept": "application/json"}))


def _object(payload: Any, what: str) -> Dict[str, Any]:
    if not isinstance(payload, dict):
        raise StreamError(f"the {what} reply is not a JSON object")
    return payload


def _data_list(payload: Any, what: str) -> List[Dict[str, Any]]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise StreamError(f"the {what} reply has no 'data' list")
    return data


# -- models -------------------------------------------------------------------------------


def models(*, session: Any = None, **config: Any) -> List[Dict[str, Any]]:
    """``GET /models``: the available models, as dicts (``id``, ``object``, ``owned_by``, ``type``)."""
    return _data_list(_get(_session(session, config), "/models"), "models")


def model(model_id: str, *, session: Any = None, **config: Any) -> Dict[str, Any]:
    """``GET /models/{id}``: one model as a dict.

    Raises:
        NotFoundError: no such model.
    """
    path = "/models/" + _id(model_id, "model_id")
    return _object(_get(_session(session, config), path), "model")


# -- embeddings and token counts ----------------------------------------------------------


def embeddings(texts: Texts, model: str = DEFAULT_EMBEDDINGS_MODEL, *, session: Any = None, **config: Any) -> Embeddings:
    """``POST /embeddings``: one vector per text, in input order.

    ``texts`` is a str (one text) or a non-empty list of non-empty str.
    """
    body = {"input": _texts(texts), "model": _name(model, "model")}
    target = _session(session, config)
    return Embeddings(_json(target.call("POST", "/embeddings", json=body, headers={"Accept": "application/json"})))


def tokens_count(texts: Texts, model: Optional[str] = None, *, session: Any = None, **config: Any) -> List[TokenCount]:
    """``POST /tokens/count``: the token count of each text, in input order.

    Each count is a :class:`TokenCount`: an ``int`` with a ``characters``
    attribute. ``model`` defaults to the session's model.
    """
    checked = _texts(texts)
    if model is not None:
        _name(model, "model")
    target = _session(session, config)
    body = {"model": model or target.config.model, "input": checked}
    reply = _json(target.call("POST", "/tokens/count", json=body, headers={"Accept": "application/json"}))
    if not isinstance(reply, list) or not all(isinstance(item, dict) and isinstance(item.get("tokens"), int) for item in reply):
        raise StreamError("the tokens/count reply is not a list of counts")
    return [TokenCount(item["tokens"], item.get("characters")) for item in reply]


# -- balance -------------------------------------------------------------------------------


def balance(*, session: Any = None, **config: Any) -> Dict[str, int]:
    """``GET /balance``: tokens left, by usage (model name or ``"embeddings"``).

    Raises:
        PermissionDeniedError: the account is post-paid (only pre-paid
            accounts have a balance).
    """
    target = _session(session, config)
    try:
        payload = _get(target, "/balance")
    except PermissionDeniedError as exc:
        raise PermissionDeniedError(
            f"the balance is only available for pre-paid accounts (server said: {exc.message})",
            status_code=exc.status_code, request_id=exc.request_id, response=exc.response,
        ) from exc
    entries = payload.get("balance") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise StreamError("the balance reply has no 'balance' list")
    return {item["usage"]: item["value"] for item in entries if isinstance(item, dict) and "usage" in item}


# -- files ---------------------------------------------------------------------------------


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


def upload_file(
    path_or_fileobj: FileArg,
    purpose: str = "general",
    *,
    filename: Optional[str] = None,
    mime_type: Optional[str] = None,
    session: Any = None,
    **config: Any,
) -> Dict[str, Any]:
    """``POST /files`` (multipart ``file`` and ``purpose``): upload; return the file's dict.

    The dict has ``id`` (to put in a message's ``attachments``), ``bytes``,
    ``filename``, ``purpose``, ``created_at``. The part's type is guessed from
    the file name unless ``mime_type`` is given.
    """
    _name(purpose, "purpose")
    part, opened = _file_part(path_or_fileobj, filename, mime_type)
    try:
        target = _session(session, config)
        response = target.call("POST", "/files", files={"file": part}, data={"purpose": purpose}, headers={"Accept": "application/json"})
    finally:
        if opened is not None:
            opened.close()
    return _object(_json(response), "upload")


def files(*, session: Any = None, **config: Any) -> List[Dict[str, Any]]:
    """``GET /files``: the uploaded files, as dicts."""
    return _data_list(_get(_session(session, config), "/files"), "files")


def file(file_id: str, *, session: Any = None, **config: Any) -> Dict[str, Any]:
    """``GET /files/{id}``: one file's dict. Raises :class:`NotFoundError` for an unknown id."""
    path = "/files/" + _id(file_id, "file_id")
    return _object(_get(_session(session, config), path), "file")


def delete_file(file_id: str, *, session: Any = None, **config: Any) -> Dict[str, Any]:
    """``POST /files/{id}/delete``: delete; return ``{"id": ..., "deleted": True}``."""
    path = f"/files/{_id(file_id, 'file_id')}/delete"
    return _object(_json(_session(session, config).call("POST", path, headers={"Accept": "application/json"})), "delete")


def file_content(file_id: str, *, session: Any = None, **config: Any) -> bytes:
    """``GET /files/{id}/content``: the file's bytes (e.g. an image the model drew)."""
    path = f"/files/{_id(file_id, 'file_id')}/content"
    # The official SDK asks for "application/jpg"; anything else is accepted too.
    content: bytes = _session(session, config).call("GET", path, headers={"Accept": "application/jpg, */*"}).content
    return content


# -- AI-text detection and OpenAPI conversion ----------------------------------------------


def ai_check(text: str, model: Optional[str] = None, *, session: Any = None, **config: Any) -> Dict[str, Any]:
    """``POST /ai/check``: how much of ``text`` a model wrote.

    Returns the reply dict: ``category`` ("ai", "human" or "mixed"),
    ``characters``, ``tokens`` and ``ai_intervals`` (``[start, end]``
    character ranges written by a model). ``model`` defaults to the
    session's model.
    """
    _name(text, "text")
    if model is not None:
        _name(model, "model")
    target = _session(session, config)
    body = {"input": text, "model": model or target.config.model}
    reply = _object(_json(target.call("POST", "/ai/check", json=body, headers={"Accept": "application/json"})), "ai/check")
    if not isinstance(reply.get("category"), str):
        raise StreamError("the ai/check reply has no 'category'")
    return reply


def functions_convert(openapi: Any, *, session: Any = None, **config: Any) -> List[Dict[str, Any]]:
    """``POST /functions/convert``: GigaChat function descriptions from an OpenAPI document.

    ``openapi`` is the document as text (JSON or YAML, sent as is) or as a
    dict (sent as JSON). Returns the ``functions`` list, ready for
    ``chat(..., functions=...)`` or ``tools=``.
    """
    headers = {"Accept": "application/json"}
    if isinstance(openapi, dict):
        data = json.dumps(openapi, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    elif isinstance(openapi, str) and openapi.strip():
        data = openapi.encode("utf-8")
    else:
        raise TypeError(f"openapi must be a non-empty str or a dict, got {type(openapi).__name__}")
    target = _session(session, config)
    # The official SDK sends the document as the raw body; so do we.
    response = target.call("POST", "/functions/convert", data=data, headers=headers)
    functions = _object(_json(response), "functions/convert").get("functions")
    if not isinstance(functions, list):
        raise StreamError("the functions/convert reply has no 'functions' list")
    return functions

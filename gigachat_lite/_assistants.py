"""Assistants: a model, instructions, files and functions kept on the server, named by ``assistant_id``.

``session.assistants`` (and :data:`gigachat_lite.assistants`, on the shared
session of the environment's configuration) is the official SDK 0.2.4a1's
``client.assistants`` with the same paths and bodies
(``reference/API_FACTS.md`` 4.1):

=====================================  ==========================================
``list()`` / ``get(assistant_id)``     ``GET /assistants`` (``?assistant_id=``)
``create(model, name, ...)``           ``POST /assistants``
``update(assistant_id, ...)``          ``POST /assistants/modify``
``delete(assistant_id)``               ``POST /assistants/delete``
``delete_file(assistant_id, file_id)`` ``POST /assistants/files/delete``
=====================================  ==========================================

Bodies carry every field, ``None`` as ``null``, as the SDK sends them: on
``modify`` a ``null`` leaves the field as it was. Replies become
:class:`Assistant`; the recorded replies list the files as ``file_ids`` (ids)
where the SDK expects ``files`` (``{"file_id", "name"}``): both are read.
The input checks here are shared with :mod:`._threads`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence

from ._chat.request import check_param
from .errors import InvalidResponseError, NotFoundError
from .results import json_object, json_reply

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Assistant", "Assistants"]

JSON_ACCEPT = {"Accept": "application/json"}


class Assistant:
    """An assistant, as the server lists it.

    Attributes:
        assistant_id: its id, for ``assistant_id=`` of threads and chats.
        model, name, description, instructions: as set (``None`` when unset).
        file_ids: the ids of its files.
        files: its files as ``{"file_id", "name"}`` (``name`` is ``None`` when
            the server sent only ``file_ids``, as the recorded replies do).
        metadata: the dict it was given, or ``None``.
        functions: its function descriptions, or ``None``.
        threads_count: how many threads use it, when the server says.
        created_at, updated_at: Unix times.
        raw: the reply's object as sent.
    """

    __slots__ = ("assistant_id", "model", "name", "description", "instructions", "file_ids", "files", "metadata",
                 "functions", "threads_count", "created_at", "updated_at", "raw")

    def __init__(self, payload: Any) -> None:
        if not isinstance(payload, dict) or not _is_id(payload.get("assistant_id")):
            raise InvalidResponseError("the assistant in the reply has no assistant_id")
        self.assistant_id: str = payload["assistant_id"]
        self.model: Optional[str] = optional(payload, "model", str)
        self.name: Optional[str] = optional(payload, "name", str)
        self.description: Optional[str] = optional(payload, "description", str)
        self.instructions: Optional[str] = optional(payload, "instructions", str)
        listed, ids = payload.get("files"), payload.get("file_ids")
        if isinstance(listed, list) and all(isinstance(f, dict) and _is_id(f.get("file_id")) for f in listed):
            self.files: List[Dict[str, Any]] = [{"file_id": f["file_id"], "name": f.get("name")} for f in listed]
        elif isinstance(ids, list) and all(_is_id(f) for f in ids):
            self.files = [{"file_id": f, "name": None} for f in ids]
        else:
            self.files = []
        self.file_ids: List[str] = [f["file_id"] for f in self.files]
        self.metadata: Optional[Dict[str, Any]] = optional(payload, "metadata", dict)
        self.functions: Optional[List[Dict[str, Any]]] = optional(payload, "functions", list)
        self.threads_count: Optional[int] = optional(payload, "threads_count", int)
        self.created_at: Optional[int] = optional(payload, "created_at", int)
        self.updated_at: Optional[int] = optional(payload, "updated_at", int)
        self.raw: Dict[str, Any] = payload

    def __repr__(self) -> str:
        return f"<Assistant {self.assistant_id!r} name={self.name!r} model={self.model!r}>"


class Assistants:
    """The assistants API: ``session.assistants`` or :data:`gigachat_lite.assistants`.

    Every argument is checked before any request (``TypeError``/``ValueError``
    naming it); failures are gigachat_lite's exceptions (an unknown id:
    :class:`NotFoundError`).
    """

    __slots__ = ("_session",)

    def __init__(self, session: Callable[[], "Session"]) -> None:
        self._session = session  # called per request: the shared namespace follows reset() and the environment

    def list(self) -> List[Assistant]:
        """``GET /assistants``: every assistant."""
        return [Assistant(item) for item in _data(self._get("/assistants"))]

    def get(self, assistant_id: str) -> Assistant:
        """``GET /assistants?assistant_id=...``: one assistant.

        Raises:
            NotFoundError: no such assistant.
        """
        found = _data(self._get("/assistants", params={"assistant_id": check_id(assistant_id, "assistant_id")}))
        if not found:
            raise NotFoundError(f"no assistant {assistant_id!r}", status_code=404)
        return Assistant(found[0])

    def create(
        self,
        model: str,
        name: str,
        *,
        instructions: Optional[str] = None,
        description: Optional[str] = None,
        file_ids: Optional[Sequence[str]] = None,
        functions: Optional[Sequence[Mapping[str, Any]]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Assistant:
        """``POST /assistants``: a new assistant.

        ``instructions`` is its system prompt; ``file_ids`` are uploaded files
        (``upload_file(..., purpose="assistant")``); ``functions`` are v1
        function descriptions; ``metadata`` is a JSON object. The server
        answers with the id and time only: the rest of the returned
        :class:`Assistant` is what was sent (its ``raw`` is the reply).
        """
        body: Dict[str, Any] = {
            "model": check_id(model, "model"),
            "name": check_id(name, "name"),
            "description": _text(description, "description"),
            "instructions": _text(instructions, "instructions"),
            "file_ids": check_ids(file_ids, "file_ids"),
            "metadata": _metadata(metadata),
        }
        if functions is not None:  # the SDK sends functions only when given
            body["functions"] = check_functions(functions)
        reply = json_object(json_reply(self._post("/assistants", body)), "assistants")
        assistant = Assistant({**{k: v for k, v in body.items() if v is not None}, "updated_at": reply.get("created_at"), **reply})
        assistant.raw = reply
        return assistant

    def update(
        self,
        assistant_id: str,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        instructions: Optional[str] = None,
        file_ids: Optional[Sequence[str]] = None,
        functions: Optional[Sequence[Mapping[str, Any]]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Assistant:
        """``POST /assistants/modify``: change the fields given (``None`` leaves one as it was); the assistant after."""
        body: Dict[str, Any] = {
            "assistant_id": check_id(assistant_id, "assistant_id"),
            "name": None if name is None else check_id(name, "name"),
            "description": _text(description, "description"),
            "instructions": _text(instructions, "instructions"),
            "file_ids": check_ids(file_ids, "file_ids"),
            "metadata": _metadata(metadata),
        }
        if functions is not None:
            body["functions"] = check_functions(functions)
        return Assistant(json_reply(self._post("/assistants/modify", body)))

    def delete(self, assistant_id: str) -> bool:
        """``POST /assistants/delete``: delete an assistant; ``True`` once the server says it is deleted."""
        body = {"assistant_id": check_id(assistant_id, "assistant_id")}
        return deleted(json_reply(self._post("/assistants/delete", body)), "assistants/delete")

    def delete_file(self, assistant_id: str, file_id: str) -> bool:
        """``POST /assistants/files/delete``: detach a file from an assistant; ``True`` once the server says so."""
        body = {"assistant_id": check_id(assistant_id, "assistant_id"), "file_id": check_id(file_id, "file_id")}
        return deleted(json_reply(self._post("/assistants/files/delete", body)), "assistants/files/delete")

    def _get(self, path: str, **kwargs: Any) -> Any:
        return json_reply(self._session().call("GET", path, headers=JSON_ACCEPT, **kwargs))

    def _post(self, path: str, body: Dict[str, Any]) -> Any:
        return self._session().call("POST", path, json=body, headers=JSON_ACCEPT)


# -- replies ----------------------------------------------------------------------------------


def _data(payload: Any) -> List[Any]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise InvalidResponseError("the assistants reply has no 'data' list")
    return data


def deleted(payload: Any, what: str) -> bool:
    """The ``deleted`` flag of a deletion reply."""
    flag = payload.get("deleted") if isinstance(payload, dict) else None
    if not isinstance(flag, bool):
        raise InvalidResponseError(f"the {what} reply has no 'deleted' flag")
    return flag


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def optional(payload: Dict[str, Any], name: str, kind: type) -> Any:
    """``payload[name]`` when it is a ``kind`` (a bool is no int), else ``None``: an odd field is not worth refusing a reply."""
    value = payload.get(name)
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else None


# -- inputs, checked before any request ---------------------------------------------------------


def check_id(value: Any, what: str) -> str:
    """A non-empty ``str`` (an id or a name), else ``TypeError``/``ValueError`` naming ``what``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty str")
    return value


def check_optional_id(value: Any, what: str) -> Optional[str]:
    return None if value is None else check_id(value, what)


def check_ids(values: Any, what: str) -> Optional[List[str]]:
    """``None``, or a list of ids (a lone ``str`` is refused: it is not a list of ids)."""
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{what} must be a list of str ids, got {type(values).__name__}")
    return [check_id(value, f"{what}[{i}]") for i, value in enumerate(values)]


def check_functions(functions: Any) -> List[Dict[str, Any]]:
    """v1 function descriptions (dicts with a ``name``), as plain dicts JSON can carry."""
    check_param("functions", functions)
    result = [dict(function) for function in functions]
    check_json(result, "functions")
    return result


def check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"{what} cannot be sent as JSON ({exc})") from None


def _text(value: Any, what: str) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    return value


def _metadata(value: Any) -> Optional[Dict[str, Any]]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"metadata keys must be str, got {key!r}")
    result = dict(value)
    check_json(result, "metadata")
    return result

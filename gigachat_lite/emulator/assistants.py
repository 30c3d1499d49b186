"""The assistants API: ``/assistants`` (list, get, create), ``/assistants/modify``,
``/assistants/delete`` and ``/assistants/files/delete``; kept in memory.

Requests as the official SDK 0.2.4a1 sends them (``reference/sdk-0.2.4a1-requests.json``),
replies shaped like ``fixtures/assistants/*.json``, including their quirk: the files
come as ``file_ids`` (a list of ids), which the SDK ignores; ``files`` (``[{"file_id",
"name"}]``, what the SDK reads) is sent beside it. An assistant's ``model`` and
``instructions`` (as a system message) serve a chat or thread that names its
``assistant_id``; its ``functions`` serve v1 chats and thread runs that offer none.

Checks (422 unless said): ``model`` a served chat model (404 otherwise), ``name`` a
non-empty string (required on create), ``description``/``instructions`` strings,
``file_ids`` ids of stored files (404 for an unknown one), ``metadata`` an object of at
most 16 keys, ``functions`` objects with a ``name``. ``null`` means "not given" (the
SDK sends every field, nulls included); on modify it leaves the field as it was.
"""

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Tuple

from .files import FileStore
from .thread_store import ThreadStore
from .wire import Reply, dumps, error_reply, json_reply, parse_json

MAX_METADATA_KEYS = 16
NO_SUCH_ASSISTANT = (404, "No such assistant")


@dataclass
class Assistant:
    """One assistant."""

    model: str
    name: str
    description: Optional[str] = None
    instructions: Optional[str] = None
    file_ids: List[str] = field(default_factory=list)
    metadata: Optional[Dict[str, Any]] = None
    functions: Optional[List[Dict[str, Any]]] = None
    assistant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = 0

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at


class AssistantStore:
    """Every assistant by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assistants: Dict[str, Assistant] = {}

    def add(self, assistant: Assistant) -> Assistant:
        """Keep ``assistant``; return it."""
        with self._lock:
            self._assistants[assistant.assistant_id] = assistant
        return assistant

    def get(self, assistant_id: Any) -> Optional[Assistant]:
        """The assistant, or ``None``."""
        with self._lock:
            return self._assistants.get(assistant_id) if isinstance(assistant_id, str) else None

    def delete(self, assistant_id: str) -> bool:
        """Forget an assistant; whether it existed."""
        with self._lock:
            return self._assistants.pop(assistant_id, None) is not None

    def listing(self) -> List[Assistant]:
        """Every assistant, oldest first."""
        with self._lock:
            return list(self._assistants.values())


class State(Protocol):
    """What the assistants API reads of the emulator."""

    assistants: AssistantStore
    threads: ThreadStore
    file_store: FileStore

    def model_list(self) -> List[Tuple[str, str]]: ...  # noqa: E704


def wire(state: State, assistant: Assistant) -> Dict[str, Any]:
    """The assistant object, key order of ``get_assistants.json`` plus the SDK's fields."""
    body: Dict[str, Any] = {"assistant_id": assistant.assistant_id, "created_at": assistant.created_at}
    if assistant.name is not None:
        body["name"] = assistant.name
    if assistant.description is not None:
        body["description"] = assistant.description
    if assistant.instructions is not None:
        body["instructions"] = assistant.instructions
    body.update(model=assistant.model, updated_at=assistant.updated_at)
    if assistant.metadata is not None:
        body["metadata"] = assistant.metadata
    body["file_ids"] = list(assistant.file_ids)
    body["files"] = [{"file_id": f, "name": _file_name(state.file_store, f)} for f in assistant.file_ids]
    body["threads_count"] = state.threads.count_for(assistant.assistant_id)
    if assistant.functions is not None:
        body["functions"] = assistant.functions
    return body


def _file_name(store: FileStore, file_id: str) -> str:
    found = store.get(file_id)
    return str(found[0]["filename"]) if found is not None else file_id


def _string(data: Dict[str, Any], name: str, required: bool = False) -> Optional[str]:
    """Why ``data[name]`` is not an optional string (non-empty for ``name``), or ``None``."""
    value = data.get(name)
    if value is None:
        return "%s is required" % name if required else None
    if name == "name" and not (isinstance(value, str) and value):
        return "name must be a non-empty string"
    return None if isinstance(value, str) else "%s must be a string" % name


def functions_problem(functions: Any, where: str = "functions") -> Optional[str]:
    """Why a v1 ``functions`` list is invalid, or ``None``."""
    if not isinstance(functions, list):
        return "%s must be a list of objects with a name" % where
    for number, function in enumerate(functions):
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            return "%s[%d] must be an object with a non-empty string name" % (where, number)
        if function.get("parameters") is not None and not isinstance(function["parameters"], dict):
            return "%s[%d].parameters must be an object" % (where, number)
    return None


def _problem(state: State, data: Dict[str, Any], creating: bool) -> Optional[Reply]:
    """The refusal of a create/modify body, or ``None``."""
    why = (
        _string(data, "name", required=creating)
        or _string(data, "description")
        or _string(data, "instructions")
    )
    model = data.get("model")
    if why is None and (creating or model is not None):
        if not isinstance(model, str):
            why = "model is required" if model is None else "model must be a string"
        elif (model, "chat") not in state.model_list():
            return error_reply(404, "No such model")
    metadata = data.get("metadata")
    if why is None and metadata is not None and not isinstance(metadata, dict):
        why = "metadata must be an object"
    if why is None and isinstance(metadata, dict) and len(metadata) > MAX_METADATA_KEYS:
        why = "metadata holds at most %d keys, got %d" % (MAX_METADATA_KEYS, len(metadata))
    if why is None and data.get("functions") is not None:
        why = functions_problem(data["functions"])
    file_ids = data.get("file_ids")
    if why is None and file_ids is not None:
        if not isinstance(file_ids, list) or not all(isinstance(f, str) for f in file_ids):
            why = "file_ids must be a list of file ids"
        else:
            unknown = [f for f in file_ids if state.file_store.get(f) is None]
            if unknown:
                return error_reply(404, "No such file: %s" % unknown[0])
    return None if why is None else error_reply(422, why)


def allowed(sub: str) -> Optional[str]:
    """The method ``sub`` takes, or ``None`` when it is not an assistants path."""
    if sub == "/assistants":
        return "GET, POST"
    if sub in ("/assistants/modify", "/assistants/delete", "/assistants/files/delete"):
        return "POST"
    return None


def route(state: State, method: str, sub: str, query: Dict[str, List[str]], body: bytes) -> Reply:
    """Answer an assistants path once the method and the bearer token are checked."""
    if method == "GET":
        return _get(state, query)
    data = parse_json(body)
    if isinstance(data, Reply):
        return data
    if sub == "/assistants":
        return _create(state, data)
    assistant_id = data.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        return error_reply(422, "assistant_id must be a non-empty string")
    found = state.assistants.get(assistant_id)
    if found is None:
        return error_reply(*NO_SUCH_ASSISTANT)
    if sub == "/assistants/modify":
        return _modify(state, found, data)
    if sub == "/assistants/delete":
        state.assistants.delete(found.assistant_id)
        return json_reply({"assistant_id": found.assistant_id, "deleted": True})
    file_id = data.get("file_id")
    if not isinstance(file_id, str) or file_id not in found.file_ids:
        return error_reply(404, "No such file in the assistant: %s" % (file_id,))
    found.file_ids.remove(file_id)
    found.updated_at = int(time.time())
    return json_reply({"file_id": file_id, "deleted": True})


def _get(state: State, query: Dict[str, List[str]]) -> Reply:
    wanted = query.get("assistant_id")
    if wanted is None:
        return json_reply({"data": [wire(state, a) for a in state.assistants.listing()]})
    found = state.assistants.get(wanted[0])
    if found is None:
        return error_reply(*NO_SUCH_ASSISTANT)
    return json_reply({"data": [wire(state, found)]})


def _create(state: State, data: Dict[str, Any]) -> Reply:
    refused = _problem(state, data, creating=True)
    if refused is not None:
        return refused
    assistant = state.assistants.add(Assistant(
        model=data["model"], name=data["name"], description=data.get("description"),
        instructions=data.get("instructions"), file_ids=list(data.get("file_ids") or []),
        metadata=data.get("metadata"), functions=data.get("functions"),
    ))
    return json_reply({"assistant_id": assistant.assistant_id, "created_at": assistant.created_at})


def _modify(state: State, found: Assistant, data: Dict[str, Any]) -> Reply:
    refused = _problem(state, data, creating=False)
    if refused is not None:
        return refused
    for name in ("model", "name", "description", "instructions", "metadata", "functions"):
        if data.get(name) is not None:
            setattr(found, name, data[name])
    if data.get("file_ids") is not None:
        found.file_ids = list(data["file_ids"])
    found.updated_at = int(time.time())
    return Reply(200, dumps(wire(state, found)))

"""What a chat request runs in: its model, assistant and stored thread, and its prompt cache.

Both contracts (and thread runs) resolve the model the same way: ``model`` when
given, else the assistant's (``assistant_id``, or v1 ``storage.assistant_id``), else
the stored thread's (``storage.thread_id``), else ``GigaChat``. An unknown model is
404 ``No such model``, an unknown assistant 404 ``No such assistant``, an unknown
thread 404 ``No such thread``.

``storage`` (an object; v1 ``{is_stateful, limit, assistant_id, thread_id,
metadata}``, v2 ``{limit, thread_id, metadata}``) keeps the turn in a thread: a new one
without ``thread_id``; the thread's earlier messages (the last ``limit`` of them) come
before the request's, and the reply carries ``thread_id`` and ``message_id``. An
assistant's ``instructions`` come first, as a system message.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Protocol, Tuple, Union

from .assistants import Assistant, AssistantStore
from .files import FileStore
from .prompt_cache import PromptCache
from .replies import ChatSettings, split_pieces
from .thread_store import Message, Thread, ThreadStore
from .wire import Reply, error_reply

DEFAULT_MODEL = "GigaChat"


class ChatState(ChatSettings, Protocol):
    """The emulator state a chat reply reads (implemented by ``Emulator``)."""

    file_store: FileStore
    prompt_cache: PromptCache
    assistants: AssistantStore
    threads: ThreadStore
    call_ids: str


@dataclass
class Context:
    """The resolved model, assistant and thread of one request."""

    model: str
    assistant: Optional[Assistant] = None
    thread: Optional[Thread] = None
    history: List[Message] = field(default_factory=list)
    store: bool = False


def storage_problem(storage: Any, v1: bool) -> Optional[str]:
    """Why ``storage`` is invalid, or ``None``."""
    if storage is None:
        return None
    if not isinstance(storage, dict):
        return "storage must be an object%s" % ("" if v1 else " (storage=true is sent as {})")
    if v1 and not isinstance(storage.get("is_stateful"), bool):
        return "storage.is_stateful must be a boolean"
    limit = storage.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        return "storage.limit must be a positive integer"
    for name in ("thread_id", "assistant_id") if v1 else ("thread_id",):
        if storage.get(name) is not None and not isinstance(storage[name], str):
            return "storage.%s must be a string" % name
    if storage.get("metadata") is not None and not isinstance(storage["metadata"], dict):
        return "storage.metadata must be an object"
    return None


def resolve(state: ChatState, data: Dict[str, Any], v1: bool) -> Union[Context, Reply]:
    """The context of ``data``, or the 404/422 refusing it."""
    why = storage_problem(data.get("storage"), v1)
    if why is not None:
        return error_reply(422, why)
    storage = data.get("storage")
    assistant_id = data.get("assistant_id")
    if assistant_id is None and v1 and storage is not None:
        assistant_id = storage.get("assistant_id")
    if assistant_id is not None and not isinstance(assistant_id, str):
        return error_reply(422, "assistant_id must be a string")
    thread = None
    if storage is not None and storage.get("thread_id") is not None:
        thread = state.threads.get(storage["thread_id"])
        if thread is None:
            return error_reply(404, "No such thread")
        assistant_id = assistant_id or thread.assistant_id
    assistant = state.assistants.get(assistant_id) if assistant_id is not None else None
    if assistant_id is not None and assistant is None:
        return error_reply(404, "No such assistant")
    model = data.get("model")
    if model is None:
        model = assistant.model if assistant is not None else thread.model if thread is not None else DEFAULT_MODEL
    if not isinstance(model, str):
        return error_reply(422, "model must be a string")
    if (model, "chat") not in state.model_list():
        return error_reply(404, "No such model")
    history: List[Message] = []
    if thread is not None:
        limit = storage.get("limit") if storage is not None else None
        history = thread.messages[-limit:] if limit else list(thread.messages)
    return Context(model, assistant, thread, history, storage is not None)


def instructions(context: Context) -> List[Dict[str, Any]]:
    """The assistant's instructions as a leading v1 system message (none without)."""
    if context.assistant is None or not context.assistant.instructions:
        return []
    return [{"role": "system", "content": context.assistant.instructions}]


def open_thread(state: ChatState, context: Context) -> Thread:
    """The thread a stored turn goes to: the given one or a new one."""
    if context.thread is None:
        assistant_id = context.assistant.assistant_id if context.assistant is not None else None
        context.thread = state.threads.create(context.model, assistant_id)
    return context.thread


def units(messages: List[Tuple[str, str]], piece_size: int) -> List[Hashable]:
    """The emulated tokens of ``(role, text)`` pairs, for the prompt cache."""
    return [(role, piece) for role, text in messages if text for piece in split_pieces(text, piece_size)]


def session_of(headers: Any) -> Optional[str]:
    """The request's ``X-Session-ID``, or ``None``."""
    if headers is None:
        return None
    value = headers.get("X-Session-ID")
    return value if isinstance(value, str) and value else None

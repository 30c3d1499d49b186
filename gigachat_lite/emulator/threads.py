"""The threads API: list, create, retrieve and delete threads, add and list messages,
run a thread (plain, as a stream, or with new messages), rerun, and the run status.

Requests as the official SDK 0.2.4a1 sends them (``reference/sdk-0.2.4a1-requests.json``,
``API_FACTS.md`` 4.2), replies shaped like ``fixtures/threads/*``:

* ``GET /threads?assistants_ids=..&limit=..&before=..`` -> ``{"threads": [thread]}``,
  most recently updated first; ``POST /threads`` -> a thread; ``POST /threads/retrieve``
  ``{"threads_ids"}`` -> the known ones; ``POST /threads/delete`` ``{"thread_id"}`` ->
  200 with an empty body (as recorded);
* ``POST /threads/messages`` ``{"thread_id"|"model"|"assistant_id", "messages"}``
  (a new thread without ``thread_id``; the SDK's ``null`` fields and odd ``id_`` key
  pass) -> ``{"thread_id", "messages": [{"created_at", "message_id"}]}``;
  ``GET /threads/messages?thread_id=..&limit=..&before=..`` -> ``{"thread_id",
  "messages"}``, oldest first;
* ``POST /threads/run`` ``{"thread_id", "assistant_id", options}`` ->
  ``{"status": "in_progress", "thread_id", "created_at"}`` (the run is over at once:
  ``GET /threads/run?thread_id=..`` then says ``ready`` and lists the run's messages);
  with ``"stream": true`` the reply streams instead;
* ``POST /threads/messages/run`` (messages, then a run) and
  ``POST /threads/messages/rerun`` (the last run's reply answered again) ->
  ``{"object": "threads.messages.run", "model", "thread_id", "message_id", "created",
  "usage", "message", "finish_reason"}``, or a stream.

Streams use v1 framing (``data: {json}``, ``data: [DONE]``): every chunk carries
``choices[].delta``, ``created``, ``model``, ``object``, ``thread_id``, ``message_id``
and its own ``usage`` (the first the prompt tokens, each piece one completion token);
the last piece carries ``finish_reason``. ``limit`` and ``before`` of the listings are
a count (the newest ones) and a Unix time (created before it): no source documents
them. Run options (``temperature``, ``top_p``, ``limit`` of context messages,
``max_tokens``, ``repetition_penalty``, ``profanity_check``, ``flags``,
``function_call``, ``functions``, ``update_interval``) are checked; the answer is the
v1 chat's (``chat_v1.answer``), in the thread's context with its assistant's
instructions and functions.
"""

import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from .assistants import Assistant, functions_problem
from .chat_context import DEFAULT_MODEL, ChatState
from .chat_v1 import ROLES, MODEL_VERSION, Turn, answer, attachments, positive
from .replies import DONE_EVENT, split_pieces
from .thread_store import Message, Thread
from .wire import JSON_TYPE, SSE_TYPE, Reply, dumps, error_reply, json_reply, parse_json, sse_event

RUN_OBJECT = "threads.messages.run"
THREAD_RUN_OBJECT = "threads.run"  # what /threads/run streams: not recorded, named after its path
NO_SUCH_THREAD = (404, "No such thread")
_NUMBERS = ("temperature", "top_p", "repetition_penalty", "update_interval")

Query = Dict[str, List[str]]


def allowed(sub: str) -> Optional[str]:
    """The method ``sub`` takes, or ``None`` when it is not a threads path."""
    if sub in ("/threads", "/threads/messages", "/threads/run"):
        return "GET, POST"
    if sub in ("/threads/retrieve", "/threads/delete", "/threads/messages/run", "/threads/messages/rerun"):
        return "POST"
    return None


def route(state: ChatState, method: str, sub: str, query: Query, body: bytes) -> Reply:
    """Answer a threads path once the method and the bearer token are checked."""
    with state.threads.lock:  # a run reads the messages it adds to: one request at a time
        if method == "GET":
            return _GETS[sub](state, query)
        data = parse_json(body)
        if isinstance(data, Reply):
            return data
        return _POSTS[sub](state, data)


# -- reading ---------------------------------------------------------------------------


def _count(query: Query, name: str) -> Union[Optional[int], Reply]:
    values = query.get(name)
    if not values:
        return None
    try:
        number = int(values[0])
    except ValueError:
        number = 0
    return number if number >= 1 else error_reply(422, "%s must be a positive integer" % name)


def _window(items: List[Any], query: Query, stamp: Callable[[Any], int], newest_first: bool) -> Union[List[Any], Reply]:
    limit, before = _count(query, "limit"), _count(query, "before")
    for value in (limit, before):
        if isinstance(value, Reply):
            return value
    if isinstance(before, int):
        items = [i for i in items if stamp(i) < before]
    if isinstance(limit, int):
        items = items[:limit] if newest_first else items[-limit:]
    return items


def _list(state: ChatState, query: Query) -> Reply:
    threads = state.threads.listing()
    wanted = query.get("assistants_ids")
    if wanted:
        threads = [t for t in threads if t.assistant_id in wanted]
    kept = _window(threads, query, lambda t: t.created_at, newest_first=True)
    return kept if isinstance(kept, Reply) else json_reply({"threads": [t.wire() for t in kept]})


def _first(query: Query, name: str) -> Optional[str]:
    values = query.get(name)
    return values[0] if values else None


def _thread_of(state: ChatState, value: Any) -> Union[Thread, Reply]:
    if not isinstance(value, str) or not value:
        return error_reply(422, "thread_id must be a non-empty string")
    thread = state.threads.get(value)
    return thread if thread is not None else error_reply(*NO_SUCH_THREAD)


def _messages(state: ChatState, query: Query) -> Reply:
    thread = _thread_of(state, _first(query, "thread_id"))
    if isinstance(thread, Reply):
        return thread
    kept = _window(thread.messages, query, lambda m: m.created_at, newest_first=False)
    if isinstance(kept, Reply):
        return kept
    return json_reply({"thread_id": thread.id, "messages": [m.wire() for m in kept]})


def _run_status(state: ChatState, query: Query) -> Reply:
    thread = _thread_of(state, _first(query, "thread_id"))
    if isinstance(thread, Reply):
        return thread
    if thread.last_run is None:
        return error_reply(404, "The thread has not been run")
    return json_reply({"status": "ready", "thread_id": thread.id, "updated_at": thread.updated_at,
                       "model": thread.model, "messages": [m.wire(with_model=False) for m in thread.last_run]})


# -- changing --------------------------------------------------------------------------


def _assistant(state: ChatState, data: Dict[str, Any]) -> Union[Optional[Assistant], Reply]:
    assistant_id = data.get("assistant_id")
    if assistant_id is None:
        return None
    found = state.assistants.get(assistant_id)
    return found if found is not None else error_reply(404, "No such assistant")


def _new_thread(state: ChatState, data: Dict[str, Any]) -> Union[Thread, Reply]:
    assistant = _assistant(state, data)
    if isinstance(assistant, Reply):
        return assistant
    model = data.get("model") or (assistant.model if assistant is not None else DEFAULT_MODEL)
    if not isinstance(model, str):
        return error_reply(422, "model must be a string")
    if (model, "chat") not in state.model_list():
        return error_reply(404, "No such model")
    return state.threads.create(model, assistant.assistant_id if assistant is not None else None)


def _create(state: ChatState, data: Dict[str, Any]) -> Reply:
    thread = _new_thread(state, data)
    return thread if isinstance(thread, Reply) else json_reply(thread.wire())


def _retrieve(state: ChatState, data: Dict[str, Any]) -> Reply:
    ids = data.get("threads_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return error_reply(422, "threads_ids must be a list of thread ids")
    found = [state.threads.get(i) for i in ids]
    return json_reply({"threads": [t.wire() for t in found if t is not None]})


def _delete(state: ChatState, data: Dict[str, Any]) -> Reply:
    thread = _thread_of(state, data.get("thread_id"))
    if isinstance(thread, Reply):
        return thread
    state.threads.delete(thread.id)
    return Reply(200, b"", JSON_TYPE)


def _messages_problem(state: ChatState, messages: Any) -> Optional[Reply]:
    if not isinstance(messages, list) or not messages:
        return error_reply(422, "messages must be a non-empty list")
    for number, message in enumerate(messages):
        where = "messages[%d]" % number
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return error_reply(422, "%s.role must be one of %s" % (where, ", ".join(ROLES)))
        if not isinstance(message.get("content", ""), str):
            return error_reply(422, "%s.content must be a string" % where)
        files = message.get("attachments")
        if files is not None and not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
            return error_reply(422, "%s.attachments must be a list of file ids" % where)
        unknown = [f for f in files or [] if state.file_store.get(f) is None]
        if unknown:
            return error_reply(404, "No such file: %s" % unknown[0])
        call = message.get("function_call")
        if call is not None and not (isinstance(call, dict) and isinstance(call.get("name"), str)):
            return error_reply(422, "%s.function_call must be an object with a name" % where)
    return None


def _add(state: ChatState, data: Dict[str, Any]) -> Union[Tuple[Thread, List[Message]], Reply]:
    """Check and append the request's messages (to a new thread without ``thread_id``)."""
    refused = _messages_problem(state, data.get("messages"))
    if refused is not None:
        return refused
    thread = _thread_of(state, data["thread_id"]) if data.get("thread_id") is not None else _new_thread(state, data)
    if isinstance(thread, Reply):
        return thread
    added = thread.add(
        Message(role=m["role"], content=m.get("content") or "", model=thread.model,
                attachments=attachments(state, m.get("attachments")), function_call=m.get("function_call"),
                name=m.get("name"))
        for m in data["messages"]
    )
    return thread, added


def _add_messages(state: ChatState, data: Dict[str, Any]) -> Reply:
    added = _add(state, data)
    if isinstance(added, Reply):
        return added
    thread, messages = added
    return json_reply({"thread_id": thread.id,
                       "messages": [{"created_at": m.created_at, "message_id": m.message_id} for m in messages]})


# -- runs ------------------------------------------------------------------------------


def options_problem(data: Dict[str, Any]) -> Optional[str]:
    """Why the run options of ``data`` are invalid, or ``None``."""
    for name in _NUMBERS:
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return "%s must be a number" % name
    for name in ("limit", "max_tokens"):
        if data.get(name) is not None and not positive(data[name]):
            return "%s must be a positive integer" % name
    if data.get("profanity_check") is not None and not isinstance(data["profanity_check"], bool):
        return "profanity_check must be a boolean"
    flags = data.get("flags")
    if flags is not None and not (isinstance(flags, list) and all(isinstance(f, str) for f in flags)):
        return "flags must be a list of strings"
    if data.get("functions") is not None:
        return functions_problem(data["functions"])
    if not isinstance(data.get("stream", False), bool):
        return "stream must be a boolean"
    return None


def _turn(state: ChatState, thread: Thread, data: Dict[str, Any], assistant: Optional[Assistant]) -> Union[Turn, Reply]:
    """The run's answer, in the thread's context (its last ``limit`` messages)."""
    if not thread.messages:
        return error_reply(422, "the thread has no messages to run")
    assistant = assistant or state.assistants.get(thread.assistant_id)
    context = thread.messages[-data["limit"]:] if data.get("limit") else thread.messages
    system = [{"role": "system", "content": assistant.instructions}] if assistant and assistant.instructions else []
    body: Dict[str, Any] = {"model": thread.model, "messages": system + [m.chat() for m in context]}
    body.update((k, data[k]) for k in ("max_tokens", "functions", "function_call") if data.get(k) is not None)
    if "functions" not in body and assistant is not None and assistant.functions:
        body["functions"] = assistant.functions
    try:
        turn = answer(state, body)
    except Exception:  # a broken reply callable is the server's fault, as a 500
        return error_reply(500, "Internal Server Error")
    return turn if isinstance(turn, Turn) else error_reply(422, turn)


def _message(turn: Turn) -> Dict[str, Any]:
    body: Dict[str, Any] = {"content": turn.text, "role": "assistant"}
    if turn.call is not None:
        body.update(function_call=turn.call, functions_state_id=turn.state_id)
    return body


def _usage(prompt: int, completion: int) -> Dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _events(turn: Turn, name: str, thread: Thread, reply: Message, kind: str, piece_size: int) -> List[bytes]:
    """The stream of a run, framed as ``fixtures/threads/post_thread_messages_run.stream``."""
    prompt = turn.usage["prompt_tokens"] + turn.usage.get("precached_prompt_tokens", 0)
    if turn.call is not None:
        deltas = [_message(turn)]
        counts = [turn.usage["completion_tokens"]]
    else:
        deltas = [{"content": p} for p in split_pieces(turn.text, piece_size)]
        deltas[0]["role"] = "assistant"
        counts = [1 if p["content"] else 0 for p in deltas]
    events = []
    for number, (delta, count) in enumerate(zip(deltas, counts)):
        choice: Dict[str, Any] = {"delta": delta, "index": 0}
        if number == len(deltas) - 1:
            choice["finish_reason"] = turn.finish_reason
        events.append(sse_event({
            "choices": [choice], "created": reply.created_at, "model": name, "object": kind,
            "usage": _usage(prompt if number == 0 else 0, count), "thread_id": thread.id, "message_id": reply.message_id,
        }))
    return events + [DONE_EVENT]


def _run(state: ChatState, thread: Thread, data: Dict[str, Any], kind: str, whole: bool) -> Reply:
    """Run ``thread``: a stream, the completion (``whole``) or the run-started reply."""
    why = options_problem(data)
    if why is not None:
        return error_reply(422, why)
    assistant = _assistant(state, data)
    if isinstance(assistant, Reply):
        return assistant
    turn = _turn(state, thread, data, assistant)
    if isinstance(turn, Reply):
        return turn
    if assistant is not None and thread.assistant_id is None:
        thread.assistant_id = assistant.assistant_id
    reply = Message(role="assistant", content=turn.text, model=thread.model, function_call=turn.call,
                    finish_reason=turn.finish_reason)
    started = int(time.time())
    thread.finish_run(reply)
    name = "%s:%s" % (thread.model, MODEL_VERSION)
    if data.get("stream"):
        return Reply(200, content_type=SSE_TYPE, events=_events(turn, name, thread, reply, kind, state.piece_size))
    if not whole:
        return json_reply({"status": "in_progress", "thread_id": thread.id, "created_at": started})
    prompt = turn.usage["prompt_tokens"] + turn.usage.get("precached_prompt_tokens", 0)
    return Reply(200, dumps({
        "object": kind, "model": name, "thread_id": thread.id, "message_id": reply.message_id,
        "created": reply.created_at, "usage": _usage(prompt, turn.usage["completion_tokens"]),
        "message": _message(turn), "finish_reason": turn.finish_reason,
    }))


def _run_thread(state: ChatState, data: Dict[str, Any]) -> Reply:
    thread = _thread_of(state, data.get("thread_id"))
    return thread if isinstance(thread, Reply) else _run(state, thread, data, THREAD_RUN_OBJECT, whole=False)


def _run_messages(state: ChatState, data: Dict[str, Any]) -> Reply:
    why = options_problem(data)
    if why is not None:  # before the messages are added: a refused run changes nothing
        return error_reply(422, why)
    added = _add(state, data)
    return added if isinstance(added, Reply) else _run(state, added[0], data, RUN_OBJECT, whole=True)


def _rerun(state: ChatState, data: Dict[str, Any]) -> Reply:
    thread = _thread_of(state, data.get("thread_id"))
    if isinstance(thread, Reply):
        return thread
    if thread.last_run is None:
        return error_reply(422, "the thread has no run to rerun")
    why = options_problem(data)
    if why is not None:
        return error_reply(422, why)
    thread.drop_reply()
    return _run(state, thread, data, RUN_OBJECT, whole=True)


_GETS: Dict[str, Callable[[ChatState, Query], Reply]] = {
    "/threads": _list,
    "/threads/messages": _messages,
    "/threads/run": _run_status,
}
_POSTS: Dict[str, Callable[[ChatState, Dict[str, Any]], Reply]] = {
    "/threads": _create,
    "/threads/retrieve": _retrieve,
    "/threads/delete": _delete,
    "/threads/messages": _add_messages,
    "/threads/run": _run_thread,
    "/threads/messages/run": _run_messages,
    "/threads/messages/rerun": _rerun,
}

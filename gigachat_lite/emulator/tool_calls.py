"""v2 function calls: which functions a turn calls (several at once), their ids, and the
checks on the results sent back.

Which functions (deterministic, so tests can predict it), once ``chat_v2`` decided the
turn calls functions:

* ``tool_config.function_name`` (mode ``forced``): that one function;
* otherwise the candidates are the offered functions, or with mode ``any`` those in
  ``functions_names_any``; the turn calls every candidate whose name occurs in the
  user's text, in the order they occur, or the first candidate when none does;
  ``model_options.parallel_tool_calls: false`` keeps only the first of them.

Every call is ``{"id", "name", "arguments"}`` (arguments as in
``function_calls.arguments_for``); the ids are distinct UUIDs derived from the reply's
``tool_state_id``. A lone call has no ``id``, as in the recorded reply, unless the
emulator's ``call_ids`` is ``"always"``. Results go back as ``function_result`` parts of the ``tool``
message(s) right after the assistant message with the calls: all in one message or
one message per result. They are checked like this (422 naming the item): a result
must be a JSON object; with several calls every result names its call's ``id``; an id
must match a call of that assistant message, once; every call gets its result; a
single call's result may leave the id out but must carry the call's name.
"""

import uuid
from typing import Any, Dict, List, Optional, Tuple

from .function_calls import arguments_for

Parts = List[Dict[str, Any]]


def call_id(tool_state_id: str, number: int, name: str) -> str:
    """The id of call ``number`` of a reply: stable for a given state id, distinct per call."""
    try:
        space = uuid.UUID(tool_state_id)
    except ValueError:
        space = uuid.uuid5(uuid.NAMESPACE_OID, tool_state_id)
    return str(uuid.uuid5(space, "%d:%s" % (number, name)))


def _position(text: str, name: str) -> int:
    return text.find(name)


def choose(specs: List[Dict[str, Any]], config: Dict[str, Any], options: Dict[str, Any], text: str) -> List[Dict[str, Any]]:
    """The specifications the turn calls, in order (see the module doc)."""
    if "function_name" in config:
        return [next(s for s in specs if s["name"] == config["function_name"])]
    pool = specs
    if config.get("mode") == "any" and config.get("functions_names_any"):
        allowed = config["functions_names_any"]
        pool = [s for s in specs if s["name"] in allowed]
    mentioned = sorted((s for s in pool if s["name"] in text), key=lambda s: _position(text, s["name"]))
    if not mentioned:
        return pool[:1]
    return mentioned[:1] if options.get("parallel_tool_calls") is False else mentioned


def call_parts(chosen: List[Dict[str, Any]], text: str, tool_state_id: str, ids: bool = False) -> Parts:
    """One ``function_call`` part per chosen function; ids when several (or ``ids``)."""
    parts = []
    for number, spec in enumerate(chosen):
        call: Dict[str, Any] = {"name": spec["name"], "arguments": arguments_for(spec, text)}
        if ids or len(chosen) > 1:
            call = dict(id=call_id(tool_state_id, number, spec["name"]), **call)
        parts.append({"function_call": call})
    return parts


def _calls_of(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    calls = [p["function_call"] for p in message.get("content") or [] if isinstance(p, dict) and "function_call" in p]
    legacy = message.get("function_call")  # message-level, as older replies had it
    if isinstance(legacy, dict) and not calls:
        calls = [legacy]
    return [c for c in calls if isinstance(c, dict)]


def _results_after(messages: List[Dict[str, Any]], start: int) -> List[Tuple[str, Dict[str, Any]]]:
    found = []
    for number in range(start, len(messages)):
        if messages[number].get("role") != "tool":
            break
        for index, part in enumerate(messages[number].get("content") or []):
            if isinstance(part, dict) and "function_result" in part:
                found.append(("messages[%d].content[%d].function_result" % (number, index), part["function_result"]))
    return found


def results_problem(messages: List[Dict[str, Any]]) -> Optional[str]:
    """Why the function results of ``messages`` do not answer their calls, or ``None``."""
    for number, message in enumerate(messages):
        for index, part in enumerate(message.get("content") or []):
            result = part.get("function_result") if isinstance(part, dict) else None
            if isinstance(result, dict) and not isinstance(result.get("result"), dict):
                return ("messages[%d].content[%d].function_result.result must be a JSON object "
                        "(wrap other values, e.g. {\"result\": ...})" % (number, index))
        calls = _calls_of(message) if message.get("role") == "assistant" else []
        if not calls or number == len(messages) - 1:
            continue
        problem = _match(calls, _results_after(messages, number + 1), number)
        if problem:
            return problem
    return None


def _match(calls: List[Dict[str, Any]], results: List[Tuple[str, Dict[str, Any]]], number: int) -> Optional[str]:
    where = "messages[%d]" % number
    if not results:
        return "the function_call of %s needs a function_result in the tool message after it" % where
    ids = [c.get("id") for c in calls]
    answered: List[Any] = []
    for place, result in results:
        given = result.get("id")
        if given is None:
            if len(calls) > 1:
                return "%s.id is required: %s has %d function calls" % (place, where, len(calls))
            if result.get("name") != calls[0].get("name"):
                return "%s.name %r does not match the function_call %r of %s" % (
                    place, result.get("name"), calls[0].get("name"), where)
            given = ids[0]
        elif given not in ids:
            return "%s.id %r matches no function_call of %s" % (place, given, where)
        if given in answered:
            return "%s.id %r answers a call already answered" % (place, given)
        answered.append(given)
    missing = [i for i in ids if i not in answered]
    if missing:
        return "the function_call %r of %s has no function_result" % (missing[0], where)
    return None

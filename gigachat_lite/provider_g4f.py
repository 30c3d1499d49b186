"""The gpt4free glue of :class:`gigachat_lite.GigaChat`: its base classes, its result types, tools.

gpt4free is optional. When it is installed (it is imported with the provider
module, on first use of ``gigachat_lite.GigaChat``, never by ``import
gigachat_lite``), the provider really subclasses its ``AsyncGeneratorProvider``
and ``ProviderModelMixin``, and speaks its types to its own code: ``Usage``
(the server's counts), ``ToolCalls`` and ``FinishReason`` after the text. Every
other caller gets ``str`` chunks only, installed or not.

OpenAI-style ``tools``/``tool_choice`` and tool messages become GigaChat's
``functions``/``function_call`` and ``function`` messages here, and a
function call comes back as an OpenAI tool call whose id is the reply's
``functions_state_id``, so the follow-up request can send it back.

Nothing here imports the rest of the package: replies are read by duck typing
(``finish_reason``, ``usage``, ``function_call``, ``functions_state_id``).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Tuple, TypeVar, cast

__all__ = [
    "INSTALLED", "with_gpt4free_bases", "called_from_gpt4free", "key_for", "functions_from_tools",
    "messages_from_openai", "G4FReply",
]

try:
    # importlib rather than an import statement: gpt4free ships no type hints, and
    # mypy should neither follow it nor demand it to be installed.
    _base: Any = importlib.import_module("g4f.providers.base_provider")
    _response: Any = importlib.import_module("g4f.providers.response")
except ImportError:
    _base = _response = None

INSTALLED = _base is not None

# What a GigaChat function description may hold (OpenAI's "strict" and the like are not sent).
_FUNCTION_FIELDS = ("name", "description", "parameters", "few_shot_examples", "return_parameters")
# GigaChat's finish reasons that OpenAI (and so gpt4free) names differently.
_FINISH = {"function_call": "tool_calls", "blacklist": "content_filter"}

C = TypeVar("C", bound=type)


def with_gpt4free_bases(cls: C) -> C:
    """``cls`` itself without gpt4free; with it, a subclass that also has gpt4free's provider bases.

    ``cls`` comes first in the method order, so its contract wins over the
    bases' defaults; gpt4free's helpers (``get_dict``, ``get_parent``,
    ``get_parameters``, ``live``, ...) are the bases' own.
    """
    if not INSTALLED:
        return cls
    bases = (cls, _base.AsyncGeneratorProvider, _base.ProviderModelMixin)
    names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return cast(C, types.new_class(cls.__name__, bases, exec_body=lambda ns: ns.update(names)))


def called_from_gpt4free(depth: int) -> bool:
    """Whether the function ``depth`` frames up was called by gpt4free's own code.

    gpt4free calls a provider from its clients, ``ChatCompletion`` and retry
    providers, and understands its result types; a plain caller joins ``str``
    chunks. The caller's module is the only thing that tells them apart (gpt4free
    passes no marker).
    """
    if not INSTALLED:
        return False
    caller = sys._getframe(depth + 1).f_globals.get("__name__", "")
    return bool(caller == "g4f" or caller.startswith("g4f."))


def key_for(provider: str, api_key: Any) -> Any:
    """gpt4free's clients accept ``api_key={"Provider": key, ...}``: pick this provider's key."""
    if isinstance(api_key, Mapping):
        return api_key.get(provider)
    return api_key


# -- OpenAI tools -> GigaChat functions ---------------------------------------------------


def functions_from_tools(tools: Any, tool_choice: Any) -> Tuple[List[Dict[str, Any]], Any]:
    """OpenAI ``tools`` and ``tool_choice`` as GigaChat ``functions`` and ``function_call``.

    ``tool_choice`` ``"required"`` names the only tool when there is one and is
    ``"auto"`` otherwise (GigaChat cannot demand "some function").

    Raises:
        TypeError, ValueError: naming the bad tool, before any request.
    """
    if not isinstance(tools, (list, tuple)):
        raise TypeError(f"tools must be a list of tool dicts, got {type(tools).__name__}")
    functions = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function" or not isinstance(function, Mapping):
            raise ValueError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}, got {tool!r}")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise ValueError(f"tools[{i}]['function'] must have a non-empty 'name'")
        functions.append({k: v for k, v in function.items() if k in _FUNCTION_FIELDS})
    if tool_choice is None or tool_choice in ("auto", "none"):
        return functions, tool_choice
    if tool_choice == "required":
        return functions, {"name": functions[0]["name"]} if len(functions) == 1 else "auto"
    chosen = tool_choice.get("function") if isinstance(tool_choice, Mapping) else None
    if isinstance(chosen, Mapping) and isinstance(chosen.get("name"), str):
        if chosen["name"] not in [f["name"] for f in functions]:
            raise ValueError(f"tool_choice names {chosen['name']!r}, which is not among the tools")
        return functions, {"name": chosen["name"]}
    raise ValueError(
        "tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}, "
        f"got {tool_choice!r}"
    )


def _arguments(value: Any, where: str) -> Dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            raise ValueError(f"{where}: arguments is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: arguments must be a JSON object")
    return value


def _is_state_id(call_id: Any) -> bool:
    try:
        uuid.UUID(str(call_id))
    except ValueError:
        return False
    return True


def _function_content(content: Any) -> str:
    # GigaChat takes a function's result as a JSON object; OpenAI tool results are any text.
    if isinstance(content, str):
        try:
            if isinstance(json.loads(content), dict):
                return content
        except ValueError:
            pass
    return json.dumps({"result": content}, ensure_ascii=False)


def _plain_text(message: Any) -> Any:
    # gpt4free messages may carry content as a list of parts; GigaChat wants text.
    if isinstance(message, Mapping) and isinstance(message.get("content"), list):
        parts = message["content"]
        text = "".join(p.get("text", "") for p in parts if isinstance(p, Mapping) and p.get("type", "text") == "text")
        return {**message, "content": text}
    return message


def messages_from_openai(messages: Any) -> Any:
    """OpenAI-style messages as GigaChat's: content parts joined into text, tool turns translated.

    ``tool_calls`` becomes ``function_call`` (with ``functions_state_id``), a
    ``tool`` message a ``function`` one. Other messages pass unchanged; anything
    that is not a list is left for the usual validation to refuse.

    Raises:
        ValueError: naming the message GigaChat cannot take.
    """
    if not isinstance(messages, (list, tuple)):
        return messages
    messages = [_plain_text(m) for m in messages]
    if not any(isinstance(m, Mapping) and (m.get("role") == "tool" or m.get("tool_calls")) for m in messages):
        return messages
    names: Dict[str, str] = {}
    result = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            result.append(message)
            continue
        calls = message.get("tool_calls")
        if message.get("role") == "assistant" and calls:
            if not isinstance(calls, list) or len(calls) != 1 or not isinstance(calls[0], Mapping):
                raise ValueError(f"messages[{i}]: GigaChat takes one function call per assistant turn")
            call = calls[0]
            function: Mapping[str, Any] = call["function"] if isinstance(call.get("function"), Mapping) else {}
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"messages[{i}]['tool_calls'][0] has no function name")
            names[str(call.get("id"))] = name
            turn: Dict[str, Any] = {
                "role": "assistant", "content": message.get("content") or "",
                "function_call": {"name": name, "arguments": _arguments(function.get("arguments"), f"messages[{i}]")},
            }
            if _is_state_id(call.get("id")):
                turn["functions_state_id"] = str(call.get("id"))
            result.append(turn)
        elif message.get("role") == "tool":
            # gpt4free may have guessed a "name" from the id; the call itself knows it.
            name = names.get(str(message.get("tool_call_id"))) or message.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"messages[{i}]: a tool result needs the assistant's tool call before it (or a 'name')")
            result.append({"role": "function", "name": name, "content": _function_content(message.get("content"))})
        else:
            result.append(message)
    return result


# -- GigaChat reply -> gpt4free types ----------------------------------------------------


class G4FReply:
    """A chat reply read for gpt4free: the text chunks, then ``Usage``, ``ToolCalls``, ``FinishReason``.

    Wraps a ``ChatStream``/``ChatReply`` and forwards its attributes, ``close``
    and ``abort``, so the async adapter can stop it and read ``usage`` on it.
    """

    def __init__(self, reply: Any) -> None:
        self._reply = reply

    def __iter__(self) -> Iterator[Any]:
        reply = self._reply
        yield from reply
        if reply.usage:
            yield _usage(reply.usage)
        call = reply.function_call
        if isinstance(call, Mapping) and isinstance(call.get("name"), str):
            call_id = reply.functions_state_id or f"call_{uuid.uuid4().hex}"
            arguments = call.get("arguments")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
            function = {"name": call["name"], "arguments": arguments}
            yield _response.ToolCalls([{"id": call_id, "type": "function", "function": function}])
        if reply.finish_reason:
            yield _response.FinishReason(_FINISH.get(reply.finish_reason, reply.finish_reason))

    def close(self) -> None:
        close = getattr(self._reply, "close", None)
        if close is not None:
            close()

    def abort(self) -> None:
        abort = getattr(self._reply, "abort", None)
        if abort is not None:
            abort()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._reply, name)


def _usage(usage: Mapping[str, Any]) -> Any:
    names = ("prompt_tokens", "completion_tokens", "total_tokens")
    counts: Dict[str, Any] = {k: usage[k] for k in names if isinstance(usage.get(k), int)}
    cached = usage.get("precached_prompt_tokens")
    if isinstance(cached, int):
        counts["prompt_tokens_details"] = {"cached_tokens": cached}
    return _response.Usage(**counts)

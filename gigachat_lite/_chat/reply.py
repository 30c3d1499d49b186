"""How a chat reply reads, on both contracts: a stream's events one by one, and a whole reply's parts.

* :class:`ChunkParser` reads a v1 stream, event by event: ``{"choices":
  [{"delta": ...}]}`` then ``[DONE]``; :class:`V2ChunkParser` a v2 stream:
  named events, ``response.message.delta`` then ``response.message.done``
  (which carries ``finish_reason`` and ``usage``; no ``[DONE]``). Each
  ``feed(data)`` returns the text to yield and keeps what the stream learns
  (finish reason, usage, model, function call, ...) on its ``target`` as
  public fields.
* :func:`read_header` and :func:`read_messages` spread a v2 reply (or a v2
  stream's event) over a result's public fields:

  * ``{"text"}`` -> the answer (what iterating yields);
  * ``{"reasoning"}`` / ``{"reasoning_content"}`` (a str or ``{"text"}``), or a
    message-level ``reasoning_content`` -> ``reasoning``, never the answer;
  * ``{"function_call"}`` (one part per call) -> ``tool_calls`` and, the first,
    ``function_call``; ``tool_state_id`` -> ``tools_state_id``;
  * ``{"files": [{"id", "mime", "target"}]}`` -> ``files``;
  * ``{"inline_data": {"sources", "images", ...}}`` -> ``sources`` and ``inline_data``;
  * ``{"tool_execution"}`` -> ``tool_executions``.

A reply that is not what GigaChat sends (text that is not a string, say) is
refused rather than read as an empty answer: :class:`StreamError` in a
stream, :class:`ValueError` for the caller to turn into its own error.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from ..errors import APIError, StreamError
from .._redact import scrub, server_message
from .._sse import ErrorEventData

__all__ = [
    "ChunkParser", "V2ChunkParser", "ReasoningChunk", "ToolCall", "Calls", "Usage", "Feed", "DONE", "read_header", "read_messages", "normalize_usage",
    "message_text",
]

DONE = "[DONE]"
_MISS: Any = object()  # common(): not the common shape, the long way decides
_loads = json.loads
# json.loads is JSONDecoder.raw_decode behind two Python calls and two regex matches for
# surrounding whitespace, which an event's data never has; anything raw_decode does not
# take whole (whitespace, trailing text, invalid JSON) goes to json.loads, for its verdict.
_raw_decode = json.JSONDecoder().raw_decode


class ToolCall(NamedTuple):
    """One function the model asked to call: its ``id`` (when the server gives one), ``name`` and ``arguments``.

    ``arguments`` is what the function takes, read from JSON (a dict); text
    that is not JSON stays text, for the caller to judge.
    """

    id: Optional[str]
    name: str
    arguments: Any

    def as_dict(self) -> Dict[str, Any]:
        """The call as GigaChat writes it: ``{"id", "name", "arguments"}`` (``id`` only when there is one)."""
        call: Dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, **call} if self.id else call


class Calls:
    """A reply's function calls, put together from their parts or fragments in arrival order.

    GigaChat sends a whole call at once (``arguments`` an object); a v2 stream
    may send each call's ``arguments`` as JSON text in fragments, each naming
    its call's ``id``; OpenAI-style servers send fragments naming nothing after
    the first. A fragment with a new ``id``, or a new ``name`` and no ``id``,
    or any arguments after a call that came whole, starts a call; any other
    continues the last one. Text fragments are joined
    once, at the end (linear in the reply's size).
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: List[Dict[str, Any]] = []  # {"id", "name", "arguments" (an object), "text" (fragments)}

    def add(self, fragment: Any) -> None:
        if not isinstance(fragment, dict):
            return
        call_id, name = fragment.get("id"), fragment.get("name")
        current = self._find(call_id) if isinstance(call_id, str) and call_id else None
        if current is None:
            last = self._calls[-1] if self._calls else None
            starts = last is None or (isinstance(call_id, str) and call_id and last["id"] not in (None, call_id)) or (
                not call_id and isinstance(name, str) and name and last["name"] not in (None, name)) or (
                # The last call came whole (its arguments an object): anything more with no id of its own
                # is another call, even of the same function (parallel calls GigaChat sent without ids).
                last["arguments"] is not None and fragment.get("arguments") is not None)
            if starts:
                current = {"id": None, "name": None, "arguments": None, "text": []}
                self._calls.append(current)
            else:
                current = last
        assert current is not None
        if isinstance(call_id, str) and call_id:
            current["id"] = call_id
        if isinstance(name, str) and name:
            current["name"] = name
        arguments = fragment.get("arguments")
        if isinstance(arguments, str):
            current["text"].append(arguments)
        elif arguments is not None:
            current["arguments"] = arguments

    def _find(self, call_id: str) -> Optional[Dict[str, Any]]:
        for call in self._calls:
            if call["id"] == call_id:
                return call
        return None

    def publish(self, target: Any) -> None:
        """Put the calls on ``target``: ``tool_calls`` (every one) and ``function_call`` (the first, as a dict)."""
        found: List[ToolCall] = []
        for call in self._calls:
            arguments = call["arguments"]
            if call["text"]:
                text = "".join(call["text"])
                try:
                    arguments = json.loads(text) if text.strip() else {}
                except (ValueError, RecursionError):
                    arguments = text  # not JSON: the text as sent, for the caller to judge
            if isinstance(call["name"], str):
                found.append(ToolCall(call["id"], call["name"], {} if arguments is None else arguments))
        if found:
            target.tool_calls = found
            target.function_call = found[0].as_dict()


class Usage(Dict[str, Any]):
    """A reply's token counts: the dict as the server sent it (v2's under v1's names), with typed attributes.

    ``cached_tokens`` is the prompt tokens GigaChat took from its prompt cache
    (``X-Session-ID``), on both contracts: v1 sends it as
    ``precached_prompt_tokens``, v2 as ``input_tokens_details.cached_tokens``.
    """

    @classmethod
    def of(cls, raw: Any) -> Optional["Usage"]:
        """The usage of a v1 reply or chunk (``None`` when it has none)."""
        return cls(raw) if isinstance(raw, dict) else None

    @property
    def prompt_tokens(self) -> Optional[int]:
        """Tokens in the prompt (v2: ``input_tokens``), cached ones included on v2 and left out on v1, as sent."""
        return _count(self.get("prompt_tokens"))

    @property
    def completion_tokens(self) -> Optional[int]:
        """Tokens in the answer (v2: ``output_tokens``), reasoning included."""
        return _count(self.get("completion_tokens"))

    @property
    def total_tokens(self) -> Optional[int]:
        """Tokens billed for the call."""
        return _count(self.get("total_tokens"))

    @property
    def cached_tokens(self) -> Optional[int]:
        """Prompt tokens served from GigaChat's prompt cache (``None`` when the server did not say)."""
        return _count(self.get("cached_tokens", self.get("precached_prompt_tokens")))


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ReasoningChunk(str):
    """A piece of reasoning text; parsers hand it out only to ``iter_events()``."""

    __slots__ = ()


# What a parser's feed() returns for one event: its text, nothing, or (only when
# reasoning was asked for) the pieces in order, reasoning as ReasoningChunk.
Feed = Union[str, None, List[str]]


class ChunkParser:
    """Reads v1 chat-completion chunks and keeps the stream's state on ``target``.

    ``target`` gets public fields only: ``finish_reason``, ``usage``,
    ``model``, ``created``, ``function_call``, ``functions_state_id``,
    ``reasoning`` (the ``reasoning_content`` so far) and, in a thread run's
    stream, ``thread_id`` and ``message_id`` as they arrive; what the
    parser remembers between events (function arguments in fragments) stays here.

    ``target.emit_reasoning``: when set (by ``iter_events()``), an event that
    carries reasoning makes :meth:`feed` return a list of pieces, the reasoning
    as a :class:`ReasoningChunk` first; otherwise reasoning is only recorded.
    """

    __slots__ = ("target", "done", "events", "_calls")

    def __init__(self, target: Any) -> None:
        self.target = target
        self.done = False  # [DONE] seen
        self.events = 0
        self._calls = Calls()  # the function calls, put together from their fragments

    @property
    def complete(self) -> bool:
        """The stream ended properly: ``[DONE]`` or a finish reason arrived."""
        return self.done or self.target.finish_reason is not None

    def feed(self, data: str) -> Feed:
        """Take one event's data; return its text (or ``None``).

        Raises:
            APIError: the event is an error object.
            StreamError: the event is not a JSON object, or not shaped like a chunk.
        """
        self.events += 1
        if data.__class__ is ErrorEventData:
            raise_error_event(data)
        if data == DONE:
            self.done = True
            return None
        chunk, text = self.decode(data)
        if text is not _MISS:
            return text  # type: ignore[no-any-return]  # a str or None: common() returns no other
        choices = chunk.get("choices")
        if choices is None:
            raise_if_error(chunk)
            return None  # an object we do not know (a future keep-alive, say): skip it
        return self._choices(chunk, choices)

    def decode(self, data: str) -> Tuple[Dict[str, Any], Any]:
        """An event's JSON object, and its text when it has the common shape (else a marker).

        Raises:
            StreamError: the data is not JSON, or not an object.
        """
        try:
            obj, end = _raw_decode(data)
            if end != len(data):
                obj = _loads(data)
        except ValueError:
            try:
                obj = _loads(data)
            except ValueError:
                raise StreamError(f"malformed event #{self.events} in the stream: {scrub(data[:4096])[:80]!r}") from None
            except RecursionError:
                raise StreamError(f"event #{self.events} is nested too deeply to read") from None
        except RecursionError:
            raise StreamError(f"event #{self.events} is nested too deeply to read") from None
        if self.target.model is not None:  # after the first event, which names the model
            text = self.common(obj)
            if text is not _MISS:
                return obj, text
        if not isinstance(obj, dict):
            raise StreamError(f"event #{self.events} is not a JSON object: {scrub(data[:4096])[:80]!r}")
        return obj, _MISS

    @staticmethod
    def common(chunk: Any) -> Any:
        """The text of an event in the common shape (what :meth:`feed` would return, in fewer steps), or a marker.

        ``{"choices": [{"delta": {"content": "..."}, "index": 0}], ...}`` without usage.
        """
        if type(chunk) is dict and "usage" not in chunk:
            choices = chunk.get("choices")
            if type(choices) is list and len(choices) == 1:
                choice = choices[0]
                if type(choice) is dict and len(choice) == 2 and choice.get("index", 1) == 0:
                    delta = choice.get("delta")
                    if type(delta) is dict and len(delta) == 1:
                        content = delta.get("content")
                        if type(content) is str:
                            return content or None
        return _MISS

    def _choices(self, chunk: Dict[str, Any], choices: Any) -> Feed:
        target = self.target
        if "usage" in chunk and chunk["usage"]:
            target.usage_raw = chunk["usage"]
            target.usage = Usage.of(chunk["usage"])
        if target.model is None:
            target.model = chunk.get("model")
            target.created = chunk.get("created")
        for name in ("thread_id", "message_id"):  # a thread run's chunks name its thread and the message it makes
            if name in chunk and isinstance(chunk[name], str):
                setattr(target, name, chunk[name])
        if not isinstance(choices, list):
            raise StreamError(f"event #{self.events} has malformed choices")
        text = None
        reasoning = None
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # with n > 1 the first choice is the stream's text
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise StreamError(f"event #{self.events} has a delta that is not an object")
            if choice.get("finish_reason"):
                target.finish_reason = choice["finish_reason"]
            if "functions_state_id" in delta or "functions_state_id" in choice:
                target.functions_state_id = delta.get("functions_state_id") or choice.get("functions_state_id")
            if delta.get("function_call"):
                self._calls.add(delta["function_call"])
            content = delta.get("content")
            if content is not None and not isinstance(content, str):
                raise StreamError(f"event #{self.events} has content that is not text ({type(content).__name__})")
            if content:
                text = content
            thought = delta.get("reasoning_content")
            if thought and isinstance(thought, str):
                target.reasoning += thought
                reasoning = thought
        return pieces(text, reasoning, getattr(target, "emit_reasoning", False))

    def finish(self) -> None:
        """The stream has ended: its function calls, put together, go on the target (``tool_calls``, ``function_call``)."""
        self._calls.publish(self.target)


class V2ChunkParser(ChunkParser):
    """:class:`ChunkParser`'s interface for v2 events; the state goes on ``target`` as public fields."""

    __slots__ = ()

    @property
    def complete(self) -> bool:
        """The done event (or any event with a finish reason) arrived."""
        return self.target.finish_reason is not None

    @staticmethod
    def common(event: Any) -> Any:
        """The text of an event in the common shape, or a marker.

        ``{"model", "created_at", "messages": [{"role": "assistant", "content":
        [{"text": "..."}]}]}``: what :meth:`feed` would return for it, in fewer steps.
        """
        if type(event) is dict and len(event) == 3 and "created_at" in event:
            messages = event.get("messages")
            if type(messages) is list and len(messages) == 1:
                message = messages[0]
                if type(message) is dict and len(message) == 2 and message.get("role") == "assistant":
                    content = message.get("content")
                    if type(content) is list and len(content) == 1:
                        part = content[0]
                        if type(part) is dict and len(part) == 1:
                            text = part.get("text")
                            if type(text) is str:
                                return text or None
        return _MISS

    def feed(self, data: str) -> Feed:
        """Take one event's data; return its answer text (or ``None``).

        Raises:
            APIError: the event is an error object.
            StreamError: the event is not a JSON object, or not shaped like a v2 event.
        """
        self.events += 1
        if data.__class__ is ErrorEventData:
            raise_error_event(data)
        event, text = self.decode(data)
        if text is not _MISS:
            return text  # type: ignore[no-any-return]  # a str or None: common() returns no other
        if "messages" not in event and "finish_reason" not in event and "usage" not in event:
            raise_if_error(event)
            return None  # an event we do not know (a keep-alive, a tool's progress): skip it
        target = self.target
        read_header(target, event)
        try:
            texts, thoughts = read_messages(target, event, self._calls)
        except ValueError as exc:
            raise StreamError(f"event #{self.events}: {exc}") from None
        if event.get("finish_reason"):
            self.done = True  # the done event: nothing follows it
        text = "".join(texts) or None
        return pieces(text, "".join(thoughts) or None, getattr(target, "emit_reasoning", False))


def pieces(text: Optional[str], reasoning: Optional[str], emit_reasoning: bool) -> Feed:
    """What a parser's ``feed`` returns for an event with ``text`` and ``reasoning``."""
    if reasoning is None or not emit_reasoning:
        return text
    return [ReasoningChunk(reasoning)] if text is None else [ReasoningChunk(reasoning), text]


def raise_if_error(chunk: Dict[str, Any]) -> None:
    """Raise :class:`APIError` when an event is an error object (``status``/``message``/``error``)."""
    if "status" in chunk or "message" in chunk or "error" in chunk:
        status = chunk.get("status")
        raise APIError(
            server_message(chunk, "error inside the stream"),
            status_code=status if isinstance(status, int) and not isinstance(status, bool) else None,
        )


def raise_error_event(data: str) -> None:
    """Raise :class:`APIError` for an ``event: error``, whatever its data says (JSON or not)."""
    try:
        payload = _loads(data)
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        raise_if_error(payload)
    text = scrub(data.strip())[:200]
    raise APIError(f"error event inside the stream{': ' + text if text else ''}")


# -- v2 replies: parts -> fields ---------------------------------------------------------------


def normalize_usage(raw: Any) -> Optional[Usage]:
    """v2 usage (``input_tokens``, ``output_tokens``, ...) under v1's names, ``cached_tokens`` when known."""
    if not isinstance(raw, dict):
        return None
    usage = Usage({
        "prompt_tokens": raw.get("input_tokens", raw.get("prompt_tokens")),
        "completion_tokens": raw.get("output_tokens", raw.get("completion_tokens")),
        "total_tokens": raw.get("total_tokens"),
    })
    details = raw.get("input_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens") is not None:
        usage["cached_tokens"] = details["cached_tokens"]
    return usage


def read_header(target: Any, payload: Dict[str, Any]) -> None:
    """The top-level fields of a reply or an event."""
    if target.model is None and payload.get("model") is not None:
        target.model = payload.get("model")
        target.created = payload.get("created_at", payload.get("created"))
    if payload.get("finish_reason"):
        target.finish_reason = payload["finish_reason"]
    if payload.get("usage"):
        target.usage_raw = payload["usage"]
        target.usage = normalize_usage(payload["usage"])
    for name in ("thread_id", "message_id"):
        if payload.get(name):
            setattr(target, name, payload[name])
    state = payload.get("tools_state_id") or payload.get("tool_state_id")
    if state:
        target.tools_state_id = state


def read_messages(target: Any, payload: Dict[str, Any], calls: Optional["Calls"] = None) -> Tuple[List[str], List[str]]:
    """Spread the assistant parts of ``payload`` over ``target``; return (texts, reasonings) in order.

    ``calls`` collects a stream's function-call fragments across events (the
    parser publishes them at the end); without it the reply is whole, and its
    calls go on ``target`` at once.

    Raises:
        ValueError: a message or a text part that is not what GigaChat sends
            (text that is not a string), so that it is never read as an empty answer.
    """
    texts: List[str] = []
    thoughts: List[str] = []
    whole = calls is None
    if calls is None:
        calls = Calls()
    messages = payload.get("messages")
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        state = message.get("tool_state_id") or message.get("tools_state_id")
        if state:
            target.tools_state_id = state
        if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
            thoughts.append(message["reasoning_content"])
        if message.get("function_call"):  # the legacy place, outside the content
            calls.add(message["function_call"])
        _read_inline(target, message.get("inline_data"))
        content = message.get("content")
        if isinstance(content, str):  # a v1 habit: the text itself rather than parts
            if content:
                texts.append(content)
            continue
        if content is not None and not isinstance(content, list):
            raise ValueError(f"messages[{index}].content is a {type(content).__name__}, not a list of parts")
        for part in content or []:
            if not isinstance(part, dict):
                continue
            if "text" in part:
                if not isinstance(part["text"], str):
                    raise ValueError(f"messages[{index}] has a text part that is a {type(part['text']).__name__}")
                if part["text"]:
                    texts.append(part["text"])
            for key in ("reasoning", "reasoning_content"):
                thought = part.get(key)
                thought = thought.get("text") if isinstance(thought, dict) else thought
                if isinstance(thought, str) and thought:
                    thoughts.append(thought)
            if part.get("function_call"):
                calls.add(part["function_call"])
            if isinstance(part.get("files"), list):
                target.files.extend(f for f in part["files"] if isinstance(f, dict))
            _read_inline(target, part.get("inline_data"))
            if isinstance(part.get("tool_execution"), dict):
                target.tool_executions.append(part["tool_execution"])
            if isinstance(part.get("logprobs"), list):
                target.logprobs.extend(part["logprobs"])
    if thoughts:
        target.reasoning += "".join(thoughts)
    if whole:
        calls.publish(target)
    return texts, thoughts


def message_text(message: Any) -> str:
    """A whole v1 reply's ``message.content``: text, or empty when absent.

    Raises:
        ValueError: the content is a number, a list, an object: not what GigaChat sends.
    """
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise ValueError(f"the message content is a {type(content).__name__}, not text")
    return content


def _read_inline(target: Any, inline: Any) -> None:
    if not isinstance(inline, dict):
        return
    for key, value in inline.items():
        if key == "sources" and isinstance(value, dict):
            target.sources.update(value)
        elif isinstance(value, list):
            target.inline_data.setdefault(key, []).extend(value)
        else:
            target.inline_data[key] = value

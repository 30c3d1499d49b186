"""v2 response bodies and named-event streams, as in ``tests/data/cassettes/test_primary_*.yaml``.

A reply is ``{"model", "created_at", "messages": [{"role", "tool_state_id"?, "content":
[parts]}], "finish_reason", "usage"}`` (``tool_state_id`` only when the request had
tools). A stream is ``event: response.message.delta`` events, each carrying a
``messages`` fragment, then one ``event: response.message.done`` with ``finish_reason``
and ``usage``; no ``[DONE]``. A streamed function call comes in fragments (no recording
shows one; langchain-gigachat joins such fragments per call id): each
``{"function_call": {"id", "name", "arguments": "<next piece of the JSON text>"}}``. Usage is ``input_tokens``, ``input_tokens_details``
(``prompt_tokens``, ``cached_tokens``), ``output_tokens``, ``total_tokens``.

Reasoning text is not in the recordings nor in the SDK's v2 models; it is sent as the
message field ``reasoning_content`` (the name GigaChat's v1 replies use, see
``fixtures/chat_completion.json``), before ``content`` and never as a text part, so a
client joining the text parts never mixes it into the answer.
"""

from typing import Any, Dict, List, Optional

from .replies import count_tokens, split_pieces
from .wire import dumps, sse_event

DELTA_EVENT = "response.message.delta"
DONE_EVENT = "response.message.done"


def usage(input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Dict[str, Any]:
    """The v2 ``usage`` block, in the recorded key order.

    ``input_tokens`` equals ``input_tokens_details.prompt_tokens`` and counts the
    ``cached_tokens`` too, as the recorded replies do (3963 input, 3710 cached).
    """
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"prompt_tokens": input_tokens, "cached_tokens": cached_tokens},
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def output_tokens(parts: List[Dict[str, Any]], reasoning: Optional[str], piece_size: int) -> int:
    """Emulated output tokens: text and reasoning by length, any other part as its JSON."""
    total = count_tokens(reasoning or "", piece_size)
    for part in parts:
        text = part.get("text")
        total += count_tokens(text if isinstance(text, str) else dumps(part).decode("utf-8"), piece_size)
    return total


def message(
    parts: List[Dict[str, Any]], tool_state_id: Optional[str], reasoning: Optional[str]
) -> Dict[str, Any]:
    """The assistant message of a reply."""
    body: Dict[str, Any] = {"role": "assistant"}
    if tool_state_id is not None:
        body["tool_state_id"] = tool_state_id
    if reasoning is not None:
        body["reasoning_content"] = reasoning
    body["content"] = parts
    return body


def completion_body(
    model: str,
    created_at: int,
    reply: Dict[str, Any],
    finish_reason: str,
    usage_block: Dict[str, Any],
    extra: Optional[Dict[str, Any]] = None,
) -> bytes:
    """The non-stream reply, key order as in ``test_primary_chat_create_simple.yaml``;
    ``extra`` (``message_id``, ``thread_id`` of a stored turn) follows ``messages``, in
    the SDK's field order."""
    body: Dict[str, Any] = {"model": model, "created_at": created_at, "messages": [reply]}
    body.update(extra or {})
    body.update(finish_reason=finish_reason, usage=usage_block)
    return dumps(body)


def _call_fragments(part: Dict[str, Any], piece_size: int) -> List[Dict[str, Any]]:
    """A function call cut into fragments: each names the call (``id``, ``name``) and
    carries the next ``piece_size`` characters of the arguments' JSON text."""
    call = part["function_call"]
    text = dumps(call.get("arguments")).decode("utf-8")
    head = {k: v for k, v in call.items() if k != "arguments"}
    return [{"role": "assistant", "content": [{"function_call": dict(head, arguments=piece)}]}
            for piece in split_pieces(text, piece_size)]


def _fragments(reply: Dict[str, Any], piece_size: int) -> List[Dict[str, Any]]:
    """The message cut into delta fragments: reasoning pieces, then text pieces (each with
    its token's ``logprobs`` when asked for), function calls as argument-text fragments,
    other parts whole."""
    fragments: List[Dict[str, Any]] = []
    reasoning = reply.get("reasoning_content")
    if isinstance(reasoning, str):
        fragments += [{"role": "assistant", "reasoning_content": p} for p in split_pieces(reasoning, piece_size)]
    for part in reply["content"]:
        text = part.get("text")
        if isinstance(part.get("function_call"), dict):
            fragments += _call_fragments(part, piece_size)
            continue
        if not isinstance(text, str):
            fragments.append({"role": "assistant", "content": [part]})
            continue
        pieces = split_pieces(text, piece_size)
        logprobs = part.get("logprobs")
        for number, piece in enumerate(pieces):
            chunk: Dict[str, Any] = {"text": piece}
            if isinstance(logprobs, list) and number < len(logprobs):
                chunk["logprobs"] = [logprobs[number]]
            if number == len(pieces) - 1:  # sources and the like close their text part
                chunk.update((k, v) for k, v in part.items() if k not in ("text", "logprobs"))
            fragments.append({"role": "assistant", "content": [chunk]})
    if not fragments:
        fragments.append({"role": "assistant", "content": [{"text": ""}]})
    if "tool_state_id" in reply:
        first = fragments[0]
        fragments[0] = {"role": "assistant", "tool_state_id": reply["tool_state_id"]}
        fragments[0].update((k, v) for k, v in first.items() if k != "role")
    return fragments


def stream_events(
    model: str,
    created_at: int,
    reply: Dict[str, Any],
    finish_reason: str,
    usage_block: Dict[str, Any],
    piece_size: int,
    extra: Optional[Dict[str, Any]] = None,
) -> List[bytes]:
    """Every event of a stream, framed as in ``test_primary_chat_stream_simple.yaml``;
    ``extra`` (``message_id``, ``thread_id``) goes on the done event."""
    events = [
        sse_event({"model": model, "created_at": created_at, "messages": [fragment]}, DELTA_EVENT)
        for fragment in _fragments(reply, piece_size)
    ]
    done: Dict[str, Any] = {"model": model, "created_at": created_at}
    done.update(extra or {})
    done.update(finish_reason=finish_reason, usage=usage_block)
    events.append(sse_event(done, DONE_EVENT))
    return events

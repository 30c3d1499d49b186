"""v1 response bodies (chat, models, tokens, embeddings) in GigaChat's exact wire format.

Everything here is pure (no sockets, no clocks except the ``created`` argument) so the
byte layout can be checked against the recorded cassettes in isolation. SSE events are
``data: {json}\\n\\n``; the first delta is ``{"content", "role"}``, the last chunk is
``{"delta":{"content":""},"index":0,"finish_reason":...}`` and is the only one that
carries ``usage``; the stream ends with ``data: [DONE]\\n\\n``.
"""

from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple, Union

# Re-exported: tests and older callers read them from here.
from .wire import JSON_TYPE as JSON_TYPE
from .wire import SSE_TYPE as SSE_TYPE
from .wire import api_error as api_error
from .wire import dumps as dumps
from .wire import sse_event as sse_event

#: What a reply may be: fixed text, or a function of the parsed request body.
ReplySource = Union[None, str, Callable[[Dict[str, Any]], str]]



class ChatSettings(Protocol):
    """The emulator settings a chat reply reads (implemented by ``Emulator``)."""

    piece_size: int
    reply: ReplySource

    def model_list(self) -> List[Tuple[str, str]]: ...  # noqa: E704


DONE_EVENT = b"data: [DONE]\n\n"
MALFORMED_EVENT = b"data: {not json\n\n"


def count_tokens(text: str, piece_size: int) -> int:
    """Emulated token count: one token per ``piece_size`` characters, rounded up.

    The same unit cuts stream pieces, so ``completion_tokens`` equals the number of
    content pieces a stream carries, and ``max_tokens`` can be checked by hand.
    """
    return -(-len(text) // piece_size)


def split_pieces(text: str, piece_size: int) -> List[str]:
    """Cut ``text`` into ``piece_size``-character pieces (at least one, maybe empty)."""
    if not text:
        return [""]
    return [text[i : i + piece_size] for i in range(0, len(text), piece_size)]


def default_reply(request: Dict[str, Any]) -> str:
    """``"Echo: <content of the last user message>"`` (``"Echo: "`` when there is none)."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return "Echo: " + (content if isinstance(content, str) else "")
    return "Echo: "


def reply_text(source: ReplySource, request: Dict[str, Any]) -> str:
    """Resolve the configured reply source for one request."""
    if source is None:
        return default_reply(request)
    if isinstance(source, str):
        return source
    text = source(request)
    if not isinstance(text, str):
        raise TypeError("reply callable must return str, got %s" % type(text).__name__)
    return text


def truncate(text: str, max_tokens: Optional[int], piece_size: int) -> Tuple[str, str]:
    """Apply ``max_tokens``; return the text actually sent and its ``finish_reason``."""
    if max_tokens is not None and count_tokens(text, piece_size) > max_tokens:
        return text[: max_tokens * piece_size], "length"
    return text, "stop"


def usage(request: Dict[str, Any], completion: str, piece_size: int, cached: int = 0) -> Dict[str, int]:
    """Deterministic ``usage`` block in the recorded key order.

    ``cached`` prompt tokens (see ``prompt_cache``) are reported in
    ``precached_prompt_tokens`` and left out of ``prompt_tokens`` and
    ``total_tokens``, as the v1 usage reference documents.
    """
    prompt = sum(
        count_tokens(m.get("content") or "", piece_size)
        for m in request.get("messages", ())
        if isinstance(m.get("content"), str)
    )
    cached = min(cached, prompt)
    done = count_tokens(completion, piece_size)
    return {
        "prompt_tokens": prompt - cached,
        "completion_tokens": done,
        "total_tokens": prompt - cached + done,
        "precached_prompt_tokens": cached,
    }


def message(text: str, reasoning: Optional[str] = None) -> Dict[str, Any]:
    """The assistant message of a reply; ``reasoning_content`` as in ``fixtures/chat_completion.json``."""
    body: Dict[str, Any] = {"content": text, "role": "assistant"}
    if reasoning is not None:
        body["reasoning_content"] = reasoning
    return body


def completion_body(
    text: str,
    finish_reason: str,
    model: str,
    created: int,
    usage_block: Dict[str, int],
    *,
    reasoning: Optional[str] = None,
    extra: Optional[Dict[str, Any]] = None,
    choices: int = 1,
) -> bytes:
    """Non-stream chat reply, field order as in ``test_chat_simple.yaml``.

    ``extra`` top-level fields (``thread_id``, ``message_id``) follow ``model``;
    ``choices`` > 1 repeats the choice with indexes 0, 1, ...
    """
    body: Dict[str, Any] = {
        "choices": [
            {"message": message(text, reasoning), "index": index, "finish_reason": finish_reason}
            for index in range(choices)
        ],
        "created": created,
        "model": model,
    }
    body.update(extra or {})
    body.update(object="chat.completion", usage=usage_block)
    return dumps(body)


def stream_events(
    text: str,
    finish_reason: str,
    model: str,
    created: int,
    usage_block: Dict[str, int],
    piece_size: int,
    *,
    reasoning: Optional[str] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> List[bytes]:
    """All data events of a stream (without ``[DONE]``), as in ``test_stream_simple.yaml``.

    ``reasoning`` pieces come first as ``reasoning_content`` deltas; ``extra``
    top-level fields are on every chunk.
    """
    deltas: List[Dict[str, str]] = []
    if reasoning is not None:
        deltas += [{"reasoning_content": piece} for piece in split_pieces(reasoning, piece_size)]
    deltas += [{"content": piece} for piece in split_pieces(text, piece_size)]
    deltas[0]["role"] = "assistant"
    events = []
    for delta in deltas:
        chunk: Dict[str, Any] = {"choices": [{"delta": delta, "index": 0}], "created": created, "model": model}
        chunk.update(extra or {})
        chunk["object"] = "chat.completion"
        events.append(sse_event(chunk))
    last: Dict[str, Any] = {
        "choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": finish_reason}],
        "created": created,
        "model": model,
    }
    last.update(extra or {})
    last.update(object="chat.completion", usage=usage_block)
    events.append(sse_event(last))
    return events


def model_entry(model_id: str, model_type: str) -> Dict[str, str]:
    """One model object, as in ``test_get_model.yaml``."""
    return {"id": model_id, "object": "model", "owned_by": "salutedevices", "type": model_type}


def models_body(models: Iterable[Tuple[str, str]]) -> bytes:
    """``GET /models`` reply, as in ``test_get_models.yaml``."""
    return dumps({"object": "list", "data": [model_entry(i, t) for i, t in models]})


def tokens_count_body(texts: Sequence[str], piece_size: int) -> bytes:
    """``POST /tokens/count`` reply: a bare list, as in ``test_tokens_count_multiple.yaml``."""
    return dumps(
        [
            {"object": "tokens", "tokens": count_tokens(t, piece_size), "characters": len(t)}
            for t in texts
        ]
    )


def embedding_vector(text: str, size: int = 8) -> List[float]:
    """A small deterministic vector derived from the text (not a real embedding)."""
    data = text.encode("utf-8") or b"\0"
    return [round(((sum(data[i::size]) + i) % 200) / 100.0 - 1.0, 4) for i in range(size)]


def embeddings_body(texts: Sequence[str], model: str, piece_size: int) -> bytes:
    """``POST /embeddings`` reply, key order as in ``test_embeddings_multiple.yaml``."""
    return dumps(
        {
            "object": "list",
            "model": model,
            "data": [
                {
                    "object": "embedding",
                    "index": number,
                    "embedding": embedding_vector(text),
                    "usage": {"prompt_tokens": count_tokens(text, piece_size)},
                }
                for number, text in enumerate(texts)
            ],
        }
    )

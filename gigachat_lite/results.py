"""What comes back whole: chat replies, embeddings, token counts, and the checks on JSON replies.

A reply that is not what the API sends is an :class:`InvalidResponseError`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional

from .errors import InvalidResponseError
from .reasoning import ReasoningEvents
from .reply_v2 import V2Result, read_header, read_messages, reset_v2_fields

__all__ = ["ChatResult", "ChatReply", "ChatReplyV2", "Embeddings", "TokenCount", "json_reply", "json_object", "data_list"]


class ChatResult(ReasoningEvents):
    """What every chat reply tells besides its text."""

    api_version = "v1"
    finish_reason: Optional[str]
    usage: Optional[Dict[str, Any]]
    model: Optional[str]
    created: Optional[int]
    function_call: Optional[Dict[str, Any]]
    functions_state_id: Optional[str]
    request_id: Optional[str]

    def __init__(self, request_id: Optional[str]) -> None:
        self.finish_reason = None
        self.usage = None
        self.usage_raw: Optional[Dict[str, Any]] = None  # usage as the server sent it
        self.reasoning = ""  # the model's reasoning, apart from the answer (see reasoning.py)
        self.session: Any = None  # the Session that made the request
        self.model = None
        self.created = None
        self.function_call = None
        self.functions_state_id = None
        self.request_id = request_id

    def assistant_message(self) -> Dict[str, Any]:
        """The assistant turn to append to the history for the next call."""
        message: Dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.function_call:
            message["function_call"] = self.function_call
        if self.functions_state_id:
            message["functions_state_id"] = self.functions_state_id
        return message

    def function_result(self, result: Any) -> List[Dict[str, Any]]:
        """The two messages that answer this reply's function call, to append to the history.

        ``[assistant turn with function_call (and functions_state_id),
        {"role": "function", "name": ..., "content": json.dumps(result)}]``;
        ``result`` is any JSON-serialisable value, usually a dict. A stream
        not yet read to the end is read first (the call arrives at its end).

        Raises:
            ValueError: the reply did not call a function.
            TypeError: ``result`` cannot be sent as JSON.
        """
        for _ in self:  # a stream's function_call and text are complete only at its end
            pass
        call = self.function_call
        if not call or not isinstance(call.get("name"), str):
            raise ValueError(f"the reply did not call a function (finish_reason {self.finish_reason!r})")
        try:
            content = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"result cannot be sent as JSON ({exc})") from None
        return [self.assistant_message(), {"role": "function", "name": call["name"], "content": content}]

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def close(self) -> None:
        """Release what the reply holds: nothing for a whole reply (a stream closes its connection)."""

    def __enter__(self) -> "ChatResult":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def text(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text


class ChatReply(ChatResult):
    """A whole reply (``stream=False``). Iterating it yields the text once."""

    def __init__(self, payload: Any, request_id: Optional[str] = None) -> None:
        super().__init__(request_id)
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise InvalidResponseError(f"the reply has no choices (request id {request_id})")
        choice = choices[0]
        message: Dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
        self.message = message
        self.content: str = message.get("content") or ""
        self.finish_reason = choice.get("finish_reason")
        self.usage = self.usage_raw = payload.get("usage")
        self.reasoning = message.get("reasoning_content") or ""
        self.model = payload.get("model")
        self.created = payload.get("created")
        self.function_call = message.get("function_call")
        self.functions_state_id = message.get("functions_state_id")
        self.raw: Dict[str, Any] = payload

    @property
    def text(self) -> str:
        return self.content

    def __iter__(self) -> Iterator[str]:
        if self.content:
            yield self.content

    def __repr__(self) -> str:
        return f"<ChatReply finish_reason={self.finish_reason!r} chars={len(self.content)} request_id={self.request_id!r}>"


class ChatReplyV2(V2Result, ChatReply):
    """A whole v2 reply (``stream=False``): the answer's text parts joined; see :class:`V2Result`."""

    def __init__(self, payload: Any, request_id: Optional[str] = None) -> None:
        ChatResult.__init__(self, request_id)
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            raise InvalidResponseError(f"the v2 reply has no messages (request id {request_id})")
        reset_v2_fields(self)
        read_header(self, payload)
        texts, _ = read_messages(self, payload)
        self.content = "".join(texts)
        messages = [m for m in payload["messages"] if isinstance(m, dict)]
        self.message: Dict[str, Any] = messages[-1] if messages else {}
        self.functions_state_id = self.tools_state_id
        self.raw = payload

    def __iter__(self) -> Iterator[str]:
        return ChatReply.__iter__(self)

    def __repr__(self) -> str:
        return f"<ChatReplyV2 finish_reason={self.finish_reason!r} chars={len(self.content)} request_id={self.request_id!r}>"


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
            raise InvalidResponseError("the embeddings reply has no list of embeddings")
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

    @property
    def tokens(self) -> int:
        """The count as a plain ``int`` (the official SDK's ``TokensCount.tokens``)."""
        return int(self)

    def __repr__(self) -> str:
        return f"TokenCount({int(self)}, characters={self.characters})"


# -- checks on JSON replies ------------------------------------------------------------------


def json_reply(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise InvalidResponseError(f"the reply is not JSON (request id {response.headers.get('x-request-id')})") from None


def json_object(payload: Any, what: str) -> Dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidResponseError(f"the {what} reply is not a JSON object")
    return payload


def data_list(payload: Any, what: str) -> List[Dict[str, Any]]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise InvalidResponseError(f"the {what} reply has no 'data' list")
    return data

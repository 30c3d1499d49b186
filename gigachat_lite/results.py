"""What comes back: chat replies (whole, and what streams share with them), embeddings, token counts.

:class:`ChatResult` is what every chat reply tells besides its text, with the
reasoning apart from the answer (:meth:`ChatResult.iter_events`) and the
history helpers; :class:`V2Result` adds v2's. A whole reply that is not what
the API sends is an :class:`InvalidResponseError`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ._chat.reply import message_text, read_header, read_messages
from .errors import InvalidResponseError

__all__ = ["ChatResult", "ChatReply", "ChatReplyV2", "V2Result", "ReplyFields", "Embeddings", "TokenCount", "Event", "json_reply", "json_object", "data_list"]

Event = Tuple[str, str]  # ("reasoning" | "text", the piece), from iter_events()


class ReplyFields:
    """What a reply tells besides its text, in one place: filled by the reader, shown by the reply's properties.

    A whole reply fills it once; a stream's parser fills it as events arrive
    (the stream keeps it apart from itself, so that neither the reader nor the
    parser holds the stream: see :class:`~.stream.ChatStream`).
    """

    def __init__(self, request_id: Optional[str]) -> None:
        self.request_id = request_id
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Dict[str, Any]] = None
        self.usage_raw: Optional[Dict[str, Any]] = None
        self.model: Optional[str] = None
        self.created: Optional[int] = None
        self.function_call: Optional[Dict[str, Any]] = None
        self.functions_state_id: Optional[str] = None
        self.reasoning = ""
        # v2's
        self.tools_state_id: Optional[str] = None
        self.files: List[Dict[str, Any]] = []
        self.sources: Dict[str, Any] = {}
        self.inline_data: Dict[str, Any] = {}
        self.tool_executions: List[Dict[str, Any]] = []
        self.thread_id: Optional[str] = None
        self.message_id: Optional[str] = None


class ChatResult:
    """What every chat reply tells besides its text, streamed or whole.

    Iterating yields the answer only, always; ``reasoning`` holds the model's
    reasoning received so far (v1 ``reasoning_content``, a v2 reasoning part),
    and :meth:`iter_events` / :meth:`iter_reasoning` hand it out in order.
    """

    api_version = "v1"
    _fields: ReplyFields
    session: Any = None  # the Session that made the request

    @property
    def finish_reason(self) -> Optional[str]:
        """Why the reply ended (``stop``, ``length``, ``function_call``, ``blacklist``), once known."""
        return self._fields.finish_reason

    @property
    def usage(self) -> Optional[Dict[str, Any]]:
        """Token usage (``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ...), once known."""
        return self._fields.usage

    @property
    def usage_raw(self) -> Optional[Dict[str, Any]]:
        """Usage as the server sent it."""
        return self._fields.usage_raw

    @property
    def model(self) -> Optional[str]:
        """The model that answered, as the server names it."""
        return self._fields.model

    @property
    def created(self) -> Optional[int]:
        """When the reply was made (seconds since the epoch)."""
        return self._fields.created

    @property
    def function_call(self) -> Optional[Dict[str, Any]]:
        """The function the model called (``{"name", "arguments"}``); a stream's is complete at its end."""
        return self._fields.function_call

    @property
    def functions_state_id(self) -> Optional[str]:
        """The state id to send back with a function's result."""
        return self._fields.functions_state_id

    @property
    def reasoning(self) -> str:
        """The model's reasoning received so far, apart from the answer."""
        return self._fields.reasoning

    @property
    def request_id(self) -> Optional[str]:
        """The reply's ``X-Request-Id``, to quote to Sber's support."""
        return self._fields.request_id

    @property
    def text(self) -> str:
        """The answer received so far."""
        raise NotImplementedError

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

    def iter_events(self) -> Iterator[Event]:
        """Yield ``("reasoning", piece)`` and ``("text", piece)`` in the order they arrived.

        A whole reply gives its reasoning, then its text, at once; a stream
        gives them as they arrive (its text pieces are the chunks iterating
        yields, and accumulate in ``text``; reasoning never appears among them).
        """
        if self.reasoning:
            yield "reasoning", self.reasoning
        if self.text:
            yield "text", self.text

    def iter_reasoning(self) -> Iterator[str]:
        """Yield the reasoning pieces as they arrive; the answer still fills ``text``.

        After the loop a stream has been read to the end: ``text``,
        ``finish_reason`` and ``usage`` are complete.
        """
        for kind, piece in self.iter_events():
            if kind == "reasoning":
                yield piece

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def close(self) -> None:
        """Release what the reply holds: nothing for a whole reply (a stream closes its connection)."""

    def __enter__(self) -> "ChatResult":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __str__(self) -> str:
        return self.text


class ChatReply(ChatResult):
    """A whole reply (``stream=False``). Iterating it yields the text once.

    Attributes (besides :class:`ChatResult`'s): ``content`` (the text),
    ``message`` (the reply's message dict) and ``raw`` (the whole reply as sent).
    """

    def __init__(self, payload: Any, request_id: Optional[str] = None) -> None:
        fields = self._fields = ReplyFields(request_id)
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise InvalidResponseError(f"the reply has no choices (request id {request_id})")
        choice = choices[0]
        message: Dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
        self.message = message
        try:
            self.content: str = message_text(message)
        except ValueError as exc:
            raise InvalidResponseError(f"the reply is malformed: {exc} (request id {request_id})") from None
        fields.finish_reason = choice.get("finish_reason")
        fields.usage = fields.usage_raw = payload.get("usage")
        reasoning = message.get("reasoning_content")
        fields.reasoning = reasoning if isinstance(reasoning, str) else ""
        fields.model = payload.get("model")
        fields.created = payload.get("created")
        fields.function_call = message.get("function_call")
        fields.functions_state_id = message.get("functions_state_id")
        self.raw: Dict[str, Any] = payload

    @property
    def text(self) -> str:
        return self.content

    def __iter__(self) -> Iterator[str]:
        if self.content:
            yield self.content

    def __repr__(self) -> str:
        return f"<{type(self).__name__} finish_reason={self.finish_reason!r} chars={len(self.content)} request_id={self.request_id!r}>"


class V2Result(ChatResult):
    """What v2 replies and streams add: v2's fields and history helpers.

    ``tools_state_id`` (the reply's ``tool_state_id``), ``files`` (generated
    files: ``{"id", "mime", "target"}``), ``sources`` (web search sources by
    number: ``{"url", "title"}``), ``inline_data`` (other inline data:
    ``images``, ``widgets``, ...), ``tool_executions``, ``thread_id``,
    ``message_id``; :meth:`download` fetches a generated file.
    """

    api_version = "v2"

    @property
    def tools_state_id(self) -> Optional[str]:
        """The state id to send back with a function's result (the reply says ``tool_state_id``)."""
        return self._fields.tools_state_id

    @property
    def functions_state_id(self) -> Optional[str]:
        """v1's name for :attr:`tools_state_id`."""
        return self._fields.tools_state_id

    @property
    def files(self) -> List[Dict[str, Any]]:
        """Files the model made: ``{"id", "mime", "target"}``."""
        return self._fields.files

    @property
    def sources(self) -> Dict[str, Any]:
        """Web search sources by number: ``{"url", "title"}``."""
        return self._fields.sources

    @property
    def inline_data(self) -> Dict[str, Any]:
        """Other inline data the reply carried (``images``, ``widgets``, ...)."""
        return self._fields.inline_data

    @property
    def tool_executions(self) -> List[Dict[str, Any]]:
        """What the built-in tools reported while they ran."""
        return self._fields.tool_executions

    @property
    def thread_id(self) -> Optional[str]:
        """The thread the reply was stored in, if any."""
        return self._fields.thread_id

    @property
    def message_id(self) -> Optional[str]:
        """The stored message's id, if any."""
        return self._fields.message_id

    def assistant_message(self) -> Dict[str, Any]:
        """This reply as a v2 assistant turn (parts, ``tools_state_id``) for the next call's history."""
        parts: List[Dict[str, Any]] = []
        if self.text:
            parts.append({"text": self.text})
        if self.function_call:
            parts.append({"function_call": self.function_call})
        message: Dict[str, Any] = {"role": "assistant", "content": parts or [{"text": ""}]}
        if self.tools_state_id:
            message["tools_state_id"] = self.tools_state_id
        return message

    def function_result(self, result: Any) -> List[Dict[str, Any]]:
        """The two v2 messages answering this reply's function call, to append to the history.

        ``[assistant turn with the function_call part and tools_state_id,
        {"role": "tool", "tools_state_id", "content": [{"function_result":
        {"name", "result"}}]}]``. ``result`` is any JSON value (v2 sends it as
        an object, not as JSON text). A stream is read to its end first.

        Raises:
            ValueError: the reply did not call a function.
            TypeError: ``result`` cannot be sent as JSON.
        """
        for _ in self:  # a stream's call is complete only at its end
            pass
        call = self.function_call
        if not call or not isinstance(call.get("name"), str):
            raise ValueError(f"the reply did not call a function (finish_reason {self.finish_reason!r})")
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"result cannot be sent as JSON ({exc})") from None
        answer: Dict[str, Any] = {"role": "tool", "content": [{"function_result": {"name": call["name"], "result": result}}]}
        if self.tools_state_id:
            answer["tools_state_id"] = self.tools_state_id
        return [self.assistant_message(), answer]

    def download(self, file: Any = 0) -> bytes:
        """The bytes of a generated file (``GET /files/{id}/content``) on the session that made this reply.

        ``file`` is an index into :attr:`files` (default: the first), one of
        its dicts, or a file id.

        Raises:
            ValueError: the reply has no such file.
        """
        for _ in self:
            pass
        if isinstance(file, int) and not isinstance(file, bool):
            if not 0 <= file < len(self.files) and not -len(self.files) <= file < 0:
                raise ValueError(f"the reply has {len(self.files)} generated file(s), no file #{file}")
            file = self.files[file]
        given = isinstance(file, str)
        file_id = file.get("id") if isinstance(file, dict) else file
        if not isinstance(file_id, str) or not file_id:
            raise ValueError(f"file must be an index into files, a file dict or a file id, got {file!r}")
        if not given and file_id.strip() in ("", ".", ".."):
            raise InvalidResponseError(f"the reply names a file id {file_id!r} that is not one (nothing was fetched)")
        if self.session is None:
            raise ValueError("this reply was not made through a Session, so there is nowhere to download from")
        content: bytes = self.session.file_content(file_id)
        return content


class ChatReplyV2(V2Result, ChatReply):
    """A whole v2 reply (``stream=False``): the answer's text parts joined; see :class:`V2Result`."""

    def __init__(self, payload: Any, request_id: Optional[str] = None) -> None:
        fields = self._fields = ReplyFields(request_id)
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            raise InvalidResponseError(f"the v2 reply has no messages (request id {request_id})")
        read_header(fields, payload)
        try:
            texts, _ = read_messages(fields, payload)
        except ValueError as exc:
            raise InvalidResponseError(f"the v2 reply is malformed: {exc} (request id {request_id})") from None
        self.content = "".join(texts)
        messages = [m for m in payload["messages"] if isinstance(m, dict)]
        self.message: Dict[str, Any] = messages[-1] if messages else {}
        self.raw = payload


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

"""What comes back: chat replies (whole, and what streams share with them), embeddings, token counts.

:class:`ChatResult` is what every chat reply tells besides its text, with the
reasoning apart from the answer (:meth:`ChatResult.iter_events`) and the
history helpers; :class:`V2Result` adds v2's. A whole reply that is not what
the API sends is an :class:`InvalidResponseError`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._chat.reply import Calls, ToolCall, Usage, message_text, read_header, read_messages
from .errors import InvalidResponseError

__all__ = ["ChatResult", "ChatReply", "ChatReplyV2", "V2Result", "ReplyFields", "ToolCall", "Usage", "Choice", "Embeddings", "TokenCount", "Event", "json_reply", "json_object", "data_list"]

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
        self.usage: Optional[Usage] = None
        self.usage_raw: Optional[Dict[str, Any]] = None
        self.logprobs: List[Dict[str, Any]] = []
        self.model: Optional[str] = None
        self.created: Optional[int] = None
        self.function_call: Optional[Dict[str, Any]] = None
        self.tool_calls: List[ToolCall] = []
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
    def usage(self) -> Optional[Usage]:
        """Token usage (``usage.total_tokens``, ``usage.cached_tokens``, ...; also a dict), once known."""
        return self._fields.usage

    @property
    def usage_raw(self) -> Optional[Dict[str, Any]]:
        """Usage as the server sent it."""
        return self._fields.usage_raw

    @property
    def logprobs(self) -> List[Dict[str, Any]]:
        """Log-probabilities of the answer's tokens, when asked for (v2 ``top_logprobs=``): ``{"chosen", "top"}`` each."""
        return self._fields.logprobs

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
    def tool_calls(self) -> List[ToolCall]:
        """Every function the model asked to call, in order, each with its ``id``, ``name`` and ``arguments``.

        v2 models may ask for several at once (``parallel_tool_calls=True``);
        v1 asks for one. A stream's are complete once it has ended.
        """
        return self._fields.tool_calls

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
        """The messages that answer this reply's one function call, to append to the history.

        v1: ``[assistant turn with function_call (and functions_state_id),
        {"role": "function", "name": ..., "content": json.dumps(result)}]``;
        v2: the assistant turn and a ``tool`` message with the result. ``result``
        is any JSON-serialisable value, usually a dict. A stream not yet read to
        the end is read first (the call arrives at its end). A reply that called
        several functions is answered with :meth:`tool_results`.

        Raises:
            ValueError: the reply did not call exactly one function.
            TypeError: ``result`` cannot be sent as JSON.
        """
        for _ in self:  # a stream's calls and text are complete only at its end
            pass
        if len(self.tool_calls) > 1:
            raise ValueError(f"the reply called {len(self.tool_calls)} functions: answer them all with tool_results()")
        return self.tool_results([result])

    def tool_results(self, results: Union[Mapping[str, Any], Sequence[Any]]) -> List[Dict[str, Any]]:
        """The messages that answer every function this reply called, to append to the history.

        ``results`` maps each call's ``id`` (or, for calls without one, its
        name) to what the function returned, or lists the results in the order
        of :attr:`tool_calls`. Returns the assistant turn with every call, then
        the answers: on v2 one ``tool`` message whose ``function_result`` parts
        carry each call's ``id`` (a result that is not a JSON object is sent as
        ``{"result": value}``: v2 takes objects); on v1 a ``function`` message.
        A stream is read to its end first.

        Raises:
            ValueError: the reply called no function, or ``results`` misses a
                call or names one it did not make.
            TypeError: a result cannot be sent as JSON.
        """
        for _ in self:
            pass
        calls = self.tool_calls
        if not calls:
            raise ValueError(f"the reply did not call a function (finish_reason {self.finish_reason!r})")
        answered = _answers(calls, results)
        return [self.assistant_message(), *self._result_messages(answered)]

    def _result_messages(self, answered: List[Tuple[ToolCall, Any]]) -> List[Dict[str, Any]]:
        return [{"role": "function", "name": call.name, "content": json.dumps(result, ensure_ascii=False)}
                for call, result in answered]

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


class Choice:
    """One of a whole v1 reply's answers (``n=`` asks for several): ``reply.choices[i]``."""

    __slots__ = ("index", "text", "finish_reason", "message")

    def __init__(self, index: int, text: str, finish_reason: Optional[str], message: Dict[str, Any]) -> None:
        self.index = index
        self.text = text
        self.finish_reason = finish_reason
        self.message = message

    def __repr__(self) -> str:
        return f"Choice(index={self.index}, finish_reason={self.finish_reason!r}, chars={len(self.text)})"

    @classmethod
    def of(cls, position: int, choice: Dict[str, Any]) -> "Choice":
        message = choice["message"] if isinstance(choice.get("message"), dict) else {}
        try:
            text = message_text(message)
        except ValueError as exc:
            raise InvalidResponseError(f"choice #{position} is malformed: {exc}") from None
        index = choice.get("index")
        return cls(index if isinstance(index, int) else position, text, choice.get("finish_reason"), message)


class ChatReply(ChatResult):
    """A whole reply (``stream=False``). Iterating it yields the text once.

    Attributes (besides :class:`ChatResult`'s): ``content`` (the text),
    ``message`` (the reply's message dict), ``choices`` (every answer, when
    ``n=`` asked for several; the first is the one iterating yields) and
    ``raw`` (the whole reply as sent).
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
        fields.usage_raw = payload.get("usage")
        fields.usage = Usage.of(fields.usage_raw)
        logprobs = choice.get("logprobs") or message.get("logprobs")
        if isinstance(logprobs, list):
            fields.logprobs = logprobs
        self.choices: List[Choice] = [Choice.of(index, item) for index, item in enumerate(choices) if isinstance(item, dict)]
        reasoning = message.get("reasoning_content")
        fields.reasoning = reasoning if isinstance(reasoning, str) else ""
        fields.model = payload.get("model")
        fields.created = payload.get("created")
        calls = Calls()
        calls.add(message.get("function_call"))
        calls.publish(fields)
        fields.function_call = message.get("function_call")  # as sent (v1 has one call a message)
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
        """This reply as a v2 assistant turn (parts: the text, then every call; ``tools_state_id``) for the next call's history."""
        parts: List[Dict[str, Any]] = []
        if self.text:
            parts.append({"text": self.text})
        parts.extend({"function_call": call.as_dict()} for call in self.tool_calls)
        message: Dict[str, Any] = {"role": "assistant", "content": parts or [{"text": ""}]}
        if self.tools_state_id:
            message["tools_state_id"] = self.tools_state_id
        return message

    def _result_messages(self, answered: List[Tuple[ToolCall, Any]]) -> List[Dict[str, Any]]:
        parts = []
        for call, result in answered:
            answer: Dict[str, Any] = {"name": call.name, "result": result if isinstance(result, dict) else {"result": result}}
            parts.append({"function_result": {"id": call.id, **answer} if call.id else answer})
        message: Dict[str, Any] = {"role": "tool", "content": parts}
        if self.tools_state_id:
            message["tools_state_id"] = self.tools_state_id
        return [message]

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
        self.choices = [Choice(0, self.content, fields.finish_reason, self.message)]
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


def _answers(calls: List[ToolCall], results: Union[Mapping[str, Any], Sequence[Any]]) -> List[Tuple[ToolCall, Any]]:
    """Each call with its result: ``results`` by call id (or name), or in the calls' order; every result JSON-able."""
    if isinstance(results, Mapping):
        names = [call.name for call in calls]
        answered, used = [], set()
        for index, call in enumerate(calls):
            key = call.id if call.id and call.id in results else call.name
            if key not in results or (key == call.name and names.count(key) > 1 and not call.id):
                raise ValueError(f"results has no result for call #{index} {call.name!r} (id {call.id!r})")
            answered.append((call, results[key]))
            used.add(key)
        unknown = [key for key in results if key not in used]
        if unknown:
            raise ValueError(f"results names {unknown[0]!r}, which the reply did not call")
    elif isinstance(results, (list, tuple)):
        if len(results) != len(calls):
            raise ValueError(f"results has {len(results)} results for the reply's {len(calls)} calls")
        answered = list(zip(calls, results))
    else:
        raise TypeError(f"results must be a dict by call id or a list in the calls' order, got {type(results).__name__}")
    for call, result in answered:
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the result for {call.name!r} cannot be sent as JSON ({exc})") from None
    return answered


# -- checks on JSON replies ------------------------------------------------------------------


def json_reply(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise InvalidResponseError(f"the reply is not JSON (request id {response.headers.get('x-request-id')})") from None
    except RecursionError:  # valid JSON nested past the parser's depth
        raise InvalidResponseError(
            f"the reply is nested too deeply to read (request id {response.headers.get('x-request-id')})") from None


def json_object(payload: Any, what: str) -> Dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidResponseError(f"the {what} reply is not a JSON object")
    return payload


def data_list(payload: Any, what: str) -> List[Dict[str, Any]]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise InvalidResponseError(f"the {what} reply has no 'data' list")
    return data

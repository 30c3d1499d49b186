"""``parse()``: ask with ``response_format=`` and get the parsed object back."""

from __future__ import annotations

from typing import Any

from .chat import Messages, chat
from .structured import parse_reply

__all__ = ["parse"]


def parse(messages: Messages, response_format: Any, **kwargs: Any) -> Any:
    """Ask GigaChat for structured output and return it parsed.

    ``response_format`` is what :func:`chat` takes (a JSON schema dict, a
    regex format or ``re.Pattern``, a pydantic model, a dataclass or a
    TypedDict class). Returns a model instance, a dataclass instance, a
    ``dict`` (schemas, TypedDicts) or a ``str`` (regex). Every other keyword
    is :func:`chat`'s (``api_version``, ``model``, ``temperature``, ...); the
    request is not streamed.

    Raises:
        StructuredOutputError: the reply does not match (``.text`` and
            ``.reply`` say what came back); and whatever :func:`chat` raises.
    """
    kwargs["stream"] = False
    return parse_reply(chat(messages, response_format=response_format, **kwargs), response_format)

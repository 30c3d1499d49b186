"""gigachat_lite: a small, synchronous-first client for Sber's GigaChat API.

>>> from gigachat_lite import chat
>>> for chunk in chat("Привет"):          # doctest: +SKIP
...     print(chunk, end="", flush=True)

The async adapter (:mod:`gigachat_lite.aio`), the gpt4free provider
(:class:`GigaChat`) and the batch runner (:func:`run_batch`) are imported on
first use, so ``import gigachat_lite`` costs little more than ``import requests``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, List

from ._assistants import Assistant, Assistants
from ._threads import Thread, ThreadMessage, ThreadMessages, ThreadReply, ThreadRun, Threads, ThreadStream
from .api import ai_check, assistants, chat, functions_convert, parse, balance, delete_file, embeddings, file, file_content, files, model, models, threads, tokens_count, upload_file
from .config import Config
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConcurrencyLimitTimeout,
    CoordinationError,
    DeadlineExceeded,
    GigaChatError,
    InvalidResponseError,
    StructuredOutputError,
    MissingAuthError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamDeadlineExceeded,
    StreamError,
    StreamTimeoutError,
    TLSError,
    TransportError,
)
from .results import ChatReply, ChatReplyV2, Choice, Embeddings, TokenCount, ToolCall, Usage
from .session import Session, reset
from .stream import ChatStream, ChatStreamV2
from .version import __version__

if TYPE_CHECKING:
    from ._batch import BatchInputError, BatchProgress, BatchSummary, run_batch
    from ._bridge import AsyncStream
    from .provider import GigaChat

__all__ = [
    "__version__",
    "chat",
    "parse",
    "ai_check",
    "functions_convert",
    "models",
    "model",
    "embeddings",
    "tokens_count",
    "balance",
    "upload_file",
    "files",
    "file",
    "delete_file",
    "file_content",
    "run_batch",
    "BatchProgress",
    "BatchSummary",
    "BatchInputError",
    "assistants",
    "threads",
    "Embeddings",
    "TokenCount",
    "ToolCall",
    "Usage",
    "Choice",
    "Session",
    "Config",
    "reset",
    "ChatStream",
    "ChatReply",
    "ChatStreamV2",
    "ChatReplyV2",
    "Assistants",
    "Assistant",
    "Threads",
    "Thread",
    "ThreadMessage",
    "ThreadMessages",
    "ThreadRun",
    "ThreadReply",
    "ThreadStream",
    "AsyncStream",
    "GigaChat",
    "GigaChatError",
    "MissingAuthError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "StreamTimeoutError",
    "DeadlineExceeded",
    "StreamDeadlineExceeded",
    "InvalidResponseError",
    "StructuredOutputError",
    "TransportError",
    "APIConnectionError",
    "APITimeoutError",
    "TLSError",
    "CoordinationError",
    "ConcurrencyLimitTimeout",
]

# A library logs; the application decides where it goes.
logging.getLogger("gigachat_lite").addHandler(logging.NullHandler())

_LAZY = {
    "GigaChat": "provider", "AsyncStream": "_bridge",
    "run_batch": "_batch", "BatchProgress": "_batch", "BatchSummary": "_batch", "BatchInputError": "_batch",
}


def __getattr__(name: str) -> Any:
    # GigaChat and AsyncStream pull in asyncio (~10 ms), the batch runner its threads and queue: only when asked for.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gigachat_lite' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))

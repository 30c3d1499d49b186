"""The one place the command line imports the library from.

Everything the CLI uses from gigachat_lite comes through here, so that the
core can be reshaped by changing these imports only. Public names where they
exist (``Session``, ``Config``, the exceptions); ``SCOPES`` is the one
internal constant.
"""

from __future__ import annotations

from ..config import SCOPES, Config
from ..errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    GigaChatError,
    MissingAuthError,
    NotFoundError,
    RateLimitError,
    StreamError,
    TLSError,
    TransportError,
)
from ..session import Session
from ..version import __version__

__all__ = [
    "SCOPES",
    "Config",
    "Session",
    "__version__",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "GigaChatError",
    "MissingAuthError",
    "NotFoundError",
    "RateLimitError",
    "StreamError",
    "TLSError",
    "TransportError",
]

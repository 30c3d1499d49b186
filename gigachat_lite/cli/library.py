"""The one place the command line imports the library from.

Everything the CLI uses from gigachat_lite comes through here, so that the
core can be reshaped by changing these imports only. Public names where they
exist (``Session``, ``Config``, the exceptions, ``run_batch``); ``SCOPES`` is
the one internal constant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Type

from .._batch import BatchInputError, BatchProgress, BatchSummary, run_batch
from ..config import API_VERSIONS, SCOPES, Config
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

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = [
    "API_VERSIONS",
    "SCOPES",
    "Config",
    "Session",
    "__version__",
    "BatchInputError",
    "BatchProgress",
    "BatchSummary",
    "run_batch",
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
    "emulator_class",
    "parse_fault",
]


# The emulator is imported on first use: only serve and demo need it, and
# every other command starts faster without it (http.server and friends).


def emulator_class() -> "Type[Emulator]":
    from ..emulator import Emulator

    return Emulator


def parse_fault(spec: str) -> Any:
    """A ``--fault`` SPEC as an emulator Fault; ValueError names the bad part."""
    from ..emulator.faults import parse_fault as parse

    return parse(spec)

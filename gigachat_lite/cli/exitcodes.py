"""The exit codes: declared once, used for every command's help and for mapping errors."""

from __future__ import annotations

from typing import NamedTuple, Tuple

from .library import APIError, AuthenticationError, GigaChatError, MissingAuthError, StreamError, TransportError

__all__ = ["ExitCode", "EXIT_CODES", "UsageError", "exit_code", "help_for"]

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NETWORK = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class ExitCode(NamedTuple):
    code: int
    meaning: str
    commands: Tuple[str, ...]  # the commands that can end with it


_API = ("chat", "models")
_ALL = ("chat", "models", "batch", "serve", "demo", "completion")

EXIT_CODES: Tuple[ExitCode, ...] = (
    ExitCode(EXIT_OK, "success", _ALL),
    ExitCode(EXIT_API, "the API answered with an error, or the stream broke (batch: some ids ended in error)", _API + ("batch", "demo")),
    ExitCode(EXIT_USAGE, "bad usage or input (options, configuration values, empty prompt, a bad batch line)", _ALL),
    ExitCode(EXIT_AUTH, "authentication: no key configured, or the key or token was refused", _API + ("batch",)),
    ExitCode(EXIT_NETWORK, "network: connection refused, DNS, proxy, TLS, timeout (also a stalled stream)", _API + ("batch", "serve")),
    ExitCode(EXIT_INTERRUPTED, "interrupted (Ctrl-C)", _ALL),
    ExitCode(EXIT_BROKEN_PIPE, "standard output was closed early (e.g. piped into head)", _API + ("completion",)),
)


class UsageError(Exception):
    """Bad input found after argument parsing: exit code 2."""


def help_for(command: str = "") -> str:
    """The "exit codes:" block of ``--help``: every code, or only those ``command`` can return."""
    lines = ["exit codes:"]
    lines += [f"  {row.code:<4} {row.meaning}" for row in EXIT_CODES if not command or command in row.commands]
    return "\n".join(lines) + "\n"


def exit_code(error: BaseException) -> int:
    """The exit code for an error the command reports (re-raises anything else)."""
    # Order matters: AuthenticationError is an APIError, and StreamTimeoutError is
    # both a StreamError and a TransportError (a stalled network, so 4).
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, (MissingAuthError, AuthenticationError)):
        return EXIT_AUTH
    if isinstance(error, TransportError):
        return EXIT_NETWORK
    if isinstance(error, (APIError, StreamError, GigaChatError)):
        return EXIT_API
    raise error

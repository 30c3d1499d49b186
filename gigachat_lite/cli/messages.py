"""Errors in the command line's words: flags and variables, plain sentences, no secret.

The library speaks to Python callers (``ca_bundle=``, urllib3's reasons); a shell
user needs ``--ca-bundle`` and "cannot connect to 127.0.0.1:9: connection refused".
"""

from __future__ import annotations

import math
import os
import socket
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from .library import APIConnectionError, APIError, APITimeoutError, RateLimitError

__all__ = ["describe", "error_object", "redact", "remember_secret"]

# Python keywords the library names in its messages, and what a shell user sets instead.
_CLI_WORDS = (
    ("pass api_key= (or set GIGACHAT_CREDENTIALS)", "set GIGACHAT_CREDENTIALS (or use --credentials-file PATH)"),
    ("pass access_token= (or set GIGACHAT_ACCESS_TOKEN)", "set GIGACHAT_ACCESS_TOKEN"),
    ("ca_bundle= or GIGACHAT_CA_BUNDLE_FILE", "--ca-bundle or GIGACHAT_CA_BUNDLE_FILE"),
    ("verify=False", "GIGACHAT_VERIFY_SSL_CERTS=false"),
)

# Secrets read from a --credentials-file: scrubbed from any text the command
# prints, as a second line of defence (the library keeps them out already).
_SECRETS: List[str] = []


def remember_secret(value: str) -> None:
    _SECRETS.append(value)


def redact(text: str) -> str:
    secrets = list(_SECRETS)
    for name in ("GIGACHAT_CREDENTIALS", "GIGACHAT_API_KEY", "GIGACHAT_ACCESS_TOKEN"):
        value = (os.environ.get(name) or "").strip()
        if value:
            secrets.append(value)
    for secret in secrets:
        if len(secret) >= 8:  # a short value would blank out innocent words
            text = text.replace(secret, "***")
    return text


def describe(error: Any) -> str:
    """One line for ``error``, in the command line's words."""
    if isinstance(error, RateLimitError):
        text = f"{error.status_code}: {error.message}; {_wait_advice(error.retry_after)}"
        text += f" (request id {error.request_id})" if error.request_id else ""
    elif isinstance(error, APIConnectionError):
        text = _network_sentence(error) or str(error)
    elif isinstance(error, APITimeoutError):
        text = f"{error} (--timeout or GIGACHAT_TIMEOUT sets how long to wait)"
    else:
        text = str(error) or type(error).__name__
    for python_words, cli_words in _CLI_WORDS:
        text = text.replace(python_words, cli_words)
    return redact(" ".join(text.split()))  # one line, whatever the message holds


def error_object(error: Any, kind: Optional[str] = None) -> Dict[str, Any]:
    """The ``--json`` form of an error: ``{"error": {"type", "message", "status", "request_id"}}``.

    ``kind`` is the type of an error given as text (default ``UsageError``).
    """
    is_api = isinstance(error, APIError)
    return {
        "error": {
            "type": type(error).__name__ if isinstance(error, BaseException) else (kind or "UsageError"),
            "message": describe(error),
            "status": error.status_code if is_api else None,
            "request_id": error.request_id if is_api else None,
        }
    }


def _wait_advice(seconds: Optional[float]) -> str:
    if seconds is None:
        return "the server did not say how long to wait; try again in a minute"
    return f"wait {max(1, math.ceil(seconds))} s before trying again"


def _network_sentence(error: BaseException) -> Optional[str]:
    """``cannot connect to HOST: connection refused``, from the chained transport exceptions."""
    host = None
    reason = None
    seen: Any = error.__cause__
    for _ in range(8):
        if seen is None:
            break
        url = getattr(getattr(seen, "request", None), "url", None)
        if host is None and url:
            host = urlsplit(str(url)).netloc.rpartition("@")[2]  # never a user or password
        if isinstance(seen, OSError) and not reason:
            reason = _os_reason(seen)
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else seen.__context__
        seen = inner
    if host is None or reason is None:
        return None
    if "proxy" in str(error):
        return f"cannot connect to {host} through the proxy: {reason}"
    return f"cannot connect to {host}: {reason}"


def _os_reason(error: OSError) -> Optional[str]:
    if isinstance(error, ConnectionRefusedError) or "refused" in str(error).lower():
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "the connection was reset"
    if isinstance(error, socket.gaierror) or "resolve" in str(error).lower():
        return "the host name was not found (DNS)"
    if "unreachable" in str(error).lower():
        return "the network is unreachable"
    return None

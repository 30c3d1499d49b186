"""The exceptions gigachat_lite raises.

Every failure the library meets surfaces as one of these; the original
exception (from requests, urllib3 or ssl) stays chained as ``__cause__``::

    GigaChatError
    ├── MissingAuthError           no authorization key and no access token anywhere
    ├── APIError                   the server answered with an error status or object
    │   ├── AuthenticationError    401/403 from OAuth, or a 401 that survived one refresh
    │   ├── BadRequestError        400, 413, 422
    │   ├── PaymentRequiredError   402
    │   ├── PermissionDeniedError  403 from the API (e.g. /balance on a post-paid account)
    │   ├── NotFoundError          404 (e.g. "No such model")
    │   ├── RateLimitError         429, with ``retry_after``
    │   └── ServerError            5xx
    ├── StreamError                a stream that was cut, malformed or of the wrong type
    │   └── StreamTimeoutError     (also an APITimeoutError) a stream that stalled
    │       └── StreamDeadlineExceeded  (also a DeadlineExceeded) a stream past deadline=
    ├── StructuredOutputError      a reply that does not match the requested response_format
    ├── InvalidResponseError       a whole (non-stream) reply that is not what the API sends
    ├── TransportError             nothing usable came back
    │   ├── APIConnectionError     refused, reset, DNS, proxy failures
    │   ├── APITimeoutError        connect or read timeout before the reply
    │   │   └── DeadlineExceeded   the whole call passed deadline=, or no first byte within first_byte_timeout=
    │   └── TLSError               certificate verification or handshake failure
    ├── CoordinationError          the coordination store (Redis, a folder) could not be used
    └── ConcurrencyLimitTimeout    no concurrency slot (or OAuth rate budget) freed up in time

Messages never contain the authorization key or an access token.

The second half of this module is the one place where HTTP statuses and
transport exceptions (requests, urllib3, http.client, ssl) become these
classes: :func:`error_from_response`, :func:`translate` and
:func:`stream_failure`.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import socket
import time
from typing import Any, Dict, Optional, Type
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from ._redact import redact_response, scrub, server_message

__all__ = [
    "GigaChatError", "MissingAuthError", "APIError", "AuthenticationError", "BadRequestError", "PaymentRequiredError",
    "PermissionDeniedError", "NotFoundError", "RateLimitError", "ServerError", "StreamError", "StreamTimeoutError",
    "DeadlineExceeded", "StreamDeadlineExceeded",
    "InvalidResponseError", "StructuredOutputError", "TransportError", "APIConnectionError", "APITimeoutError", "TLSError",
    "CoordinationError", "ConcurrencyLimitTimeout",
]


class GigaChatError(Exception):
    """Root of every exception raised by gigachat_lite. Its message is scrubbed of secrets (:mod:`._redact`)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(scrub(arg) if isinstance(arg, str) else arg for arg in args))


class MissingAuthError(GigaChatError):
    """Neither an authorization key nor an access token was configured."""


class APIError(GigaChatError):
    """The server answered with an error.

    Attributes:
        status_code: the HTTP status (or the ``status`` of an in-stream error).
        message: the server's own message, when it sent one.
        request_id: the ``X-Request-Id`` header, to quote to Sber's support.
        response: the :class:`requests.Response`, when there was one (closed).
    """

    def __init__(
        self, message: str, *, status_code: Optional[int] = None, request_id: Optional[str] = None, response: Any = None,
        hint: Optional[str] = None,
    ) -> None:
        self.status_code = status_code
        self.message = scrub(message)
        self.request_id = request_id
        self.response = response
        self.hint = hint  # ours, not the server's: what to check, in the exception's text only
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = self.message if self.status_code is None else f"{self.status_code}: {self.message}"
        text += f": {self.hint}" if self.hint else ""
        return text + (f" (request id {self.request_id})" if self.request_id else "")


class AuthenticationError(APIError):
    """The key or token was refused (OAuth 401/403, or an API 401 after a refresh)."""


class BadRequestError(APIError):
    """The server rejected the request body (400, 413, 422)."""


class PaymentRequiredError(APIError):
    """402: the account has run out of tokens for this model."""


class PermissionDeniedError(APIError):
    """403 from the API: the key's scope does not allow this call."""


class NotFoundError(APIError):
    """404: no such model, file or endpoint."""


class RateLimitError(APIError):
    """429: too many requests (retries, if any, are already spent).

    Attributes:
        retry_after: seconds the server asked to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(APIError):
    """5xx from the server (retries, if any, are already spent)."""


class StreamError(GigaChatError):
    """A stream ended early, carried malformed data, or was not a stream at all.

    Raised after every chunk that arrived intact has been yielded, so nothing
    is lost; nothing is ever retried once a byte was delivered, so nothing is
    duplicated either.
    """


class InvalidResponseError(GigaChatError):
    """A whole reply (``stream=False``, models, embeddings, ...) that is not JSON or lacks its fields."""


class StructuredOutputError(GigaChatError):
    """The reply does not match the requested ``response_format`` (see ``parse()``).

    Attributes:
        text: the reply's text as received, to log or to retry with.
        reply: the whole reply, when there is one.
    """

    def __init__(self, message: str, *, text: str = "", reply: Any = None) -> None:
        self.text = text
        self.reply = reply
        super().__init__(message)


class TransportError(GigaChatError):
    """No usable reply: the connection, the timeout or TLS failed."""


class APIConnectionError(TransportError):
    """The connection could not be made or was lost before a reply."""


class APITimeoutError(TransportError):
    """The server did not answer within the configured timeout."""


class StreamTimeoutError(StreamError, APITimeoutError):
    """A stream stalled for longer than the read timeout after it had started."""


class DeadlineExceeded(APITimeoutError):
    """The call took longer than ``deadline``, or ``first_byte_timeout`` passed before a stream's first event (another call's reply)."""


class StreamDeadlineExceeded(StreamTimeoutError, DeadlineExceeded):
    """A stream passed its deadline; the chunks received before stay on ``stream.text``."""


class TLSError(TransportError):
    """The server's certificate could not be verified, or the handshake failed."""


class CoordinationError(GigaChatError):
    """The coordination store (``coordination=``) is unreachable or failed: Redis down, folder unwritable.

    Raised instead of hanging (the Redis client runs with socket timeouts).
    With ``coordination_fallback=True`` it becomes a warning and in-process
    coordination instead.
    """


class ConcurrencyLimitTimeout(GigaChatError):
    """Waiting for a concurrency slot (or the OAuth rate budget) outlasted the call's timeout.

    Messages name the scope and the limit, never the key.

    Attributes:
        what: what was waited for, e.g. ``"a concurrency slot"``.
        limit: the limit in force (slots, or calls per second).
        waited: seconds spent waiting.
        scope: the key's scope, when known.
    """

    def __init__(self, what: str, *, limit: int, waited: float, scope: str = "") -> None:
        self.what = what
        self.limit = limit
        self.waited = waited
        self.scope = scope
        where = f" for {scope}" if scope else ""
        super().__init__(f"timed out after {waited:.2f} s waiting for {what}{where} (limit {limit})")


# -- the mapping: statuses and transport exceptions -> the classes above -------------------

_BY_STATUS: Dict[int, Type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 402: PaymentRequiredError, 403: PermissionDeniedError,
    404: NotFoundError, 413: BadRequestError, 422: BadRequestError, 429: RateLimitError,
}
_MAX_ERROR_BODY = 64 * 1024


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` (a number or an HTTP date); ``None`` if negative, nan, inf, empty, ..."""
    try:
        seconds = float(value or "")  # float() allows the surrounding spaces a header may have
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime((value or "").strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = max(0.0, when.timestamp() - time.time()) if when is not None else -1.0
    return seconds if 0.0 <= seconds < 1e9 else None  # False for nan, too


def error_from_response(response: requests.Response, *, oauth: bool = False) -> APIError:
    """Build the exception for an error response, reading (a bounded part of) its body."""
    status = response.status_code
    try:
        if getattr(response, "_content_consumed", False) or response.raw is None:
            raw = (response.content or b"")[:_MAX_ERROR_BODY]  # already read (stream=False)
        else:
            raw = response.raw.read(_MAX_ERROR_BODY, decode_content=True) or b""
    except Exception:  # a body we cannot read must not hide the status
        raw = b""
    finally:
        response.close()
    redact_response(response, raw)
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth: the text stands
        payload = None
    text = scrub(raw.decode("utf-8", "replace")).strip()[:200] if payload is None else ""  # scrubbed before it is cut
    message = server_message(payload, text or (response.reason or "HTTP error"))
    hint = None
    if status == 404 and "no such model" not in message.lower():
        # Not GigaChat's "No such model": most likely a wrong base_url or auth_url, so name what answered.
        hint = f"{_without_query(response.url or '')} answered 404 (check {'auth_url' if oauth else 'base_url'})"
    if status == 407:  # a proxy's own page, which may echo the credentials it was sent: not shown
        message = "the proxy refused the request (407 Proxy Authentication Required): check the proxy's user and password"
    request_id = response.headers.get("x-request-id")
    if oauth and status in (400, 401, 403):
        cls: Type[APIError] = AuthenticationError
        message = f"OAuth refused the authorization key: {message}"
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, APIError)
    extra = {"retry_after": parse_retry_after(response.headers.get("retry-after"))} if cls is RateLimitError else {}
    return cls(message, status_code=status, request_id=request_id, response=response, hint=hint, **extra)


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else url


def translate(exc: BaseException, *, url: str, bundle: Any, whole: bool = False) -> GigaChatError:
    """Map a requests/urllib3 exception to ours; the caller chains the original.

    ``whole``: the failure came while reading a whole (non-stream) reply's body,
    so a cut body is a lost connection, not a broken stream.
    """
    if isinstance(exc, GigaChatError):
        return exc
    host = urlsplit(url).netloc.rpartition("@")[2] or "the server"  # never a user or password a URL carried
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(tls_message(host, exc, bundle))
    if isinstance(exc, requests.exceptions.ProxyError):
        return APIConnectionError(f"the proxy refused or failed the connection to {host}: {_reason(exc)}")
    if isinstance(exc, requests.exceptions.Timeout) or _timed_out(exc):
        return APITimeoutError(f"{host} did not answer in time: {_reason(exc)}")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        if whole:
            return APIConnectionError(f"the reply from {host} was cut or garbled before it was whole: {_reason(exc)}")
        return StreamError(f"the reply from {host} was cut or garbled: {_reason(exc)}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return APIConnectionError(f"cannot reach {host}: {_reason(exc)}")
    return TransportError(f"request to {host} failed: {_reason(exc)}")


def _causes(exc: BaseException) -> "list[BaseException]":
    # requests nests urllib3's MaxRetryError, whose own text repeats the URL and
    # pool; the chain of reasons below it says what actually happened.
    chain = [exc]
    for _ in range(5):
        seen = chain[-1]
        inner = getattr(seen, "reason", None)
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if not isinstance(inner, BaseException):
            break
        chain.append(inner)
    return chain


def _timed_out(exc: BaseException) -> bool:
    # With a urllib3 Retry on the adapter, a read timeout before the reply ends as
    # MaxRetryError(reason=ReadTimeoutError), which requests raises as a plain
    # ConnectionError rather than ReadTimeout: look at the reason chain.
    for seen in _causes(exc):
        if isinstance(seen, urllib3.exceptions.NewConnectionError):
            return False  # a refused connection (urllib3 derives it from ConnectTimeoutError)
        if isinstance(seen, (TimeoutError, urllib3.exceptions.TimeoutError)):
            return True
    return False


def tls_message(host: str, exc: BaseException, bundle: Any) -> str:
    if bundle is False:
        where = "verification is off"
    else:
        where = f"verified against the CA bundle {bundle}"
    return (
        f"TLS failed for {host} ({where}): {_reason(exc)}. "
        "Point ca_bundle= or GIGACHAT_CA_BUNDLE_FILE at a bundle that holds the server's CA"
    )


def _reason(exc: BaseException) -> str:
    seen = _causes(exc)[-1]
    return (str(seen) or type(seen).__name__)[:300]


def stream_failure(exc: BaseException, events: int, request_id: Optional[str]) -> Optional[GigaChatError]:
    """Our exception for ``exc`` raised while reading a stream, or ``None`` if it is not a read failure."""
    where = f"after {events} events (request id {request_id})"
    if isinstance(exc, urllib3.exceptions.DecodeError):  # Content-Encoding: gzip or deflate
        return StreamError(f"the stream's compressed body (Content-Encoding) is corrupt {where}")
    if isinstance(exc, UnicodeDecodeError):  # sseclient-py decodes each line as UTF-8
        return StreamError(f"the stream carried invalid UTF-8 {where}")
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, socket.timeout)):  # urllib3's, or the socket's
        return StreamTimeoutError(f"the stream stalled for longer than the read timeout {where}")
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, http.client.HTTPException)):
        return StreamError(f"the stream was cut {where}: {type(exc).__name__}")  # IncompleteRead included
    return None

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
    ├── StructuredOutputError      a reply that does not match the requested response_format
    └── TransportError             nothing usable came back
        ├── APIConnectionError     refused, reset, DNS, proxy failures
        ├── APITimeoutError        connect or read timeout before the reply
        └── TLSError               certificate verification or handshake failure

Messages never contain the authorization key or an access token.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
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
    "StructuredOutputError",
    "TransportError",
    "APIConnectionError",
    "APITimeoutError",
    "TLSError",
]


class GigaChatError(Exception):
    """Root of every exception raised by gigachat_lite."""


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
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        request_id: Optional[str] = None,
        response: Any = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.request_id = request_id
        self.response = response
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = self.message
        if self.status_code is not None:
            text = f"{self.status_code}: {text}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


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


class TLSError(TransportError):
    """The server's certificate could not be verified, or the handshake failed."""

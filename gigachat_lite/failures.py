"""Turning HTTP statuses and transport exceptions into gigachat_lite's exceptions.

Kept apart from :mod:`errors` (the classes) so that auth and session share one
mapping and the classes stay importable with nothing else.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Dict, Optional, Type
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GigaChatError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamError,
    TLSError,
    TransportError,
)

_BY_STATUS: Dict[int, Type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}
_MAX_ERROR_BODY = 64 * 1024


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header: a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(payload: Any, fallback: str) -> str:
    """The human message of an error payload (``{"status", "message"}`` or ``{"code", "message"}``)."""
    if isinstance(payload, dict):
        for key in ("message", "error_description", "detail"):
            if isinstance(payload.get(key), str) and payload[key]:
                return str(payload[key])
        inner = payload.get("error")
        if isinstance(inner, dict):
            return server_message(inner, fallback)
        if isinstance(inner, str) and inner:
            return inner
    return fallback


def error_from_response(response: requests.Response, *, oauth: bool = False) -> APIError:
    """Build the exception for an error response, reading (a bounded part of) its body."""
    status = response.status_code
    _redact_credentials(response)
    try:
        if getattr(response, "_content_consumed", False) or response.raw is None:
            raw = (response.content or b"")[:_MAX_ERROR_BODY]  # already read (stream=False)
        else:
            raw = response.raw.read(_MAX_ERROR_BODY, decode_content=True) or b""
    except Exception:  # a body we cannot read must not hide the status
        raw = b""
    finally:
        response.close()
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    text = raw.decode("utf-8", "replace").strip()[:200] if payload is None else ""
    message = server_message(payload, text or (response.reason or "HTTP error"))
    request_id = response.headers.get("x-request-id")
    if oauth and status in (400, 401, 403):
        cls: Type[APIError] = AuthenticationError
        message = f"OAuth refused the authorization key: {message}"
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, APIError)
    if cls is RateLimitError:
        return RateLimitError(
            message,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            status_code=status,
            request_id=request_id,
            response=response,
        )
    return cls(message, status_code=status, request_id=request_id, response=response)


def _redact_credentials(response: requests.Response) -> None:
    # The exception carries the response, and the response its request: someone
    # logging ``exc.response.request.headers`` must not print a token or the key.
    # The request was sent already (and any resend copied it first).
    for item in [response, *response.history]:
        request = getattr(item, "request", None)
        headers = getattr(request, "headers", None)
        if headers is not None and "Authorization" in headers:
            headers["Authorization"] = "<redacted>"


def translate(exc: BaseException, *, url: str, bundle: Any) -> GigaChatError:
    """Map a requests/urllib3 exception to ours; the caller chains the original."""
    if isinstance(exc, GigaChatError):
        return exc
    host = urlsplit(url).netloc or url
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(tls_message(host, exc, bundle))
    if isinstance(exc, requests.exceptions.ProxyError):
        return APIConnectionError(f"the proxy refused or failed the connection to {host}: {_reason(exc)}")
    if isinstance(exc, requests.exceptions.Timeout) or _timed_out(exc):
        return APITimeoutError(f"{host} did not answer in time: {_reason(exc)}")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return StreamError(f"the reply from {host} was cut or garbled: {_reason(exc)}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return APIConnectionError(f"cannot reach {host}: {_reason(exc)}")
    return TransportError(f"request to {host} failed: {_reason(exc)}")


def _timed_out(exc: BaseException) -> bool:
    # With a urllib3 Retry on the adapter, a read timeout before the reply ends as
    # MaxRetryError(reason=ReadTimeoutError), which requests raises as a plain
    # ConnectionError rather than ReadTimeout: look at the reason chain.
    seen: Any = exc
    for _ in range(5):
        if isinstance(seen, urllib3.exceptions.NewConnectionError):
            return False  # a refused connection (urllib3 derives it from ConnectTimeoutError)
        if isinstance(seen, (TimeoutError, urllib3.exceptions.TimeoutError)):
            return True
        inner = getattr(seen, "reason", None)
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if not isinstance(inner, BaseException):
            return False
        seen = inner
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
    # requests nests urllib3's MaxRetryError, whose text repeats the URL and pool;
    # the innermost reason is what a person needs.
    seen = exc
    for _ in range(5):
        inner = getattr(seen, "reason", None)
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if not isinstance(inner, BaseException):
            break
        seen = inner
    text = str(seen) or type(seen).__name__
    return text[:300]

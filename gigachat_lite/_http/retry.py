"""The retry policy on every GigaChat request: urllib3's ``Retry``, tuned for GigaChat.

It retries 429/5xx and connection failures before the first byte of a reply
(POST too: a request that failed before the reply did no work), waits before
every retry (urllib3 retries the first failure at once), hands a long
``Retry-After`` to the caller instead of sleeping on it, never sleeps past a
call's deadline, tells the fleet's cool-down of every 429 when coordinating,
and logs each wait (``retry_in``/``retry_reason``) for the command line.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Optional

from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from ..errors import parse_retry_after
from .deadline import current

__all__ = ["GigaChatRetry", "retry_policy", "RETRY_STATUSES"]

log = logging.getLogger("gigachat_lite")

RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))


class GigaChatRetry(Retry):
    """urllib3's Retry, but a ``Retry-After`` longer than ``max_wait`` is not slept on.

    urllib3 would sleep for whatever the server asks (an hour, if it says so);
    instead we stop retrying and hand the wait to the caller as
    :attr:`RateLimitError.retry_after`.
    """

    max_wait = 30.0
    #: told the seconds of every 429's Retry-After: the fleet's cool-down, when coordinating
    on_rate_limit: Optional[Callable[[float], None]] = None

    def new(self, **kw: Any) -> "GigaChatRetry":
        retry = super().new(**kw)  # urllib3 copies only __init__'s arguments
        retry.on_rate_limit = self.on_rate_limit
        return retry
    planned_wait: Optional[float] = None  # set by increment() when a deadline bounds the call

    def get_backoff_time(self) -> float:
        # urllib3 retries the first failure at once; a 429 or 503 retried at once
        # is most likely refused again, so every retry waits (0.5 s, 1 s, 2 s, ...).
        backoff = super().get_backoff_time()
        if backoff == 0 and self.history:
            backoff = min(self.backoff_max, self.backoff_factor + random.random() * self.backoff_jitter)
        return backoff

    def get_retry_after(self, response: BaseHTTPResponse) -> Optional[float]:
        # urllib3 raises InvalidHeader on a Retry-After it cannot read ("-1",
        # "nan", ""), and the call ended as a TransportError: ignore it instead,
        # and the backoff applies.
        return parse_retry_after(response.headers.get("Retry-After"))

    def increment(self, method: Optional[str] = None, url: Optional[str] = None, response: Any = None, error: Any = None, _pool: Any = None, _stacktrace: Any = None) -> Retry:  # type: ignore[override]
        if response is not None and error is None:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and response.status == 429 and self.on_rate_limit is not None:
                self.on_rate_limit(wait)
            if wait is not None and wait > self.max_wait:
                raise MaxRetryError(_pool, url or "", None)  # urlopen returns this response as is
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        deadline = current()
        if deadline is not None and isinstance(new, GigaChatRetry):  # plan the wait now: a retry that would end past the deadline is not made
            wait = new.get_retry_after(response) if response is not None else None
            new.planned_wait = wait or new.get_backoff_time()
            left = deadline.remaining()
            if deadline.expired or deadline.retries_stopped or (left is not None and new.planned_wait >= left):
                raise MaxRetryError(_pool, url or "", error)  # the last reply (or error) is the outcome
        return new


    def sleep(self, response: Optional[BaseHTTPResponse] = None) -> None:
        # urllib3's sleep, plus one INFO record saying how long and why, so that a
        # caller (the command line's "retrying in 2 s after 429") can show the wait.
        wait = self.planned_wait
        if wait is None:
            wait = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        if not wait:
            wait = self.get_backoff_time()
        if wait > 0:
            reason = _retry_reason(self.history[-1]) if self.history else "a failure"
            log.info("retrying in %.1f s after %s", wait, reason, extra={"retry_in": wait, "retry_reason": reason})
            deadline = current()
            if deadline is None:
                time.sleep(wait)
            else:
                deadline.sleep(wait)  # a deadline or a cancelled call ends the wait at once
                if deadline.retries_stopped and not deadline.expired:
                    # Stopped during the wait (a batch being stopped): the retry is not sent.
                    raise ProtocolError("not retried: the call's retries were stopped")  # requests: a ConnectionError


def _retry_reason(last: Any) -> str:
    if last.status:
        return str(last.status)
    if isinstance(last.error, NewConnectionError):  # also DNS and unreachable networks
        return "connection refused" if "refused" in str(last.error).lower() else "connection failure"
    if isinstance(last.error, Urllib3Timeout):
        return "timeout"
    return "connection reset" if last.error is not None else "a failure"


def retry_policy(count: int) -> GigaChatRetry:
    return GigaChatRetry(
        total=count,
        connect=count,
        read=count,
        status=count,
        other=0,
        redirect=0,
        allowed_methods=None,  # POST too: a request that failed before the reply did no work
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.5,
        backoff_jitter=0.25,
        backoff_max=8.0,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 429/5xx comes back and becomes our typed error
        raise_on_redirect=False,
    )

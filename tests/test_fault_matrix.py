"""The fault matrix: one row per failure, each with its exact outcome, over real TLS on 127.0.0.1.

Every row runs under a hang guard and checks, besides the typed error or the
transparent recovery: no chunk yielded twice (the chunks are exactly a prefix
of the reply), every pooled connection given back, how many chat and OAuth
requests the emulator saw, and that the session still works afterwards.

``ROWS`` and :func:`run_row` are reused by ``scripts/reliability.py``.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import pytest

import gigachat_lite
from gigachat_lite import (
    InvalidResponseError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    Session,
    StreamError,
    StreamTimeoutError,
)
from gigachat_lite.emulator import Emulator, Fault

from reliability_support import Hang, Proxy, checked_out, free_port, guarded

TEXT = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
PIECE = 4
PIECES = [TEXT[i:i + PIECE] for i in range(0, len(TEXT), PIECE)]
CHAT = "chat/completions"
GUARD = 30.0


def _faults(*faults: Fault) -> Callable[[], Sequence[Fault]]:
    return lambda: faults


def _retry_after_date() -> Sequence[Fault]:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # made when the row runs
    return (Fault(path=CHAT, status=429, retry_after=when, times=1),)


@dataclass(frozen=True)
class Row:
    name: str
    faults: Callable[[], Sequence[Fault]] = _faults()
    call: str = "stream"  # stream | reply | revoke | batch
    options: Dict[str, Any] = field(default_factory=dict)  # Session keywords
    params: Dict[str, Any] = field(default_factory=dict)  # chat keywords
    expect: Optional[Type[BaseException]] = None  # exact type; None: transparent recovery
    status: Optional[int] = None
    match: str = ""
    attrs: Dict[str, Any] = field(default_factory=dict)
    chunks: Optional[int] = None  # chunks yielded before the error
    chat_requests: Optional[int] = None
    oauth_requests: Optional[int] = None
    warm: bool = True  # fetch the token before the row, so counts are the row's own
    proxy: Optional[str] = None  # "refuse": a proxy answering 403; "down": nobody listening
    unreachable: bool = False  # point the session at a closed port
    token_ttl: Optional[float] = None


def _chat_status(status: int, cls: Type[APIError]) -> Row:
    return Row(f"chat {status}", _faults(Fault(path=CHAT, status=status, times=1)), expect=cls, status=status,
               chat_requests=1, oauth_requests=0)


ROWS: List[Row] = [
    Row("token revoked mid-session", call="revoke", chat_requests=3, oauth_requests=1),
    Row("token expires during a long batch", call="batch", token_ttl=1.0),
    Row("persistent 401", _faults(Fault(path=CHAT, unauthorized=True)), expect=AuthenticationError, status=401,
        match="refused after a token refresh", chat_requests=2, oauth_requests=1),
    Row("OAuth 401", _faults(Fault(path="oauth", unauthorized=True)), warm=False, expect=AuthenticationError,
        status=401, match="OAuth refused", chat_requests=0, oauth_requests=1),
    Row("OAuth 400 (bad scope)", _faults(Fault(path="oauth", status=400, message="scope from db not fully includes consumed scope")),
        warm=False, expect=AuthenticationError, status=400, match="scope", chat_requests=0, oauth_requests=1),
    Row("OAuth 429", _faults(Fault(path="oauth", status=429)), options={"max_retries": 1}, warm=False,
        expect=RateLimitError, status=429, chat_requests=0, oauth_requests=2),
    Row("OAuth 500 persistent", _faults(Fault(path="oauth", status=500)), options={"max_retries": 1}, warm=False,
        expect=ServerError, status=500, chat_requests=0, oauth_requests=2),
    Row("OAuth 503 then success", _faults(Fault(path="oauth", status=503, times=1)), warm=False,
        chat_requests=1, oauth_requests=2),
    _chat_status(400, BadRequestError),
    _chat_status(402, PaymentRequiredError),
    _chat_status(403, PermissionDeniedError),
    Row("chat 404 (no such model)", params={"model": "GigaChat-Ultra"}, expect=NotFoundError, status=404,
        match="No such model", chat_requests=1, oauth_requests=0),
    _chat_status(413, BadRequestError),
    _chat_status(422, BadRequestError),
    Row("429 Retry-After seconds then success", _faults(Fault(path=CHAT, status=429, retry_after="1", times=1)),
        chat_requests=2, oauth_requests=0),
    Row("429 Retry-After HTTP date then success", _retry_after_date, chat_requests=2, oauth_requests=0),
    Row("429 Retry-After too long", _faults(Fault(path=CHAT, status=429, retry_after="3600", times=1)),
        expect=RateLimitError, status=429, attrs={"retry_after": 3600.0}, chat_requests=1, oauth_requests=0),
    *[Row(f"{s} then success", _faults(Fault(path=CHAT, status=s, times=1)), chat_requests=2, oauth_requests=0)
      for s in (500, 502, 503, 504)],
    Row("503 persistent", _faults(Fault(path=CHAT, status=503)), options={"max_retries": 1}, expect=ServerError,
        status=503, chat_requests=2, oauth_requests=0),
    Row("connection refused", unreachable=True, warm=False, options={"max_retries": 1}, expect=APIConnectionError,
        match="127.0.0.1", chat_requests=0, oauth_requests=0),
    Row("reset before the first byte, once", _faults(Fault(path=CHAT, reset=True, times=1)),
        chat_requests=2, oauth_requests=0),
    Row("reset before the first byte, always", _faults(Fault(path=CHAT, reset=True)), options={"max_retries": 1},
        expect=APIConnectionError, match="Connection aborted", chat_requests=2, oauth_requests=0),
    Row("cut before the first event", _faults(Fault(path=CHAT, cut_after=0)), expect=StreamError,
        match="cut after 0 events", chunks=0, chat_requests=1, oauth_requests=0),
    Row("cut after 3 events", _faults(Fault(path=CHAT, cut_after=3)), options={"max_retries": 3},
        expect=StreamError, match="cut after 3 events", chunks=3, chat_requests=1, oauth_requests=0),
    Row("malformed event", _faults(Fault(path=CHAT, malformed_after=2)), expect=StreamError,
        match="malformed event #3", chunks=2, chat_requests=1, oauth_requests=0),
    Row("in-stream error object", _faults(Fault(path=CHAT, stream_error_after=2, status=500, message="boom")),
        expect=APIError, status=500, match="boom", chunks=2, chat_requests=1, oauth_requests=0),
    Row("stall mid-stream > read timeout", _faults(Fault(path=CHAT, stall=2.0, after=2)),
        options={"timeout": (5, 0.5)}, expect=StreamTimeoutError, match="stalled", chunks=2,
        chat_requests=1, oauth_requests=0),
    Row("stall before the reply > read timeout", _faults(Fault(path=CHAT, stall=2.0)),
        options={"timeout": (5, 0.5), "max_retries": 0}, expect=APITimeoutError, match="in time",
        chat_requests=1, oauth_requests=0),
    Row("wrong content type (stream)", _faults(Fault(path=CHAT, content_type="text/html")), expect=StreamError,
        match="text/html", chunks=0, chat_requests=1, oauth_requests=0),
    Row("wrong content type (whole reply)", _faults(Fault(path=CHAT, content_type="text/html")), call="reply",
        expect=InvalidResponseError, match="not JSON", chat_requests=1, oauth_requests=0),
    Row("empty body (stream)", _faults(Fault(path=CHAT, empty_body=True)), expect=StreamError,
        match="text/event-stream", chunks=0, chat_requests=1, oauth_requests=0),
    Row("empty body (whole reply)", _faults(Fault(path=CHAT, empty_body=True)), call="reply",
        expect=InvalidResponseError, match="not JSON", chat_requests=1, oauth_requests=0),
    Row("proxy refuses (403 to CONNECT)", proxy="refuse", warm=False, expect=APIConnectionError, match="proxy",
        chat_requests=0, oauth_requests=0),
    Row("proxy down", proxy="down", warm=False, options={"max_retries": 0}, expect=APIConnectionError,
        match="proxy", chat_requests=0, oauth_requests=0),
]


@dataclass
class Outcome:
    row: Row
    error: Optional[BaseException] = None
    chunks: List[str] = field(default_factory=list)
    text: Optional[str] = None
    hang: bool = False
    checked_out: int = 0
    chat_requests: int = 0
    oauth_requests: int = 0
    healthy_after: Optional[bool] = None
    batch: Dict[str, float] = field(default_factory=dict)

    @property
    def recovered(self) -> bool:
        return self.error is None and not self.hang

    @property
    def typed(self) -> bool:
        return self.error is not None and type(self.error) is self.row.expect

    @property
    def duplicates(self) -> int:
        """Chunks that are not where they belong in the reply (a repeat shows up here)."""
        good = 0
        for got, want in zip(self.chunks, PIECES):
            if got != want:
                break
            good += 1
        return len(self.chunks) - good


EMULATOR = dict(tls=True, reply=TEXT, piece_size=PIECE)  # every row's server: TLS, a known reply in known pieces


def make_emulator() -> Emulator:
    """The rows' emulator outside pytest (scripts/reliability.py)."""
    return Emulator(**EMULATOR)


def _count(emu: Emulator, since: int) -> Tuple[int, int]:
    recent = emu.requests[since:]
    return (sum(1 for r in recent if r.path.endswith("/chat/completions")),
            sum(1 for r in recent if "oauth" in r.path))


def run_row(row: Row, emu: Emulator) -> Outcome:
    """Run one row against ``emu`` (TLS, reply TEXT) and observe everything."""
    gigachat_lite.reset()
    emu.clear_faults()
    emu.token_ttl = row.token_ttl or 1800.0
    outcome = Outcome(row)
    config: Dict[str, Any] = dict(emu.client_config(), **row.options)
    proxy: Optional[Proxy] = None
    if row.unreachable:
        port = free_port()
        config.update(base_url=f"https://127.0.0.1:{port}/api/v1", auth_url=f"https://127.0.0.1:{port}/api/v2/oauth")
    if row.proxy == "refuse":
        proxy = Proxy(refuse=True)
        config["proxy"] = proxy.url
    elif row.proxy == "down":
        config["proxy"] = f"http://127.0.0.1:{free_port()}"
    s = Session(**config)
    try:
        if row.warm:
            guarded(s.auth.current, GUARD)
        for fault in row.faults():
            emu.add_fault(fault)
        since = len(emu.requests)

        def stream_into(prompt: str, into: List[str]) -> None:
            for chunk in s.chat(prompt, **row.params):
                into.append(chunk)

        def act() -> None:
            if row.call == "stream":
                stream_into("hi", outcome.chunks)
            elif row.call == "reply":
                outcome.text = s.chat("hi", stream=False, **row.params).content
            elif row.call == "revoke":
                first: List[str] = []
                stream_into("one", first)
                assert first == PIECES
                emu.revoke_tokens()
                stream_into("two", outcome.chunks)
            elif row.call == "batch":
                started = time.monotonic()
                calls = 0
                while time.monotonic() - started < 2.6:
                    got: List[str] = []
                    stream_into(f"n{calls}", got)
                    assert got == PIECES, got
                    calls += 1
                outcome.chunks = PIECES[:]
                outcome.batch = {"calls": calls, "elapsed": time.monotonic() - started}

        try:
            guarded(act, GUARD)
        except Hang:
            outcome.hang = True
        except Exception as exc:  # the outcome under test
            outcome.error = exc
        outcome.checked_out = checked_out(s)
        outcome.chat_requests, outcome.oauth_requests = _count(emu, since)
        if row.proxy is None and not row.unreachable and not outcome.hang:
            emu.clear_faults()
            emu.token_ttl = 1800.0
            try:
                outcome.healthy_after = guarded(lambda: s.chat("after", stream=False).content == TEXT, GUARD)
            except Exception:
                outcome.healthy_after = False
            outcome.checked_out = max(outcome.checked_out, checked_out(s))
    finally:
        s.close()
        emu.clear_faults()
        emu.token_ttl = 1800.0
        if proxy is not None:
            proxy.stop()
    return outcome


def batch_oauth_bound(elapsed: float, ttl: float) -> int:
    """OAuth requests a collapsing cache may make: one per usable half-lifetime crossed, plus the first.

    The refresh margin is capped at half the lifetime, so a token is replaced
    once half of it is gone: ``elapsed / (ttl / 2)`` replacements, plus one slack.
    """
    return math.floor(elapsed / (ttl / 2)) + 2


def check(outcome: Outcome) -> None:
    """Every assertion a row makes; raises AssertionError naming the first that fails."""
    row = outcome.row
    assert not outcome.hang, f"{row.name}: hung"
    assert outcome.duplicates == 0, f"{row.name}: chunks out of place {outcome.chunks}"
    assert outcome.checked_out == 0, f"{row.name}: {outcome.checked_out} connection(s) never released"
    if row.expect is None:
        assert outcome.error is None, f"{row.name}: expected recovery, got {outcome.error!r}"
        if row.call == "reply":
            assert outcome.text == TEXT
        else:
            assert outcome.chunks == PIECES
    else:
        assert type(outcome.error) is row.expect, f"{row.name}: expected {row.expect.__name__}, got {outcome.error!r}"
        assert row.match in str(outcome.error), f"{row.name}: {row.match!r} not in {str(outcome.error)!r}"
        if row.status is not None:
            assert outcome.error.status_code == row.status  # type: ignore[union-attr]
        for name, value in row.attrs.items():
            assert getattr(outcome.error, name) == value
        if row.chunks is not None:
            assert outcome.chunks == PIECES[:row.chunks], f"{row.name}: {outcome.chunks}"
    if row.chat_requests is not None:
        assert outcome.chat_requests == row.chat_requests, f"{row.name}: {outcome.chat_requests} chat requests"
    if row.oauth_requests is not None:
        assert outcome.oauth_requests == row.oauth_requests, f"{row.name}: {outcome.oauth_requests} OAuth requests"
    if row.call == "batch":
        calls, elapsed = outcome.batch["calls"], outcome.batch["elapsed"]
        assert outcome.chat_requests == calls, "a request was refused (401) and resent: the refresh came too late"
        assert 2 <= outcome.oauth_requests <= batch_oauth_bound(elapsed, row.token_ttl or 1.0), outcome.batch
    if outcome.healthy_after is not None:
        assert outcome.healthy_after, f"{row.name}: the session did not work afterwards"


pytestmark = pytest.mark.gigachat_emulator(shared=True, **EMULATOR)


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault(row: Row, emu: Emulator) -> None:
    check(run_row(row, emu))


def test_the_matrix_covers_every_emulator_fault_kind() -> None:
    kinds = set()
    for row in ROWS:
        for fault in row.faults():
            kinds.update(k for k in ("status", "retry_after", "reset", "stall", "after", "cut_after", "malformed_after",
                                     "stream_error_after", "content_type", "empty_body", "unauthorized")
                         if getattr(fault, k) not in (None, False))
    assert kinds == {"status", "retry_after", "reset", "stall", "after", "cut_after", "malformed_after",
                     "stream_error_after", "content_type", "empty_body", "unauthorized"}

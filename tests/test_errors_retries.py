"""Retries before the first byte (urllib3 Retry on the adapter), never after it."""

from __future__ import annotations

import email.utils
import time

import pytest

from gigachat_lite import APIConnectionError, RateLimitError, ServerError, Session, StreamError
from gigachat_lite.emulator import Emulator, Fault


pytestmark = pytest.mark.gigachat_emulator(shared=True)


@pytest.fixture(autouse=True)
def no_faults(emu: Emulator) -> None:
    emu.clear_faults()


def chat_calls(emu: Emulator, since: int) -> int:
    return sum(1 for r in emu.requests[since:] if r.path.endswith("/chat/completions"))


@pytest.mark.slow
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_then_success_are_retried(emu: Emulator, status: int) -> None:
    with Session(**emu.client_config(), max_retries=2) as s:
        s.chat("warm up", stream=False)
        emu.add_fault(Fault(path="chat/completions", status=status, times=2))
        before = len(emu.requests)
        assert "".join(s.chat("hi")) == "Echo: hi"
        assert chat_calls(emu, before) == 3


@pytest.mark.slow
def test_retries_are_bounded_and_the_last_error_is_typed(emu: Emulator) -> None:
    emu.add_fault(Fault(path="chat/completions", status=503))
    with Session(**emu.client_config(), max_retries=1) as s:
        s.token  # noqa: B018
        before = len(emu.requests)
        with pytest.raises(ServerError) as info:
            s.chat("hi")
        assert info.value.status_code == 503 and chat_calls(emu, before) == 2


def test_max_retries_zero_sends_once(emu: Emulator) -> None:
    emu.add_fault(Fault(path="chat/completions", status=500, times=1))
    with Session(**emu.client_config(), max_retries=0) as s:
        before = len(emu.requests)
        with pytest.raises(ServerError):
            s.chat("hi")
        assert chat_calls(emu, before) == 1


@pytest.mark.slow
@pytest.mark.parametrize("retry_after", ["1", "date"])
def test_429_retry_after_in_seconds_and_as_http_date_is_honoured(emu: Emulator, retry_after: str) -> None:
    value = email.utils.formatdate(time.time() + 2, usegmt=True) if retry_after == "date" else retry_after
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after=value, times=1))
    with Session(**emu.client_config()) as s:
        before = len(emu.requests)
        started = time.monotonic()
        assert "".join(s.chat("hi")) == "Echo: hi"
        waited = time.monotonic() - started
    assert chat_calls(emu, before) == 2
    assert waited >= 0.9  # it did wait as told (a lower bound, not a speed target)


def test_a_long_retry_after_is_handed_to_the_caller(emu: Emulator) -> None:
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="3600", times=1))
    with Session(**emu.client_config()) as s:
        before = len(emu.requests)
        with pytest.raises(RateLimitError) as info:
            s.chat("hi")
    assert info.value.retry_after == 3600.0 and chat_calls(emu, before) == 1


def test_a_stream_cut_after_its_first_bytes_is_never_retried(emu: Emulator) -> None:
    emu.add_fault(Fault(path="chat/completions", cut_after=2, times=1))
    with Session(**emu.client_config(), max_retries=3) as s:
        before = len(emu.requests)
        got = []
        with pytest.raises(StreamError):
            for chunk in s.chat("abcdefghijklmnop"):
                got.append(chunk)
        assert chat_calls(emu, before) == 1
    assert len(got) == 2 and len(set(got)) == len(got)


@pytest.mark.slow
def test_reset_before_the_reply_is_retried(emu: Emulator) -> None:
    with Session(**emu.client_config(), max_retries=2) as s:
        s.chat("warm up", stream=False)
        emu.add_fault(Fault(path="chat/completions", reset=True, times=1))
        before = len(emu.requests)
        assert "".join(s.chat("hi")) == "Echo: hi"
        assert chat_calls(emu, before) == 2


@pytest.mark.slow
def test_connection_refused_is_a_typed_error() -> None:
    import socket

    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Session(api_key="k", base_url=f"http://127.0.0.1:{port}/api/v1", auth_url=f"http://127.0.0.1:{port}/oauth",
                 max_retries=1) as s:
        with pytest.raises(APIConnectionError, match="127.0.0.1"):
            s.chat("hi")

"""Hostile conditions: streams dropped mid-way, forks, deadlines, Retry-After (stream-side cases: test_hostile_streams.py)."""

from __future__ import annotations

import os
import pathlib
import select
import socket
import subprocess
import sys
import threading
from typing import Any, Callable, List, Optional

import pytest

import gigachat_lite
from gigachat_lite import (
    APIError, APITimeoutError, DeadlineExceeded, RateLimitError, Session, StreamDeadlineExceeded, StreamTimeoutError,
)
from gigachat_lite.auth import TOKENS, Token
from gigachat_lite.emulator import Emulator

from hostile_servers import TOKEN, RawServer, Request, response, sse_events, trickle
from reliability_support import abandon_streams, guarded


pytestmark = pytest.mark.gigachat_emulator(piece_size=2)


# What queue.Queue.get/put call while holding the queue's mutex (urllib3's pool is a LifoQueue).
@pytest.mark.slow
def test_streams_dropped_in_cycles_never_deadlock_and_leak_nothing(emu: Emulator) -> None:
    # Dropped inside a cycle of the caller's, a stream is freed only by the cycle
    # collector, which a profile hook runs at random calls: some of them inside
    # urllib3's pool, under its lock. A finaliser that returned the connection
    # there waited on itself forever (it hung after ~200 iterations; now the
    # whole run of scripts/reliability.py drops 5,000).
    figures = abandon_streams(emu, 1000)
    assert figures["dropped"] == 1000 and figures["works_after"]
    assert figures["threads_after"] <= figures["threads_before"]
    assert figures["fds_after"] <= figures["fds_before"] + 2, "sockets of dropped streams were not closed"


# -- fork safety --------------------------------------------------------------------------

def _child(config: dict, results: Any, index: int, parent_made: Any) -> None:
    try:
        import asyncio

        from gigachat_lite import aio, chat

        got = ["".join(chat(f"child {index} call {n}", **config)) for n in range(3)]
        got.append("".join(parent_made.chat(f"child {index} own session")))

        async def streamed() -> str:
            return "".join([piece async for piece in aio.chat(f"child {index} aio", **config)])

        got.append(asyncio.run(streamed()))
        results.put((index, got))
    except BaseException as exc:  # reported to the parent
        results.put((index, repr(exc)))


def hold_the_shared_session_lock(emu: Emulator, folder: pathlib.Path) -> Callable[[], None]:
    """Have a thread hold the lock around the process's shared sessions; return what lets it go.

    The thread asks for a shared session the process does not have yet, and the
    session's CA bundle is to be written where a FIFO stands: reading the old
    file blocks, with the lock held, until the FIFO's only writer (another
    process, so that forked children do not inherit it) goes away.
    """
    fifo = folder / "russian_trusted_root_ca.crt"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", "import os, sys, time\n"
                               "os.open(sys.argv[1], os.O_WRONLY)  # returns once the reader has it open\n"
                               "print('ready', flush=True)\ntime.sleep(120)", str(fifo)], stdout=subprocess.PIPE)
    previous = os.environ.get("GIGACHAT_LITE_CACHE_DIR")
    os.environ["GIGACHAT_LITE_CACHE_DIR"] = str(folder)
    thread = threading.Thread(target=lambda: "".join(gigachat_lite.chat("held", **emu.client_config(), timeout=7)),
                              daemon=True)
    thread.start()
    try:
        assert writer.stdout is not None
        ready, _, _ = select.select([writer.stdout], [], [], 30)
        assert ready and writer.stdout.readline() == b"ready\n", "the shared session was never made"
    except BaseException:
        writer.kill()
        raise
    finally:
        if previous is None:
            del os.environ["GIGACHAT_LITE_CACHE_DIR"]
        else:
            os.environ["GIGACHAT_LITE_CACHE_DIR"] = previous

    def release() -> None:
        writer.kill()  # its end of the FIFO closes: the read ends, the session is made, the lock let go
        writer.wait(10)
        writer.stdout.close()  # type: ignore[union-attr]
        thread.join(10)
        assert not thread.is_alive()

    return release


def hold_the_token_lock(session: Session) -> Callable[[], None]:
    """Have a thread hold the lock of ``session``'s token in the process's token cache (fetching, as far
    as anyone can tell); return what lets it go."""
    config = session.config
    key = (config.auth_url, config.api_key, config.scope)  # the cache's documented key
    token = session.token
    assert token is not None
    TOKENS.invalidate(key, token.value)
    assert session.token is None  # the very slot the session (and chat(), same key) uses
    fetching, done = threading.Event(), threading.Event()

    def fetch() -> Token:
        fetching.set()
        done.wait(20)
        return token

    thread = threading.Thread(target=TOKENS.get, args=(key, fetch, 60.0), daemon=True)
    thread.start()
    assert fetching.wait(20)  # inside the fetch: the slot's lock is held

    def release() -> None:
        done.set()
        thread.join(10)
        assert not thread.is_alive()

    return release


@pytest.mark.slow
def test_forked_children_and_the_parent_each_get_their_own_replies(emu: Emulator, tmp_path: pathlib.Path) -> None:
    import multiprocessing

    from gigachat_lite import chat

    config = {**emu.client_config(), "timeout": 5}
    assert "".join(chat("warm", **config)) == "Echo: warm"  # a warm keep-alive socket and a cached token
    parent_made = Session(**config)
    "".join(parent_made.chat("warm too"))
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    # Locks held by other parent threads at the moment of the fork: the children must not wait on them.
    releases = [hold_the_shared_session_lock(emu, tmp_path), hold_the_token_lock(parent_made)]
    children = [context.Process(target=_child, args=(config, results, i, parent_made)) for i in range(4)]
    for child in children:
        child.start()
    for release in reversed(releases):  # the token first: the held chat needs it too
        release()
    try:
        parent_replies = [guarded(lambda n=n: "".join(chat(f"parent {n}", **config)), timeout=20) for n in range(10)]
        outcomes = dict(results.get(timeout=60) for _ in children)
        for child in children:
            child.join(10)
            assert child.exitcode == 0
    finally:
        for child in children:
            if child.is_alive():
                child.kill()  # a hung child (the failure this test is about) must not outlive it
    assert parent_replies == [f"Echo: parent {n}" for n in range(10)]
    for index in range(4):
        assert outcomes[index] == [f"Echo: child {index} call {n}" for n in range(3)] + [
            f"Echo: child {index} own session", f"Echo: child {index} aio"], outcomes[index]
    assert "".join(parent_made.chat("parent again")) == "Echo: parent again"  # its pool still works


# -- an overall deadline ------------------------------------------------------------------

def _trickled_headers(conn: socket.socket, request: Request) -> None:
    trickle(conn, response(200, b"{}", {"Content-Type": "application/json"}) * 50, every=0.1)


# The servers below would hold a call for minutes (or forever): each test's guard
# (guarded(..., timeout=...)) turns a deadline that never fires into a failure, and
# the error type and message say which bound ended the call. No test times the call.

@pytest.mark.slow
@pytest.mark.parametrize("stream", [True, False])
def test_a_server_trickling_headers_cannot_outlast_the_deadline(stream: bool) -> None:
    with RawServer(_trickled_headers) as server:  # ~140 s of headers, a byte every 0.1 s
        with pytest.raises(DeadlineExceeded, match="deadline=1 s") as caught:
            guarded(lambda: gigachat_lite.chat("hi", stream=stream, **server.config(deadline=1, max_retries=3)), timeout=15)
        assert isinstance(caught.value, APITimeoutError)


@pytest.mark.slow
def test_a_stream_past_its_deadline_keeps_the_chunks_received() -> None:
    head = response(200, b"", {"Content-Type": "text/event-stream"}, length=False)

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head + sse_events(["one ", "two "], done=False, finish=False))
        trickle(conn, sse_events(["three"] * 100), every=0.1, size=3)  # ~5 minutes of it

    with RawServer(handler) as server:
        stream = gigachat_lite.chat("hi", **server.config(deadline=1))
        received: List[str] = []
        with pytest.raises(StreamDeadlineExceeded) as caught:
            guarded(lambda: received.extend(stream), timeout=15)
        assert isinstance(caught.value, StreamTimeoutError) and isinstance(caught.value, DeadlineExceeded)
        assert received[:2] == ["one ", "two "] and stream.text == "".join(received)


# (status, Retry-After, max_retries) -> the most requests that fit in deadline=2.5 s: a Retry-After of
# 25 s does not fit at all; of 2 s, once; the backoff (0.5-0.75 s, 1-1.25 s, 2-2.25 s, ...) twice.
@pytest.mark.slow
@pytest.mark.parametrize("status, retry_after, retries, most", [(503, "25", 3, 1), (500, None, 10, 3), (429, "2", 5, 2)])
def test_retries_never_sleep_past_the_deadline(status: int, retry_after: Optional[str], retries: int, most: int,
                                               caplog: pytest.LogCaptureFixture) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}

    def handler(conn: socket.socket, request: Request) -> bool:
        conn.sendall(response(status, b'{"status": %d, "message": "busy"}' % status, headers))
        return True

    caplog.set_level("INFO", logger="gigachat_lite")
    with RawServer(handler) as server:
        with pytest.raises((APIError, DeadlineExceeded)):
            guarded(lambda: gigachat_lite.chat("hi", stream=False, **server.config(deadline=2.5, max_retries=retries)), timeout=60)
        assert 1 <= len(server.requests) <= most
    waits = [record.retry_in for record in caplog.records if hasattr(record, "retry_in")]  # each "retrying in N s"
    assert len(waits) == len(server.requests) - 1 and sum(waits) < 2.5, waits


@pytest.mark.slow
def test_first_byte_timeout_caps_the_wait_for_the_first_event() -> None:
    go = threading.Event()

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(200, b"", {"Content-Type": "text/event-stream"}, length=False))
        go.wait(30)  # the first event waits for the test
        conn.sendall(sse_events(["late"]))

    with RawServer(handler) as server:
        stream = gigachat_lite.chat("hi", **server.config(first_byte_timeout=0.5))
        try:
            with pytest.raises(StreamDeadlineExceeded, match="first_byte_timeout=0.5 s"):
                guarded(lambda: list(stream), timeout=15)
        finally:
            go.set()


@pytest.mark.slow
def test_first_byte_timeout_on_a_whole_reply_counts_the_token_fetch_in() -> None:
    go = threading.Event()

    def handler(conn: socket.socket, request: Request) -> bool:
        if request.path.endswith("/oauth"):  # a prompt token...
            conn.sendall(response(200, b'{"access_token": "%s", "expires_at": 9999999999999}' % TOKEN.encode()))
        else:  # ...then a reply that takes its time, headers included
            go.wait(30)
            conn.sendall(response(200, b"{}", {"Content-Type": "application/json"}))
        return True

    with RawServer(handler) as server:
        config = {**server.config(first_byte_timeout=0.5), "access_token": None, "api_key": "a2V5LWZvci1maXJzdC1ieXRl",
                  "auth_url": f"http://127.0.0.1:{server.port}/oauth"}
        try:
            with pytest.raises(DeadlineExceeded, match="first_byte_timeout=0.5 s"):
                guarded(lambda: gigachat_lite.chat("hi", stream=False, **config), timeout=15)
        finally:
            go.set()
        assert [r.path.rsplit("/", 1)[-1] for r in server.requests] == ["oauth", "completions"]


@pytest.mark.gigachat_emulator(tls=True, piece_size=2)
def test_a_deadline_not_reached_changes_nothing_over_tls(emu: Emulator) -> None:
    with Session(**emu.client_config(), deadline=10, first_byte_timeout=5) as session:
        for n in range(3):
            assert "".join(session.chat(f"tls {n}")) == f"Echo: tls {n}"
            assert session.chat(f"whole {n}", stream=False).text == f"Echo: whole {n}"
    assert emu.ledger.oauth_calls(emu.api_key) == 1


# -- Retry-After ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("value", ["-5", "abc", "nan", "inf", "", "1e999", "Wed, 99 Foo 2026"])
def test_an_unusable_retry_after_is_ignored(value: str) -> None:
    replies = iter([429, 200, 429])

    def handler(conn: socket.socket, request: Request) -> bool:
        status = next(replies)
        body = b'{"choices": [{"message": {"role": "assistant", "content": "ok"}, "index": 0, "finish_reason": "stop"}]}'
        conn.sendall(response(status, body if status == 200 else b'{"status": 429, "message": "slow down"}',
                              {"Retry-After": value, "Content-Type": "application/json"}))
        return True

    with RawServer(handler) as server:
        reply = guarded(lambda: gigachat_lite.chat("hi", stream=False, **server.config(max_retries=1)), timeout=15)
        assert reply.text == "ok"  # retried after the backoff
        with pytest.raises(RateLimitError) as caught:
            guarded(lambda: gigachat_lite.chat("hi", stream=False, **server.config(max_retries=0)), timeout=15)
        assert caught.value.retry_after is None

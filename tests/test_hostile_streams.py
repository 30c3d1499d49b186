"""Hostile servers, stream side: compression, endless lines, echoed secrets, and any bytes at all (issue 12)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import traceback
import tracemalloc
from typing import Any, List

import pytest

import gigachat_lite
from gigachat_lite import APIError, AuthenticationError, GigaChatError, Session, StreamError

from hostile_servers import TOKEN, Handler, RawServer, Request, chunked, compress, response, sse_events, stream_case
from reliability_support import guarded


# -- Content-Encoding on streams ----------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_compressed_streams_are_decoded(encoding: str, framing: str) -> None:
    body = compress(sse_events(["При", "вет", "!"]), encoding)

    def handler(conn: socket.socket, request: Request) -> bool:
        headers = {"Content-Type": "text/event-stream", "Content-Encoding": encoding}
        if framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
            conn.sendall(response(200, b"", headers, length=False).replace(b"Connection: close\r\n", b"")
                         + chunked(body[i : i + 7] for i in range(0, len(body), 7)))
        else:
            conn.sendall(response(200, body, headers, length=framing == "length"))
        return framing != "close"

    with RawServer(handler) as server:
        stream = Session(**server.config()).chat("hi")
        assert guarded(lambda: list(stream), timeout=10) == ["При", "вет", "!"]
        assert stream.finish_reason == "stop"
        assert server.requests[0].headers["accept-encoding"] == "identity"


def test_a_corrupt_compressed_stream_is_a_stream_error_that_says_so() -> None:
    body = bytearray(compress(sse_events(["a" * 50] * 40), "gzip"))
    body[len(body) // 2 : len(body) // 2 + 16] = b"\xff" * 16

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(200, bytes(body), {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}))

    with RawServer(handler) as server:
        with pytest.raises(StreamError, match="compressed body"):
            guarded(lambda: list(Session(**server.config()).chat("hi")), timeout=10)


# -- bounded memory -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("framing", ["fast path", "fallback"])
def test_an_endless_line_fails_fast_naming_the_limit(framing: str) -> None:
    line = (b"data: " if framing == "fast path" else b": a comment first\n\ndata:") + b"x" * (50 << 20)
    payload = response(200, b"", {"Content-Type": "text/event-stream"}, length=False) + line  # made before tracing

    sent_it_all = threading.Event()

    def handler(conn: socket.socket, request: Request) -> None:
        try:
            conn.sendall(payload)
            sent_it_all.set()
        except OSError:
            pass  # the client gave up, as it should

    with RawServer(handler) as server:
        tracemalloc.start()
        try:
            with pytest.raises(StreamError, match=r"limit of 4194304 bytes .*max_event_size= or GIGACHAT_MAX_EVENT_SIZE"):
                guarded(lambda: list(gigachat_lite.chat("hi", **server.config())), timeout=20)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert not sent_it_all.is_set()  # it failed fast: long before the 50 MB line was all sent
    assert peak < 24 << 20, f"peak {peak >> 20} MiB"


def test_max_event_size_is_configurable() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(200, sse_events(["y" * 5000]), {"Content-Type": "text/event-stream"}))

    with RawServer(handler) as server:
        with pytest.raises(StreamError, match="limit of 4096 bytes"):
            guarded(lambda: list(gigachat_lite.chat("hi", **server.config(max_event_size=4096))), timeout=10)
        assert guarded(lambda: "".join(gigachat_lite.chat("hi", **server.config(max_event_size=8192))), timeout=10) == "y" * 5000
    with pytest.raises(ValueError, match="max_event_size"):
        Session(access_token=TOKEN, max_event_size=0)


# -- secrets echoed by a server -------------------------------------------------------------

KEY = "aG9zdGlsZS1jbGllbnQ6aG9zdGlsZS1zZWNyZXQ="  # base64("hostile-client:hostile-secret"), not a real key


def _echo_authorization(status: int, as_json: bool) -> Handler:
    def handler(conn: socket.socket, request: Request) -> bool:
        said = f"you sent Authorization: {request.headers.get('authorization')} (header {request.headers.get('authorization')})"
        body = json.dumps({"status": status, "message": said}).encode() if as_json else said.encode()
        conn.sendall(response(status, body, {"Content-Type": "application/json" if as_json else "text/plain"}))
        return True
    return handler


def _leaks(exc: BaseException, *secrets: str) -> List[str]:
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    shown += [str(getattr(exc, "message", ""))]
    return [secret for secret in secrets for text in shown if secret in text]


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [True, False])
@pytest.mark.parametrize("status", [400, 401, 500])
def test_a_server_echoing_the_token_never_gets_it_into_an_exception(status: int, as_json: bool, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG, logger="gigachat_lite")
    with RawServer(_echo_authorization(status, as_json)) as server:
        with pytest.raises(GigaChatError) as caught:
            guarded(lambda: gigachat_lite.chat("hi", stream=False, **server.config()), timeout=10)
    assert "you sent Authorization" in str(caught.value)
    assert _leaks(caught.value, TOKEN) == []
    assert "you sent Authorization" in caught.value.response.text and TOKEN not in caught.value.response.text
    assert TOKEN not in caplog.text


def test_oauth_echoing_the_key_and_a_stream_echoing_the_token_are_scrubbed() -> None:
    def handler(conn: socket.socket, request: Request) -> bool:
        if request.path.endswith("/oauth"):
            said = json.dumps({"code": 7, "message": f"bad key in {request.headers.get('authorization')}"}).encode()
            conn.sendall(response(401, said, {"Content-Type": "application/json"}))
        else:
            error = json.dumps({"status": 500, "message": f"stream broke, you sent {request.headers.get('authorization')}"})
            conn.sendall(response(200, sse_events(["a"], done=False, finish=False) + b"data: " + error.encode() + b"\n\n",
                                  {"Content-Type": "text/event-stream"}))
        return True

    with RawServer(handler) as server:
        auth_url = f"http://127.0.0.1:{server.port}/oauth"
        with pytest.raises(AuthenticationError) as oauth:
            guarded(lambda: gigachat_lite.chat("hi", api_key=KEY, base_url=server.base_url, auth_url=auth_url), timeout=10)
        assert "bad key in" in str(oauth.value) and _leaks(oauth.value, KEY) == []
        stream = gigachat_lite.chat("hi", **server.config())
        with pytest.raises(APIError) as inner:
            guarded(lambda: list(stream), timeout=10)
        assert "stream broke" in str(inner.value) and _leaks(inner.value, TOKEN) == []
    # And any Basic/Bearer credential at all, held or not:
    assert "s3cr3t-value" not in str(APIError("proxy said: Authorization: Bearer s3cr3t-value.abc"))


# -- any bytes, any split, any compression: chunks or a typed error, in time ------------------

try:
    from hypothesis import HealthCheck, given, settings, strategies as st
except ImportError:  # pragma: no cover
    given = None


if given is not None:
    _texts = st.lists(st.text(min_size=1, max_size=12), min_size=0, max_size=6)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        texts=_texts,
        mangle=st.sampled_from(["whole", "truncated", "wire cut", "garbage"]),
        cut_at=st.integers(min_value=0, max_value=10**6),
        garbage=st.binary(max_size=300),
        encoding=st.sampled_from(["identity", "gzip", "deflate"]),
        framing=st.sampled_from(["length", "chunked", "close"]),
        cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=8),
    )
    @pytest.mark.slow
    def test_any_bytes_any_split_any_compression_gives_chunks_or_a_typed_error_in_time(
        texts: List[str], mangle: str, cut_at: int, garbage: bytes, encoding: str, framing: str, cuts: List[int]
    ) -> None:
        outcome = stream_case(texts, mangle, cut_at, garbage, encoding, framing, cuts)
        # Never a hang (no outcome within stream_case's guard, twice the deadline) or a short reply.
        assert outcome.kind in ("complete", "typed"), (outcome.kind, outcome.received)
        if mangle == "whole":
            assert outcome.kind == "complete"

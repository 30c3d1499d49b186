"""Hostile servers and careless inputs, round three (issue 20): nothing hangs, leaks or lies.

Each test plays one misbehaving server (a raw socket on 127.0.0.1, or the
emulator with a fault) or one careless input, and checks the typed outcome
through the public API. The coordination, command-line and history cases
live beside their subjects (tests/test_coordination*.py, tests/test_cli_hostile.py).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import json
import math
import os
import re
import shutil
import socket
import ssl
import threading
import time
from typing import Any, Dict, Iterator, List, Literal, Optional, Tuple, TypedDict, Union

import pytest

import gigachat_lite
from gigachat_lite import (
    APIError,
    AuthenticationError,
    ConcurrencyLimitTimeout,
    GigaChat,
    InvalidResponseError,
    Session,
    StreamDeadlineExceeded,
    StreamError,
    StructuredOutputError,
    aio,
)
from gigachat_lite.auth import TOKENS
from gigachat_lite.emulator import Emulator, Fault

from hostile_servers import TOKEN, RawServer, Request, response, sse_events
from redis_server import RedisServer, redis_server  # noqa: F401  (the fixture)

KEY = base64.b64encode(b"hostile-client:hostile-secret").decode()
HUGE = 10**15


def _json_reply(payload: Any, status: int = 200, **headers: str) -> bytes:
    return response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})


# -- 1. cancelling an aio call before its reply's headers frees the connection and the slot ---------------


def _stream_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "gigachat_lite-stream")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_cancelled_aio_chat_waiting_for_headers_frees_its_slot_at_once(stream: bool) -> None:
    # A personal key allows one request in flight: with the cancelled call still
    # waiting for its (stalled) reply, the next call could not get the slot within
    # its 3 s timeout and would fail with ConcurrencyLimitTimeout.
    with Emulator() as emu:
        config = {**emu.client_config(), "coordination": "memory://", "max_concurrency": 1, "timeout": 3}
        emu.add_fault(Fault(path="chat/completions", stall=30, times=1))

        async def main() -> str:
            first = aio.chat("stalled", stream=stream, **config)
            task = asyncio.ensure_future(first.__anext__())
            while not any(r.path.endswith("/chat/completions") for r in emu.requests):
                await asyncio.sleep(0.01)  # the request is at the server, its reply stalled
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return "".join([chunk async for chunk in aio.chat("next", stream=stream, **config)])

        assert asyncio.run(asyncio.wait_for(main(), 20)) == "Echo: next"


def test_cancelled_short_aio_calls_let_go_at_once() -> None:
    with Emulator() as emu:
        config = {**emu.client_config(), "coordination": "memory://", "max_concurrency": 1, "timeout": 3}
        gigachat_lite.models(**config)  # the token is fetched: the stall below is the models call's own

        async def cancel(call: Any) -> None:
            task = asyncio.ensure_future(call)
            seen = len(emu.requests)
            while len(emu.requests) == seen:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        async def main() -> None:
            emu.add_fault(Fault(path="models", stall=30, times=1))
            await cancel(aio.models(**config))
            assert await aio.models(**config)  # the slot is free again within the 3 s timeout
            emu.add_fault(Fault(path="chat/completions", stall=30, times=1))
            await cancel(aio.parse("x", {"type": "object"}, **config))
            assert "Echo" in "".join([c async for c in aio.chat("after parse", **config)])

        asyncio.run(asyncio.wait_for(main(), 30))


# -- 2. process-wide caches are bounded ---------------------------------------------------------------


@pytest.mark.slow
def test_the_token_cache_keeps_a_bounded_number_of_keys() -> None:
    keys = [base64.b64encode(f"client-{i}:secret".encode()).decode() for i in range(TOKENS.max_keys + 40)]
    with Emulator(keys=keys) as emu:
        for key in keys:
            with Session(api_key=key, base_url=emu.base_url, auth_url=emu.auth_url) as session:
                session.models()
        assert len(TOKENS) == TOKENS.max_keys
        assert emu.ledger.oauth_calls(keys[-1]) == 1


def _live_ssl_contexts() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, ssl.SSLContext))


@pytest.mark.slow
def test_a_rewritten_ca_bundle_leaves_no_ssl_contexts_behind(tmp_path: Any) -> None:
    with Emulator(tls=True) as emu:
        bundle = tmp_path / "bundle.pem"
        assert emu.ca_bundle is not None
        shutil.copy(emu.ca_bundle, bundle)
        with Session(**{**emu.client_config(), "ca_bundle": str(bundle)}) as session:
            session.models()
            before = _live_ssl_contexts()
            for i in range(30):
                # The same CA, a different file version each time (a new size): a new context each time.
                bundle.write_bytes(open(emu.ca_bundle, "rb").read() + b"\n" * (i + 1))
                session.models()
            after = _live_ssl_contexts()
        # Only the pools the adapter keeps (4) hold contexts; every older one was let go.
        assert after - before <= 4, (before, after)


# -- 3. function-call argument fragments are joined once --------------------------------------------


@pytest.mark.slow
def test_sixteen_thousand_argument_fragments_are_joined_into_the_arguments() -> None:
    arguments = {"text": "x" * 16000}
    text = json.dumps(arguments)
    events = [{"choices": [{"delta": {"function_call": {"name": "f", "arguments": ""}}, "index": 0}], "model": "m"}]
    events += [{"choices": [{"delta": {"function_call": {"arguments": piece}}, "index": 0}], "model": "m"} for piece in text]
    events.append({"choices": [{"delta": {}, "index": 0, "finish_reason": "function_call"}], "model": "m"})
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(200, body, {"Content-Type": "text/event-stream"}))

    with RawServer(handler) as server:
        stream = gigachat_lite.chat("hi", **server.config())
        assert list(stream) == []
    assert stream.function_call == {"name": "f", "arguments": arguments}
    assert stream.finish_reason == "function_call"


# -- 4. a reply declaring or sending more than max_reply_size --------------------------------------------


def _huge_server(path_bodies: Dict[str, bytes]) -> RawServer:
    def handler(conn: socket.socket, request: Request) -> None:
        for path, body in path_bodies.items():
            if request.path.endswith(path):
                head = response(200, body, {"Content-Type": "application/json"})
                conn.sendall(head.replace(b"Content-Length: %d" % len(body), b"Content-Length: %d" % HUGE))
                return
        conn.sendall(_json_reply({"status": 404, "message": "no"}, 404))

    return RawServer(handler)


@pytest.mark.slow
@pytest.mark.parametrize("call", ["chat", "models", "file_content", "oauth"])
def test_a_declared_content_length_of_ten_to_the_fifteen_is_a_typed_error_at_once(call: str) -> None:
    with _huge_server({"/chat/completions": b"{}", "/models": b"{}", "/content": b"abc", "/oauth": b"{}"}) as server:
        config = server.config()
        if call == "oauth":
            config = {k: v for k, v in config.items() if k != "access_token"}
            config.update(api_key=KEY, auth_url=f"http://127.0.0.1:{server.port}/api/v2/oauth")
        with pytest.raises(InvalidResponseError, match=f"declares {HUGE} bytes"):
            if call == "chat":
                gigachat_lite.chat("hi", stream=False, **config)
            elif call == "file_content":
                gigachat_lite.file_content("file-1", **config)
            else:
                gigachat_lite.models(**config)


def test_an_endless_whole_reply_stops_at_max_reply_size() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(200, b"", {"Content-Type": "application/json"}, length=False))
        block = b" " * 65536
        try:
            for _ in range(10000):  # 640 MB, far more than the limit below
                conn.sendall(block)
        except OSError:
            pass  # the client closed the connection: what we want

    with RawServer(handler) as server:
        with pytest.raises(InvalidResponseError, match="more than 1048576 bytes"):
            gigachat_lite.models(**server.config(max_reply_size=1024 * 1024))


# -- 5. malformed whole replies are refused, never an empty success ------------------------------------


def _serve_whole(payload: Any) -> RawServer:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_json_reply(payload))

    return RawServer(handler)


@pytest.mark.slow
@pytest.mark.parametrize("content", [5, ["a"], {"text": "a"}, True])
def test_v1_content_that_is_not_text_is_an_invalid_response(content: Any) -> None:
    payload = {"choices": [{"message": {"role": "assistant", "content": content}, "index": 0, "finish_reason": "stop"}]}
    with _serve_whole(payload) as server:
        with pytest.raises(InvalidResponseError, match="not text"):
            gigachat_lite.chat("hi", stream=False, **server.config())


def test_v2_string_content_is_read_as_the_text() -> None:
    payload = {"model": "m", "messages": [{"role": "assistant", "content": "plain text"}], "finish_reason": "stop"}
    with _serve_whole(payload) as server:
        reply = gigachat_lite.chat("hi", stream=False, api_version="v2", **server.config())
    assert reply.text == "plain text" and str(reply) == "plain text"


@pytest.mark.slow
@pytest.mark.parametrize("content", [[{"text": 5}], 7, {"text": "a"}])
def test_a_v2_reply_with_text_that_is_not_a_string_is_an_invalid_response(content: Any) -> None:
    payload = {"model": "m", "messages": [{"role": "assistant", "content": content}], "finish_reason": "stop"}
    with _serve_whole(payload) as server:
        with pytest.raises(InvalidResponseError):
            gigachat_lite.chat("hi", stream=False, api_version="v2", **server.config())


def _serve_stream(body: bytes) -> RawServer:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(200, body, {"Content-Type": "text/event-stream"}))

    return RawServer(handler)


def _v2_event(payload: Any, name: str = "response.message.delta") -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"


@pytest.mark.slow
def test_a_streamed_v2_string_content_is_read_and_a_number_text_refused() -> None:
    done = _v2_event({"finish_reason": "stop", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}},
                     "response.message.done")
    good = _v2_event({"model": "m", "messages": [{"role": "assistant", "content": "as a string"}]}) + done
    with _serve_stream(good) as server:
        assert "".join(gigachat_lite.chat("hi", api_version="v2", **server.config())) == "as a string"
    bad = _v2_event({"model": "m", "messages": [{"role": "assistant", "content": [{"text": 12}]}]}) + done
    with _serve_stream(bad) as server:
        with pytest.raises(StreamError, match="text part"):
            list(gigachat_lite.chat("hi", api_version="v2", **server.config()))


def test_a_streamed_v1_content_that_is_not_text_is_a_stream_error() -> None:
    event = {"choices": [{"delta": {"content": 5}, "index": 0}], "model": "m"}
    body = sse_events(["first"], done=False, finish=False) + b"data: " + json.dumps(event).encode() + b"\n\n"
    with _serve_stream(body + sse_events([], done=True)) as server:
        received: List[str] = []
        with pytest.raises(StreamError, match="not text"):
            received.extend(gigachat_lite.chat("hi", **server.config()))
    assert received == ["first"]


# -- 6. a byte-order mark, and an error event without the usual fields ----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("split", [0, 1, 2, 3, 4], ids=lambda n: f"split-{n}")
def test_a_byte_order_mark_before_the_first_event_loses_nothing(split: int) -> None:
    body = b"\xef\xbb\xbf" + sse_events(["first", " second"])

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(200, b"", {"Content-Type": "text/event-stream"}, length=False))
        conn.sendall(body[:split])
        time.sleep(0.05)  # the mark arrives in pieces: it is still recognised
        conn.sendall(body[split:])

    with RawServer(handler) as server:
        assert list(gigachat_lite.chat("hi", **server.config())) == ["first", " second"]


@pytest.mark.slow
@pytest.mark.parametrize("data", [b'{"code": "overloaded"}', b'"just text"', b"not json at all"])
def test_an_error_event_is_raised_whatever_its_data(data: bytes) -> None:
    body = sse_events(["before"], done=False, finish=False) + b"event: error\ndata: " + data + b"\n\n" + sse_events(["after"])
    with _serve_stream(body) as server:
        received: List[str] = []
        with pytest.raises(APIError, match="error"):
            received.extend(gigachat_lite.chat("hi", **server.config()))
    assert received == ["before"]


# -- 7. the OAuth reply is checked before its token is used -------------------------------------------------


class _OAuthServer:
    """OAuth that answers ``reply``; the API records the Authorization headers it was sent."""

    def __init__(self, reply: Dict[str, Any]) -> None:
        self.reply = reply
        self.authorizations: List[str] = []
        self.server = RawServer(self._handle)

    def _handle(self, conn: socket.socket, request: Request) -> bool:
        if request.path.endswith("/oauth"):
            conn.sendall(response(200, json.dumps(self.reply, allow_nan=True).encode(), {"Content-Type": "application/json"}))
        else:
            self.authorizations.append(request.headers.get("authorization", ""))
            conn.sendall(_json_reply({"object": "list", "data": [{"id": "GigaChat", "object": "model"}]}))
        return True

    def config(self, **extra: Any) -> Dict[str, Any]:
        return {"api_key": KEY, "base_url": self.server.base_url, "max_retries": 0, "timeout": 5,
                "auth_url": f"http://127.0.0.1:{self.server.port}/api/v2/oauth", **extra}

    def __enter__(self) -> "_OAuthServer":
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)


_BAD_TOKEN = "secret-token-part\r\nX-Injected: yes"


@pytest.mark.slow
@pytest.mark.parametrize("token", [_BAD_TOKEN, "secret-token-part\r\n folded", "секрет-токен-значение", "tok en"],
                         ids=["crlf", "folded", "non-latin-1", "space"])
def test_a_token_that_cannot_be_a_header_is_an_authentication_error_that_never_shows_it(token: str) -> None:
    with _OAuthServer({"access_token": token, "expires_at": int(time.time() * 1000) + 1800000}) as oauth:
        with pytest.raises(AuthenticationError) as caught:
            gigachat_lite.models(**oauth.config())
    assert "secret-token-part" not in str(caught.value) and "секрет" not in str(caught.value)
    assert oauth.authorizations == []  # never sent


def _models_with(reply: Dict[str, Any], coordination: Optional[str]) -> Any:
    with _OAuthServer(reply) as oauth:
        extra = {"coordination": coordination} if coordination else {}
        try:
            gigachat_lite.models(**oauth.config(**extra))
        except AuthenticationError as exc:
            return ("AuthenticationError", "expires_at" in str(exc))
        finally:
            gigachat_lite.reset()
        return ("ok", oauth.authorizations == [f"Bearer {reply['access_token']}"])


@pytest.mark.slow
@pytest.mark.parametrize("expires_at", [float("nan"), float("inf"), -5, 0, 1e20], ids=["nan", "inf", "negative", "zero", "1e20"])
def test_absurd_expiries_behave_the_same_with_and_without_coordination(expires_at: float, tmp_path: Any,
                                                                       redis_server: RedisServer) -> None:
    reply = {"access_token": "a-valid-looking-token-0123456789", "expires_at": expires_at}
    stores = [None, "memory://", f"file://{tmp_path}", redis_server.url]
    outcomes = {store: _models_with(reply, store) for store in stores}
    expected = ("ok", True) if expires_at == 1e20 else ("AuthenticationError", True)
    assert set(outcomes.values()) == {expected}, outcomes


# -- 8. structured output: deep, recursive, not JSON -------------------------------------------------------


@dataclasses.dataclass
class Node:
    name: str
    children: List["Node"]


@dataclasses.dataclass
class Reading:
    value: float


def _reply_server(text: str) -> RawServer:
    payload = {"choices": [{"message": {"role": "assistant", "content": text}, "index": 0, "finish_reason": "stop"}]}
    return _serve_whole(payload)


def test_a_recursive_dataclass_describes_itself_and_parses() -> None:
    text = json.dumps({"name": "root", "children": [{"name": "leaf", "children": []}]})
    with _reply_server(text) as server:
        node = gigachat_lite.parse("tree", Node, **server.config())
        schema = json.loads(server.requests[-1].body)["response_format"]["schema"]
    assert node == Node("root", [Node("leaf", [])])
    assert schema["properties"]["children"]["items"] == {"$ref": "#"}


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["array", "dataclass", "defs"])
def test_replies_nested_a_hundred_thousand_deep_are_a_structured_output_error(shape: str) -> None:
    if shape == "array":
        text, response_format = "[" * 100000 + "]" * 100000, {"type": "array"}
    elif shape == "dataclass":
        text, response_format = '{"name": "a", "children": [' * 300 + '{"name": "z", "children": []}' + "]}" * 300, Node
    else:
        response_format = {"type": "object", "$defs": {"n": {"type": "object", "properties": {"c": {"$ref": "#/$defs/n"}}}},
                           "properties": {"c": {"$ref": "#/$defs/n"}}}
        text = '{"c": ' * 5000 + "{}" + "}" * 5000
    with _reply_server(text) as server:
        with pytest.raises(StructuredOutputError, match="nested"):
            gigachat_lite.parse("deep", response_format, **server.config())


@pytest.mark.slow
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    with _reply_server('{"value": %s}' % constant) as server:
        with pytest.raises(StructuredOutputError, match="not JSON"):
            gigachat_lite.parse("x", Reading, **server.config())


# -- 12. every id stays in its own path segment -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("call", ["model", "file", "delete_file", "file_content"])
@pytest.mark.parametrize("file_id", [".", ".."])
def test_dot_ids_are_refused_before_any_request(call: str, file_id: str) -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_json_reply({"id": "x"}))

    with RawServer(handler) as server:
        with pytest.raises(ValueError, match="not an id"):
            getattr(gigachat_lite, call)(file_id, **server.config())
        assert server.requests == []


def test_a_reply_naming_a_dot_dot_file_is_not_fetched_with_the_token() -> None:
    payload = {"model": "m", "finish_reason": "stop",
               "messages": [{"role": "assistant", "content": [{"text": "drew"}, {"files": [{"id": "..", "target": "image"}]}]}]}
    with _serve_whole(payload) as server:
        reply = gigachat_lite.chat("draw", stream=False, api_version="v2", **server.config())
        with pytest.raises(InvalidResponseError, match="not one"):
            reply.download()
        assert len(server.requests) == 1  # the chat only


# -- 13. a proxy password never reaches a message ----------------------------------------------------------


def test_a_407_that_echoes_the_proxy_password_does_not_show_it() -> None:
    password = "hunter2-proxy"

    def handler(conn: socket.socket, request: Request) -> None:  # a plain-HTTP proxy: the request comes whole
        echo = f"denied for {request.headers.get('proxy-authorization', '')} user:{password}".encode()
        conn.sendall(response(407, echo, {"Content-Type": "text/plain"}))

    with RawServer(handler) as proxy:
        config = {"access_token": TOKEN, "base_url": "http://gigachat.invalid/api/v1", "max_retries": 0, "timeout": 5,
                  "proxy": f"http://user:{password}@127.0.0.1:{proxy.port}"}
        with pytest.raises(APIError) as caught:
            gigachat_lite.models(**config)
    text = str(caught.value) + repr(caught.value) + caught.value.message
    assert password not in text and caught.value.status_code == 407


@pytest.mark.parametrize("url", ["memory://user:hunter2-store@host", "file://user:hunter2-store@remote/folder"])
def test_a_malformed_store_url_never_shows_its_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        gigachat_lite.Session(access_token=TOKEN, coordination=url)
    assert "hunter2-store" not in str(caught.value)


# -- 13. valid JSON past the parser's depth, numbers past floats, seconds past clocks -----------------------

DEEP = b"[" * 100000 + b"]" * 100000


def _raw_server(body: bytes, status: int = 200) -> RawServer:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(response(status, body, {"Content-Type": "application/json"}))

    return RawServer(handler)


@pytest.mark.parametrize("call, status, error", [
    ("chat", 200, InvalidResponseError), ("models", 200, InvalidResponseError), ("embeddings", 200, InvalidResponseError),
    ("chat", 400, APIError), ("oauth", 200, AuthenticationError),
])
def test_a_whole_reply_nested_past_the_parsers_depth_is_a_typed_error(call: str, status: int, error: type) -> None:
    with _raw_server(b'{"x": ' + DEEP + b"}", status) as server:
        config = server.config()
        if call == "oauth":
            config = {k: v for k, v in config.items() if k != "access_token"}
            config.update(api_key=KEY, auth_url=f"http://127.0.0.1:{server.port}/api/v2/oauth")
        with pytest.raises(error):
            if call == "embeddings":
                gigachat_lite.embeddings(["a"], **config)
            elif call == "models":
                gigachat_lite.models(**config)
            else:
                gigachat_lite.chat("hi", stream=False, **config)


def test_an_oauth_expiry_past_floats_is_an_authentication_error() -> None:
    body = b'{"access_token": "tok-0123456789", "expires_at": 1' + b"0" * 400 + b"}"
    with _raw_server(body) as server:
        config = {k: v for k, v in server.config().items() if k != "access_token"}
        config.update(api_key=KEY, auth_url=f"http://127.0.0.1:{server.port}/api/v2/oauth")
        with pytest.raises(AuthenticationError, match="no usable expires_at"):
            gigachat_lite.models(**config)


@pytest.mark.parametrize("setting, value, error, match", [
    ("timeout", 10**400, ValueError, "timeout must be a number of seconds"),
    ("deadline", 10**400, ValueError, "deadline must be a number of seconds"),
    ("timeout", 1e300, ValueError, r"timeout must be at most 1e\+09 seconds"),
    ("deadline", 1e10, ValueError, r"deadline must be at most 1e\+09 seconds"),
    ("first_byte_timeout", 1e300, ValueError, r"first_byte_timeout must be at most"),
    ("temperature", 10**400, TypeError, "temperature must be a finite number"),
], ids=["timeout-10**400", "deadline-10**400", "timeout-1e300", "deadline-1e10", "first_byte_timeout-1e300", "temperature-10**400"])
def test_numbers_past_what_clocks_and_floats_hold_are_refused_before_any_request(
    setting: str, value: Any, error: type, match: str
) -> None:
    with _raw_server(b"{}") as server:
        with pytest.raises(error, match=match):
            gigachat_lite.chat("hi", stream=False, **server.config(**{setting: value}))
        assert server.requests == []


def test_one_huge_deadline_does_not_stop_the_next_calls_deadlines() -> None:
    # The watchdog thread once died of an OverflowError on a wait past threading.TIMEOUT_MAX.
    with Emulator(delay=0.25, piece_size=2, reply="x " * 200) as emu:
        with pytest.raises(ValueError):
            gigachat_lite.chat("hi", deadline=1e300, **emu.client_config())
        stream = gigachat_lite.chat("hi", deadline=9.9e8, **emu.client_config())  # accepted, and armed
        next(iter(stream))
        stream.close()
        started = time.monotonic()
        with pytest.raises(StreamDeadlineExceeded):
            for _ in gigachat_lite.chat("hi", deadline=1.0, **emu.client_config()):
                pass
        assert time.monotonic() - started < 10  # the stream alone would take 25 s


@pytest.mark.parametrize("entry", [{"usage": "GigaChat"}, {"usage": ["x"], "value": 1}, {"usage": "GigaChat", "value": "many"}])
def test_a_balance_entry_of_the_wrong_shape_is_an_invalid_response(entry: Dict[str, Any]) -> None:
    with _raw_server(json.dumps({"balance": [{"usage": "embeddings", "value": 5}, entry]}).encode()) as server:
        with pytest.raises(InvalidResponseError, match="a balance entry is not"):
            gigachat_lite.balance(**server.config())


@pytest.mark.parametrize("openapi, reason", [
    ({"x": math.nan}, "Out of range float"), ({"x": {1, 2}}, "set is not JSON serializable"), ("deep", "nested too deeply"),
])
def test_an_openapi_dict_that_is_not_json_is_a_valueerror_naming_it(openapi: Any, reason: str) -> None:
    if openapi == "deep":
        openapi = {}
        for _ in range(100000):  # past every Python's limit (3.13's C encoder takes 5,000 levels)
            openapi = {"x": openapi}
    with _raw_server(b"{}") as server:
        with pytest.raises(ValueError, match=f"openapi is not a JSON document: .*{reason}"):
            gigachat_lite.functions_convert(openapi, **server.config())
        assert server.requests == []


def _deep(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_values_nested_past_repr_are_named_not_a_recursionerror() -> None:
    with _raw_server(b"{}") as server:
        with pytest.raises(ValueError, match=r"function_call must be .*, got a dict nested too deeply"):
            gigachat_lite.chat("hi", stream=False, function_call=_deep(100000), **server.config())
        with pytest.raises(TypeError, match=r"temperature must be a finite number, got \[\[\["):
            gigachat_lite.chat("hi", stream=False, temperature=[[[1]]], **server.config())
        deep_text = "[" * 100000 + "]" * 100000
        messages = [{"role": "user", "content": "hi"},
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": deep_text}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
        with pytest.raises(ValueError, match="arguments is not JSON"):
            GigaChat.create_completion("GigaChat", messages, stream=False, **server.config())
        assert server.requests == []


@pytest.mark.parametrize("keyword", ["parallel_tool_calls", "reasoning", "top_logprobs"])
def test_a_v2_keyword_passed_as_none_leaves_the_provider_on_v1(keyword: str) -> None:
    reply = {"choices": [{"message": {"role": "assistant", "content": "ok"}, "index": 0, "finish_reason": "stop"}]}
    with _serve_whole(reply) as server:
        text = "".join(GigaChat.create_completion("GigaChat", [{"role": "user", "content": "hi"}], stream=False,
                                                  **{keyword: None}, **server.config()))
        assert text == "ok" and server.requests[-1].path.startswith("/api/v1/")


# -- 14. parse(): the reply checked against the schema it was asked for, and built to its types -------------


@dataclasses.dataclass
class Cat:
    meow: str


@dataclasses.dataclass
class Dog:
    bark: int


@dataclasses.dataclass
class Shapes:
    pet: Union[Cat, Dog]
    pair: Tuple[int, str]
    pets: Optional[List[Cat]]
    by_name: Dict[str, Dog]


class Point(TypedDict):
    x: int


@dataclasses.dataclass
class Counts:
    scores: Dict[str, int]
    one: Literal[1]


def test_parse_builds_every_nested_dataclass_and_the_union_member_the_reply_fits() -> None:
    reply = {"pet": {"bark": 3}, "pair": [1, "a"], "pets": [{"meow": "m"}], "by_name": {"rex": {"bark": 1}}}
    with _reply_server(json.dumps(reply)) as server:
        shapes = gigachat_lite.parse("shapes", Shapes, **server.config())
        schema = json.loads(server.requests[-1].body)["response_format"]["schema"]
    assert shapes == Shapes(Dog(3), (1, "a"), [Cat("m")], {"rex": Dog(1)})
    assert schema["properties"]["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]


@pytest.mark.parametrize("reply, problem", [
    ({"scores": {"a": "not an int"}, "one": 1}, "reply.scores['a'] should be integer"),
    ({"scores": {}, "one": True}, "reply.one is True, not one of [1]"),
])
def test_parse_refuses_what_the_schema_does_not_allow(reply: Dict[str, Any], problem: str) -> None:
    with _reply_server(json.dumps(reply)) as server:
        with pytest.raises(StructuredOutputError, match=re.escape(problem)):
            gigachat_lite.parse("counts", Counts, **server.config())


def test_parse_refuses_a_key_a_typeddict_does_not_have() -> None:
    with _reply_server(json.dumps({"x": 1, "y": 2})) as server:
        with pytest.raises(StructuredOutputError, match="a key the schema does not allow: 'y'"):
            gigachat_lite.parse("point", Point, **server.config())


def _v2_reply_server(text: str) -> RawServer:  # the regex format is v2's
    return _serve_whole({"model": "GigaChat-3", "created_at": 1, "finish_reason": "stop",
                         "messages": [{"role": "assistant", "content": [{"text": text}]}]})


def test_parse_matches_a_regex_against_the_reply_as_it_came_first() -> None:
    with _v2_reply_server(" ab") as server:
        assert gigachat_lite.parse("x", {"type": "regex", "regex": " ab"}, **server.config()) == " ab"
    with _v2_reply_server("AB-12\n") as server:
        assert gigachat_lite.parse("x", {"type": "regex", "regex": "[A-Z]+-\\d+"}, **server.config()) == "AB-12"


def test_a_dataclass_whose_field_types_cannot_be_read_is_a_typeerror_naming_response_format() -> None:
    @dataclasses.dataclass
    class Outer:
        inner: "Missing"  # type: ignore[name-defined]  # noqa: F821

    with _reply_server("{}") as server:
        with pytest.raises(TypeError, match="response_format: cannot read the field types of Outer"):
            gigachat_lite.parse("x", Outer, **server.config())
        assert server.requests == []

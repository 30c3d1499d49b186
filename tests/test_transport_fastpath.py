"""The small-call shortcuts (request_template.py, tls_context.py) change nothing a caller can see.

Each scenario runs twice against the same kind of raw server: once with the
templates (``session._templates``) and once without, where every call goes
through requests' ``Session.request``. What the server received (request line,
headers in order, body) and what the caller saw (hooks, cookies, adapters,
errors) must be equal; a separate check proves the fast runs really took the
shortcut, so the comparison cannot pass by both runs going the slow way.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import pickle
import re
import socket
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

import certifi
import pytest
import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

import gigachat_lite
from gigachat_lite import Session, TLSError
from gigachat_lite.emulator import Emulator
from gigachat_lite.one_write import POOL_CLASSES
from gigachat_lite.tls_context import SharedContextAdapter

from hostile_servers import TOKEN, RawServer, Request, chunked, compress, response

REPLY = json.dumps({
    "choices": [{"message": {"role": "assistant", "content": "ok"}, "index": 0, "finish_reason": "stop"}],
    "created": 1, "model": "GigaChat", "object": "chat.completion",
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, "data": [{"id": "GigaChat"}],
}).encode()
_PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class Server(RawServer):
    """Answers OAuth with token-1, token-2, ...; other requests with the next planned reply or REPLY."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.plan: List[bytes] = []
        self.tokens = 0

    def _answer(self, conn: socket.socket, request: Request) -> bool:
        if request.path.endswith("/oauth"):
            self.tokens += 1
            body = json.dumps({"access_token": f"token-{self.tokens}", "expires_at": 4102444800000}).encode()
            conn.sendall(response(200, body, {"Content-Type": "application/json"}))
        else:
            conn.sendall(self.plan.pop(0) if self.plan else response(200, REPLY, {"Content-Type": "application/json"}))
        return True

    def seen(self) -> List[Tuple[str, ...]]:
        """Each request as (request line, header lines in order..., body), the OAuth RqUID masked."""
        return [
            (r.line, *(line if not line.lower().startswith("rquid:") else "RqUID: *" for line in r.head.split("\r\n")[1:]), r.body.decode())
            for r in self.requests
        ]


Scenario = Callable[[Session, Server, List[Any]], None]


def run(scenario: Scenario, fast: bool, monkeypatch: pytest.MonkeyPatch, **config: Any) -> Tuple[List[Any], List[Tuple[str, ...]], int]:
    """(what the caller saw, what the server got, how many requests requests' prepare() built)."""
    gigachat_lite.reset()
    prepared: List[int] = []
    original = PreparedRequest.prepare

    def counting(self: PreparedRequest, *args: Any, **kwargs: Any) -> None:
        prepared.append(1)
        original(self, *args, **kwargs)

    with Server() as server, monkeypatch.context() as patch:
        patch.setattr(PreparedRequest, "prepare", counting)
        settings: Dict[str, Any] = server.config(**config)
        if "api_key" in config:
            settings.pop("access_token")
            settings["auth_url"] = f"http://127.0.0.1:{server.port}/api/v2/oauth"
        with Session(**settings) as session:
            if not fast:
                session._templates = None
            seen: List[Any] = []
            scenario(session, server, seen)
        return seen, server.seen(), len(prepared)


def same(scenario: Scenario, monkeypatch: pytest.MonkeyPatch, **config: Any) -> Tuple[List[Any], List[Tuple[str, ...]], int]:
    fast = run(scenario, True, monkeypatch, **config)
    slow = run(scenario, False, monkeypatch, **config)
    assert _portless(fast[0]) == _portless(slow[0])
    assert _portless(fast[1]) == _portless(slow[1])
    assert slow[2] > 0
    return fast


def _portless(found: Any) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", repr(found))


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def chat_text(session: Session, text: str = "hi") -> str:
    return session.chat(text, stream=False).text


def test_plain_calls_are_sent_byte_for_byte_as_requests_sends_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        seen.append(chat_text(s, "Привет"))
        seen.append(chat_text(s, "again"))
        seen.append(s.models())
        s.call("POST", "/files/abc/delete", headers={"Accept": "application/json"})  # POST, no body: Content-Length 0
        response = s.call("POST", "/tokens/count", json={"input": ["x"]}, headers={"Accept": "application/json"})
        seen.append((response.status_code, response.reason, response.url, dict(response.headers), response.encoding, response.text))
        seen.append((response.request.method, response.request.url, dict(response.request.headers), response.request.body))
        seen.append((len(response.history), dict(response.cookies), response.elapsed.total_seconds() >= 0))

    seen, requests_seen, prepared = same(scenario, monkeypatch)
    assert prepared == 0  # every call above was copied from a template
    assert len(requests_seen) == 5 and seen[0] == "ok"
    assert any(line == f"Authorization: Bearer {TOKEN}" for line in requests_seen[0])
    assert "Content-Length: 0" in requests_seen[3]


def test_session_headers_changed_between_calls_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        chat_text(s)
        s.headers["X-Trace"] = "one"
        chat_text(s)
        s.headers["x-trace"] = "two"  # same name, new case and value
        chat_text(s)
        del s.headers["X-Trace"]
        s.headers["Accept-Encoding"] = None  # type: ignore[assignment]  # requests drops None-valued session headers
        chat_text(s)

    _, requests_seen, prepared = same(scenario, monkeypatch)
    assert prepared == 0
    assert "X-Trace: one" in requests_seen[1] and "x-trace: two" in requests_seen[2]
    assert not any(line.lower().startswith(("x-trace", "accept-encoding: gzip")) for line in requests_seen[3])


def test_session_hooks_and_a_replaced_auth_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        def hook(response: requests.Response, **kwargs: Any) -> None:
            seen.append(("hook", response.status_code, response.request.headers.get("Authorization"), sorted(kwargs)))

        chat_text(s)
        s.hooks["response"].append(hook)
        chat_text(s)
        s.hooks = {"response": hook}  # type: ignore[dict-item]  # a single callable is allowed too
        chat_text(s)

        def custom(request: PreparedRequest) -> PreparedRequest:
            request.headers["Authorization"] = "Custom abc"
            return request

        s.auth = custom
        chat_text(s)

    seen, requests_seen, prepared = same(scenario, monkeypatch)
    assert prepared == 0
    assert [entry[0] for entry in seen] == ["hook"] * 3
    assert "Authorization: Custom abc" in requests_seen[3]


def test_cookies_set_by_a_reply_are_sent_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        headers = {"Content-Type": "application/json", "Set-Cookie": "route=b7; Path=/"}
        server.plan.append(response(200, REPLY, headers))
        r = s.call("POST", "/chat/completions", json={"model": "GigaChat", "messages": []})
        seen.append((dict(r.cookies), dict(s.cookies)))
        chat_text(s)
        s.cookies.clear()
        chat_text(s)

    _, requests_seen, prepared = same(scenario, monkeypatch)
    assert "Cookie: route=b7" in requests_seen[1]
    assert not any(line.startswith("Cookie") for line in requests_seen[2])
    assert prepared == 1  # only the call with a cookie to send was prepared by requests


def test_redirects_are_followed_as_requests_follows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        server.plan.append(response(307, b"", {"Location": "/api/v1/elsewhere", "Set-Cookie": "hop=1"}))
        r = s.call("POST", "/chat/completions", json={"model": "GigaChat", "messages": []})
        seen.append((r.url, [h.status_code for h in r.history], r.request.body, dict(s.cookies)))
        server.plan.append(response(303, b"", {"Location": "/api/v1/other"}))
        r = s.call("POST", "/chat/completions", json={"model": "GigaChat", "messages": []})
        seen.append((r.url, r.request.method, r.request.body))

    seen, requests_seen, prepared = same(scenario, monkeypatch)
    assert prepared == 1  # the second call: the first reply's cookie is in the session now
    assert [line[0] for line in requests_seen] == [
        "POST /api/v1/chat/completions HTTP/1.1", "POST /api/v1/elsewhere HTTP/1.1",
        "POST /api/v1/chat/completions HTTP/1.1", "GET /api/v1/other HTTP/1.1",
    ]
    assert seen[0][1:] == ([307], b'{"model":"GigaChat","messages":[]}', {"hop": "1"})


def test_a_401_is_answered_once_with_a_fresh_token(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        chat_text(s)
        server.plan.append(response(401, b'{"status": 401, "message": "Token has expired"}', {"Content-Type": "application/json"}))
        r = s.call("POST", "/chat/completions", json={"model": "GigaChat", "messages": []})
        seen.append((r.status_code, len(r.history), r.history[0].status_code, r.request.headers["Authorization"]))
        seen.append(server.tokens)

    seen, requests_seen, _ = same(scenario, monkeypatch, api_key="a2V5OnNlY3JldA==")
    assert seen == [(200, 1, 401, "Bearer token-2"), 2]
    assert [line[0].split(" ")[1].rsplit("/", 1)[-1] for line in requests_seen] == ["oauth", "completions", "completions", "oauth", "completions"]


def test_a_mounted_adapter_of_the_users_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        class Recording(HTTPAdapter):
            def send(self, request: PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
                seen.append(("user adapter", request.url, sorted(kwargs)))
                return super().send(request, **kwargs)

        chat_text(s)
        s.mount(f"http://127.0.0.1:{server.port}/", Recording())
        chat_text(s)

    seen, requests_seen, prepared = same(scenario, monkeypatch)
    assert prepared == 0 and len(seen) == 1 and len(requests_seen) == 2


def test_proxy_variables_changed_between_calls_are_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario(s: Session, server: Server, seen: List[Any]) -> None:
        with Server() as proxy:
            chat_text(s)
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
            chat_text(s)
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            chat_text(s)
            monkeypatch.delenv("NO_PROXY")
            chat_text(s)
            monkeypatch.delenv("HTTP_PROXY")
            seen.append([r.line for r in proxy.requests])

    seen, requests_seen, prepared = same(scenario, monkeypatch)
    assert prepared == 0 and len(requests_seen) == 2  # direct, proxied, direct, proxied
    assert len(seen[0]) == 2 and all(line.startswith("POST http://127.0.0.1:") for line in seen[0])


def test_a_subclass_that_prepares_requests_its_own_way_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[str] = []

    class Tagging(Session):
        def prepare_request(self, request: requests.Request) -> PreparedRequest:
            calls.append(str(request.url))
            prepared = super().prepare_request(request)
            prepared.headers["X-Tag"] = "mine"
            return prepared

    with Server() as server:
        with Tagging(**server.config()) as session:
            chat_text(session)
            chat_text(session)
    assert len(calls) == 2 and all("X-Tag: mine" in r.head for r in server.requests)


# -- the pool lookup cache, over TLS -------------------------------------------------------------

@pytest.mark.gigachat_emulator(tls=True)
def test_a_changed_verify_never_reuses_a_verified_pool(emu: Emulator) -> None:
    with Session(**emu.client_config()) as s:
        assert s.chat("hi", stream=False).text
        good = s.verify
        s.verify = certifi.where()  # does not hold the emulator's CA: a reused connection would hide that
        with pytest.raises(TLSError):
            s.chat("hi", stream=False)
        s.verify = good
        assert s.chat("hi", stream=False).text


@pytest.mark.gigachat_emulator(tls=True)
def test_a_rewritten_bundle_gets_a_new_pool_and_a_deleted_one_fails(emu: Emulator, tmp_path: Any) -> None:
    assert emu.ca_bundle is not None
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(open(emu.ca_bundle, "rb").read())
    with Session(**dict(emu.client_config(), ca_bundle=str(bundle))) as s:
        adapter = s.get_adapter(emu.base_url)
        assert isinstance(adapter, SharedContextAdapter)
        request = s.call("GET", "/models").request
        first = adapter.get_connection_with_tls_context(request, s.verify, {}, None)
        assert adapter.get_connection_with_tls_context(request, s.verify, {}, None) is first
        bundle.write_bytes(bundle.read_bytes() + b"\n")  # same CA, a new version of the file
        assert s.models()
        second = adapter.get_connection_with_tls_context(request, s.verify, {}, None)
        assert second is not first
        assert second.conn_kw["ssl_context"] is not first.conn_kw["ssl_context"]
        os.remove(bundle)
        with pytest.raises(OSError):
            adapter.get_connection_with_tls_context(request, s.verify, {}, None)


@pytest.mark.gigachat_emulator(tls=True)
def test_the_remembered_pool_follows_the_pool_managers_evictions(emu: Emulator) -> None:
    with Session(**emu.client_config()) as s:
        adapter = s.get_adapter(emu.base_url)
        request = s.call("GET", "/models").request
        first = adapter.get_connection_with_tls_context(request, s.verify, {}, None)
        adapter.poolmanager.clear()  # what an eviction or Session.close() does: the pool manager forgets it
        again = adapter.get_connection_with_tls_context(request, s.verify, {}, None)
        assert again is not first and len(adapter.poolmanager.pools) == 1
        assert s.models()


@pytest.mark.gigachat_emulator(tls=True)
def test_an_unpickled_adapter_still_sends(emu: Emulator) -> None:
    with Session(**emu.client_config()) as s:
        s.mount("https://", pickle.loads(pickle.dumps(s.get_adapter(emu.base_url))))
        assert s.chat("hi", stream=False).text


def test_request_url_is_remembered_per_url_and_proxies() -> None:
    adapter = SharedContextAdapter()
    request = requests.Request("POST", "http://127.0.0.1:1/api/v1/chat?x=1").prepare()
    assert adapter.request_url(request, {}) == "/api/v1/chat?x=1"
    assert adapter.request_url(request, {"http": "http://proxy:3128"}) == "http://127.0.0.1:1/api/v1/chat?x=1"
    assert adapter.request_url(request, {}) == "/api/v1/chat?x=1"


# -- the adapter's responses against requests' own HTTPAdapter ---------------------------------

_BODY = "Привет, ok".encode() * 500
_REPLIES = {
    "length": response(200, _BODY, {"Content-Type": "application/json"}),
    "empty": response(200, b"", {"Content-Type": "text/plain"}),
    "no content": b"HTTP/1.1 204 X\r\n\r\n",
    "chunked": b"HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked([_BODY[:700], _BODY[700:]]),
    "gzip": response(200, compress(_BODY, "gzip"), {"Content-Encoding": "gzip", "Content-Type": "application/json; charset=utf-8"}),
    "cookies": response(200, b"{}", {"Set-Cookie": "a=1; Path=/", "set-cookie": "b=2; Path=/api", "Content-Type": "application/json"}),
    "short": response(200, b"", {"Content-Length": "100"}, length=False).replace(b"Connection: close\r\n", b"") + b"only part",
    "bad gzip": response(200, b"not gzip at all", {"Content-Encoding": "gzip"}),
    "bad chunk": b"HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
}


def _outcome(adapter: HTTPAdapter, reply: bytes, stream: bool, hook_reads: bool) -> Any:
    def answer(conn: socket.socket, request: Request) -> bool:
        conn.sendall(reply)
        conn.shutdown(socket.SHUT_WR)  # a cut reply ends here rather than waiting for the timeout
        return False

    with RawServer(answer) as server, requests.Session() as session:
        session.mount("http://", adapter)
        peeked: List[bytes] = []
        if hook_reads:
            session.hooks["response"].append(lambda r, **kw: peeked.append(r.raw.read(5)))
        try:
            r = session.get(f"http://127.0.0.1:{server.port}/x", stream=stream, timeout=5)
            content = r.content
        except requests.RequestException as exc:
            return type(exc).__name__, peeked
        return (r.status_code, r.reason, dict(r.headers), r.encoding, content, r.text, r.cookies.get_dict(),
                session.cookies.get_dict(), type(r.raw).__name__, peeked, r.content is content)


@pytest.mark.parametrize("name", sorted(_REPLIES))
@pytest.mark.parametrize("stream", [False, True])
def test_the_adapters_responses_read_as_requests_reads_them(name: str, stream: bool) -> None:
    ours = _outcome(SharedContextAdapter(max_retries=0), _REPLIES[name], stream, hook_reads=False)
    theirs = _outcome(HTTPAdapter(max_retries=0), _REPLIES[name], stream, hook_reads=False)
    assert ours == theirs
    if name in ("length", "gzip", "chunked"):
        assert ours[4] == _BODY
    if name == "cookies":
        assert ours[6] == {"a": "1", "b": "2"}


def test_a_hook_that_reads_the_raw_body_sees_it_as_with_requests() -> None:
    ours = _outcome(SharedContextAdapter(max_retries=0), _REPLIES["length"], False, hook_reads=True)
    assert ours == _outcome(HTTPAdapter(max_retries=0), _REPLIES["length"], False, hook_reads=True)
    assert ours[9] == [_BODY[:5]] and ours[4] == _BODY[5:]


# -- one write for a small body (one_write.py) ----------------------------------------------------

_BODIES: Dict[str, Any] = {
    "small bytes": b'{"model":"GigaChat"}',
    "large bytes": b"x" * (70 * 1024),
    "text": "Привет",
    "form": {"scope": "GIGACHAT_API_PERS"},
    "file": None,  # a fresh file object per run, below
    "none": None,
}


def _sent(adapter: HTTPAdapter, name: str, method: str, monkeypatch: pytest.MonkeyPatch) -> Tuple[Any, List[int]]:
    writes: List[int] = []
    original = http.client.HTTPConnection.send

    def counting(self: http.client.HTTPConnection, data: Any) -> None:
        writes.append(len(data))
        original(self, data)

    def answer(conn: socket.socket, request: Request) -> bool:
        conn.sendall(response(200, b"{}"))
        return True

    body = io.BytesIO(b"from a file") if name == "file" else _BODIES[name]
    with RawServer(answer) as server, requests.Session() as session, monkeypatch.context() as patch:
        patch.setattr(http.client.HTTPConnection, "send", counting)
        session.mount("http://", adapter)
        assert session.request(method, f"http://127.0.0.1:{server.port}/x", data=body, timeout=5).status_code == 200
        got = [(r.line, r.head.split("\r\n")[1:], r.body) for r in server.requests]
    return got, writes


@pytest.mark.parametrize("name", sorted(_BODIES))
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_server_receives_the_same_bytes_as_from_requests_adapter(name: str, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ours, our_writes = _sent(SharedContextAdapter(max_retries=0), name, method, monkeypatch)
    theirs, their_writes = _sent(HTTPAdapter(max_retries=0), name, method, monkeypatch)
    assert _portless(ours) == _portless(theirs)
    assert sum(our_writes) == sum(their_writes)
    if name in ("small bytes", "text", "form"):
        assert (len(our_writes), len(their_writes)) == (1, 2)  # head and body in one write: the shortcut ran
    else:
        assert our_writes == their_writes


@pytest.mark.parametrize("headers", [{"content-length": "3"}, {"X-Other": "1"}])
def test_one_write_with_plain_dict_headers_from_urllib3(headers: Dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    writes: List[bytes] = []
    original = http.client.HTTPConnection.send
    monkeypatch.setattr(http.client.HTTPConnection, "send", lambda self, data: (writes.append(bytes(data)), original(self, data))[1])

    def answer(conn: socket.socket, request: Request) -> bool:
        conn.sendall(response(200, request.body))
        return True

    with RawServer(answer) as server:
        pool = POOL_CLASSES["http"]("127.0.0.1", server.port)
        assert pool.urlopen("POST", "/x", body=b"abc", headers=headers).data == b"abc"
        pool.close()
    # A declared length: head and body together; none: urllib3 adds the length and sends the body apart.
    assert len(writes) == (1 if "content-length" in headers else 2) and writes[-1].endswith(b"abc")

"""Misbehaving HTTP servers on raw sockets (127.0.0.1), for tests/test_hostile.py and scripts/reliability.py.

``RawServer(handler)`` accepts connections and, for each request it reads
(head and Content-Length body), calls ``handler(conn, request)`` which writes
whatever bytes it likes (trickled, compressed, cut, oversized, ...). A handler
returns True to keep the connection for another request. Every socket has a
timeout, and the server stops with its ``with`` block. ``accepted`` counts the
connections it took (keep-alive reuse shows as fewer connections than
requests) and ``hangups`` those the client closed while the server waited for
its next request.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from typing import Any, Callable, Dict, Iterable, List, Optional

import gigachat_lite
from gigachat_lite.errors import GigaChatError

from reliability_support import Hang, guarded, wake_accept

TOKEN = "hostile-test-access-token-0123456789"  # a fake token, long enough to be scrubbed


class Request:
    def __init__(self, head: bytes, body: bytes) -> None:
        self.head = head.decode("latin-1")
        self.line = self.head.split("\r\n", 1)[0]
        self.path = self.line.split(" ")[1] if " " in self.line else ""
        self.body = body
        self.headers: Dict[str, str] = {}
        for line in self.head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()


Handler = Callable[[socket.socket, Request], Optional[bool]]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: List[Request] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._conns: List[socket.socket] = []
        self._count = threading.Lock()
        self.accepted = 0
        self.hangups = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def config(self, **extra: Any) -> Dict[str, Any]:
        """Client keywords: this server, a fixed access token (no OAuth), no retries, short timeouts."""
        config: Dict[str, Any] = {"base_url": self.base_url, "access_token": TOKEN, "max_retries": 0, "timeout": 5}
        config.update(extra)
        return config

    def __enter__(self) -> "RawServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        wake_accept(self.port)  # not a fifth of a second per server (hundreds of servers)
        self._thread.join(5)
        self._sock.close()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv() or sendall()
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            if self._stop.is_set():
                conn.close()
                break
            self._conns.append(conn)
            with self._count:
                self.accepted += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in data:
                    try:
                        more = conn.recv(65536)
                    except ConnectionError:  # a reset: closed with our reply unread
                        more = b""
                    if not more:
                        with self._count:
                            self.hangups += 1
                        return
                    data += more
                head, _, data = data.partition(b"\r\n\r\n")
                request = Request(head, b"")
                length = int(request.headers.get("content-length", "0") or 0)
                while len(data) < length:
                    more = conn.recv(65536)
                    if not more:
                        return
                    data += more
                request.body, data = data[:length], data[length:]
                self.requests.append(request)
                if not self.handler(conn, request):
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


def response(status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None, *, length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if length:
        lines.append(f"Content-Length: {len(body)}")
    else:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def sse_events(texts: Iterable[str], *, done: bool = True, finish: bool = True) -> bytes:
    """A v1 chat stream carrying ``texts``, ending with a finish reason and [DONE] unless told not to."""
    out = []
    for index, text in enumerate(texts):
        delta: Dict[str, Any] = {"content": text}
        if index == 0:
            delta["role"] = "assistant"
        chunk = {"choices": [{"delta": delta, "index": 0}], "model": "GigaChat", "created": 1, "object": "chat.completion"}
        out.append(b"data: " + json.dumps(chunk, ensure_ascii=False).encode("utf-8") + b"\n\n")
    if finish:
        last = {"choices": [{"delta": {}, "index": 0, "finish_reason": "stop"}], "model": "GigaChat", "created": 1,
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        out.append(b"data: " + json.dumps(last).encode() + b"\n\n")
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


def chunked(pieces: Iterable[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def trickle(conn: socket.socket, data: bytes, every: float, size: int = 1) -> None:
    """Send ``data`` ``size`` bytes at a time, one piece every ``every`` seconds (until the client hangs up)."""
    for at in range(0, len(data), size):
        conn.sendall(data[at : at + size])
        time.sleep(every)


class Outcome:
    """How one hostile stream ended: ``kind`` is "complete", "typed" (a GigaChatError) or "hang"."""

    def __init__(self, kind: str, received: List[str], error: Optional[BaseException], elapsed: float) -> None:
        self.kind, self.received, self.error, self.elapsed = kind, received, error, elapsed


def stream_case(texts: List[str], mangle: str, cut_at: int, garbage: bytes, encoding: str, framing: str,
                cuts: List[int], *, deadline: float = 5.0, guard: float = 10.0) -> Outcome:
    """Serve one stream (``texts`` whole, "truncated", "wire cut" or "garbage"; compressed; framed; split at ``cuts``)."""
    whole = sse_events(texts)
    body = {"whole": whole, "truncated": whole[: cut_at % (len(whole) + 1)], "wire cut": whole, "garbage": garbage}[mangle]
    wire = compress(body, encoding)
    if mangle == "wire cut":  # the compressed bytes themselves cut short
        wire = wire[: cut_at % (len(wire) + 1)]
    pieces, at = [], 0
    for cut in sorted(c % (len(wire) + 1) for c in cuts) + [len(wire)]:
        pieces.append(wire[at:cut])
        at = max(at, cut)

    def handler(conn: socket.socket, request: Request) -> None:
        headers = {"Content-Type": "text/event-stream", "Content-Encoding": encoding}
        if framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
            conn.sendall(response(200, b"", headers, length=False).replace(b"Connection: close\r\n", b""))
            for piece in pieces:
                if piece:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            if mangle not in ("truncated", "wire cut"):
                conn.sendall(b"0\r\n\r\n")
        else:
            conn.sendall(response(200, b"", headers, length=False) if framing == "close" else
                         response(200, wire, headers)[: len(response(200, wire, headers)) - len(wire)])
            for piece in pieces:
                conn.sendall(piece)

    received: List[str] = []
    started = time.monotonic()
    with RawServer(handler) as server:
        try:
            stream = gigachat_lite.chat("hi", **server.config(deadline=deadline, timeout=3))
            guarded(lambda: received.extend(stream), timeout=guard)
        except Hang as exc:
            return Outcome("hang", received, exc, time.monotonic() - started)
        except GigaChatError as exc:
            return Outcome("typed", received, exc, time.monotonic() - started)
        if stream.finish_reason is None:
            return Outcome("shortened", received, None, time.monotonic() - started)
        if mangle != "garbage" and "".join(received) != "".join(texts):
            return Outcome("shortened", received, None, time.monotonic() - started)
    return Outcome("complete", received, None, time.monotonic() - started)

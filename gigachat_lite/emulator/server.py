"""HTTP/1.1 transport: a threaded server whose open connections ``close_all()`` can cut.

Each accepted connection gets its own daemon thread, which also does the TLS
handshake, so one slow or broken client never blocks ``accept``. Sockets are tracked
so that stopping the emulator wakes threads stuck in a read, a write or a stall.
"""

import logging
import socket
import ssl
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List, Optional, Set, Tuple
from urllib.parse import urlsplit

from . import replies
from .endpoints import Reply, fault_reply, phrase, route
from .faults import Fault

log = logging.getLogger("gigachat_lite.emulator")

MAX_BODY = 16 * 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0
# Frees threads held by clients that vanished without closing; stop() does not wait for it.
IDLE_TIMEOUT = 120.0
HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


class _Abort(Exception):
    """Drop the connection now; ``reset`` makes the close an RST instead of a FIN."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__("connection dropped on purpose")
        self.reset = reset


def _rst(sock: socket.socket) -> None:
    # Linger on with a zero timeout turns close() into a TCP reset.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


class EmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP(S) server bound to one ``Emulator`` (``self.emulator``)."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops SYNs when many clients connect at
    # once, and each dropped one waits a full second for the TCP retransmit.
    request_queue_size = 512

    def __init__(self, address: Tuple[str, int], emulator: Any, ssl_context: Optional[ssl.SSLContext]):
        self.emulator = emulator
        self.ssl_context = ssl_context
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: Set[socket.socket] = set()
        self._workers: Set[threading.Thread] = set()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a tracked daemon thread."""
        # The handler writes headers and body separately; with Nagle's algorithm
        # against the client's delayed ACK every small reply would wait 40 ms.
        # Real front ends (nginx's tcp_nodelay is on by default) do not.
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        worker = threading.Thread(
            target=self._serve, args=(request, client_address), name="gigachat-emulator", daemon=True
        )
        with self._lock:
            self._workers.add(worker)
        worker.start()

    def _serve(self, sock: socket.socket, address: Any) -> None:
        self._swap(None, sock)
        reset = False
        try:
            if self.ssl_context is not None:
                sock.settimeout(HANDSHAKE_TIMEOUT)
                tls = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                self._swap(sock, tls)  # wrap_socket detached the plain socket object
                sock = tls
                tls.do_handshake()
            self.finish_request(sock, address)
        except _Abort as abort:
            reset = abort.reset
        except Exception as exc:  # client went away, bad handshake, ...: its own problem
            log.debug("connection from %s ended: %r", address[0], exc)
        finally:
            self._swap(sock, None)
            if reset:
                _rst(sock)
            else:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            sock.close()
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _swap(self, old: Optional[socket.socket], new: Optional[socket.socket]) -> None:
        with self._lock:
            if old is not None:
                self._sockets.discard(old)
            if new is not None:
                self._sockets.add(new)
                if self.stopping.is_set():
                    _shutdown(new)

    def close_all(self) -> None:
        """Wake every connection thread by shutting its socket down."""
        self.stopping.set()
        with self._lock:
            for sock in self._sockets:
                _shutdown(sock)

    def join_workers(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds in total for connection threads to finish."""
        deadline = time.monotonic() + timeout
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep stderr quiet: a misbehaving client is expected in fault tests."""
        log.debug("error serving %s", client_address, exc_info=True)


def _shutdown(sock: socket.socket) -> None:
    # The plain socket method: SSLSocket.shutdown would also drop its SSL object under
    # the feet of the thread reading from it.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Handler(BaseHTTPRequestHandler):
    """GigaChat wire protocol over HTTP/1.1 keep-alive."""

    protocol_version = "HTTP/1.1"
    server_version = "gigachat-lite-emulator"
    timeout = IDLE_TIMEOUT
    server: EmulatorServer

    def version_string(self) -> str:
        """The ``Server`` header: no Python version, it is noise in recorded traffic."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        """Route the access log to ``logging`` (request lines hold no secrets)."""
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        """Every method goes through one dispatcher (405s are decided there)."""
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _handle(self) -> None:
        emulator = self.server.emulator
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        emulator._record(self.command, self.path, path, self.headers, body)
        fault = emulator._faults.take(path, streaming=False)
        if fault is not None and self._pre_fault(fault, path):
            return
        reply = route(emulator, self.command, path, self.headers, body)
        if reply.events is None:
            self._send(reply)
        else:
            self._stream(reply.events, emulator._faults.take(path, streaming=True))

    def _read_body(self) -> Optional[bytes]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
            if size < 0:
                raise ValueError(length)
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return None
        if size > MAX_BODY:
            self.send_error(413, "Payload Too Large")
            return None
        return self.rfile.read(size)

    def _read_chunked(self) -> Optional[bytes]:
        parts: List[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.send_error(400, "Bad chunk size")
                return None
            total += size
            if total > MAX_BODY:
                self.send_error(413, "Payload Too Large")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers carry nothing we use
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _ids(self) -> None:
        self.send_header("X-Request-Id", str(uuid.uuid4()))
        self.send_header("X-Session-Id", self.headers.get("X-Session-ID") or str(uuid.uuid4()))

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self._ids()
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """JSON instead of the stdlib HTML page, and close: the stream may be out of sync."""
        self.close_connection = True
        text = message or phrase(code)
        body = b"" if self.command == "HEAD" else replies.api_error(code, text)
        self.send_response(code, message)
        self.send_header("Content-Type", replies.JSON_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.server.stopping.wait(seconds):
            raise _Abort()

    def _pre_fault(self, fault: Fault, path: str) -> bool:
        """Apply a whole-response fault; False when only a stall was asked for."""
        if fault.stall is not None:
            self._wait(fault.stall)
        if fault.reset:
            raise _Abort(reset=True)
        if fault.status is not None or fault.unauthorized:
            reply = fault_reply(path, fault.status or 401, fault.message)
            if fault.retry_after is not None:
                reply.headers += (("Retry-After", fault.retry_after),)
            self._send(reply)
        elif fault.content_type is not None:
            self._send(Reply(200, HTML_PAGE, fault.content_type))
        elif fault.empty_body:
            self._send(Reply(200, b""))
        else:
            return False
        return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _stream(self, events: List[bytes], fault: Optional[Fault]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", replies.SSE_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        self._ids()
        self.end_headers()
        events = events + [replies.DONE_EVENT]
        delay = self.server.emulator.delay
        for number in range(len(events) + 1):
            if fault is not None and self._stream_fault(fault, number, len(events)):
                break
            if number == len(events):
                break
            if number and delay:
                self._wait(delay)
            self._chunk(events[number])
        self.wfile.write(b"0\r\n\r\n")

    def _stream_fault(self, fault: Fault, number: int, total: int) -> bool:
        """Act at event ``number``; True ends the body here (cleanly)."""
        if fault.stall is not None and number == min(fault.after or 0, total):
            self._wait(fault.stall)
        if fault.cut_after is not None and number == min(fault.cut_after, total):
            raise _Abort()
        if fault.malformed_after is not None and number == min(fault.malformed_after, total):
            self._chunk(replies.MALFORMED_EVENT)
        if fault.stream_error_after is not None and number == min(fault.stream_error_after, total):
            status = fault.status or 500
            message = fault.message or phrase(status)
            self._chunk(replies.sse_event({"status": status, "message": message}))
            return True
        return False

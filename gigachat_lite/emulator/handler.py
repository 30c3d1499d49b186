"""One HTTP/1.1 exchange: read the request, route it, apply injected faults, write the reply.

Streams are written with chunked encoding, one chunk an event, so stream faults can
cut, stall or corrupt them at an exact event.
"""

import logging
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, List, Optional
from urllib.parse import urlsplit

from .faults import Fault
from .replies import MALFORMED_EVENT
from .routes import fault_reply, limit_reply, route
from .wire import JSON_TYPE, SSE_TYPE, Reply, api_error, phrase, sse_event

log = logging.getLogger("gigachat_lite.emulator")

MAX_BODY = 16 * 1024 * 1024
# POST /files takes a 40 MB document (GigaChat's largest file) and its multipart framing.
MAX_UPLOAD = 41 * 1024 * 1024
# Frees threads held by clients that vanished without closing; stop() does not wait for it.
IDLE_TIMEOUT = 120.0
HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
# v2 streams carry named events; the injected ones are named like the real delta.
NAMED_MALFORMED_EVENT = b"event: response.message.delta\n" + MALFORMED_EVENT


class Abort(Exception):
    """Drop the connection now; ``reset`` makes the close an RST instead of a FIN."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__("connection dropped on purpose")
        self.reset = reset


class Handler(BaseHTTPRequestHandler):
    """GigaChat wire protocol over HTTP/1.1 keep-alive."""

    protocol_version = "HTTP/1.1"
    server_version = "gigachat-lite-emulator"
    timeout = IDLE_TIMEOUT
    server: Any  # the EmulatorServer: its emulator, stopping event

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
        target = urlsplit(self.path)
        path, query = target.path, target.query
        emulator.record(self.command, self.path, path, self.headers, body)
        fault = emulator.take_fault(path, streaming=False)
        if fault is not None and self._pre_fault(fault, path):
            return
        admitted, key = emulator.admit(path, self.headers)
        if not admitted:
            self._send(limit_reply(emulator.retry_after))
            return
        # The slot is given back just before the answer's last bytes go out: a client
        # that has read them all and sends its next request at once must find it free,
        # as it would on a server that counts a reply done when it has sent it.
        self._release = None if key is None else _Once(lambda: emulator.ledger.leave(key))
        try:
            reply = route(emulator, self.command, path, self.headers, body, query)
            if reply.events is None:
                self._send(reply)
            else:
                self._stream(reply, emulator.take_fault(path, streaming=True))
        finally:
            # However the answer ended (written, cut, client gone), the slot is free.
            if self._release is not None:
                self._release()
                self._release = None

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
        if size > (MAX_UPLOAD if urlsplit(self.path).path.endswith("/files") else MAX_BODY):
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
        self._released()
        self.wfile.write(reply.body)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """JSON instead of the stdlib HTML page, and close: the stream may be out of sync."""
        self.close_connection = True
        text = message or phrase(code)
        body = b"" if self.command == "HEAD" else api_error(code, text)
        self.send_response(code, message)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _released(self) -> None:
        release = getattr(self, "_release", None)
        if release is not None:
            release()

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.server.stopping.wait(seconds):
            raise Abort()

    def _pre_fault(self, fault: Fault, path: str) -> bool:
        """Apply a whole-response fault; False when only a stall was asked for."""
        if fault.stall is not None:
            self._wait(fault.stall)
        if fault.reset:
            raise Abort(reset=True)
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

    def _stream(self, reply: Reply, fault: Optional[Fault]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", SSE_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        self._ids()
        self.end_headers()
        events = reply.events or []
        delay = self.server.emulator.delay
        for number in range(len(events) + 1):
            if fault is not None and self._stream_fault(fault, number, len(events), reply.named):
                break
            if number == len(events):
                break
            if number and delay:
                self._wait(delay)
            self._chunk(events[number])
        self._released()
        self.wfile.write(b"0\r\n\r\n")

    def _stream_fault(self, fault: Fault, number: int, total: int, named: bool) -> bool:
        """Act at event ``number``; True ends the body here (cleanly)."""
        if fault.stall is not None and number == min(fault.after or 0, total):
            self._wait(fault.stall)
        if fault.cut_after is not None and number == min(fault.cut_after, total):
            raise Abort()
        if fault.malformed_after is not None and number == min(fault.malformed_after, total):
            self._chunk(NAMED_MALFORMED_EVENT if named else MALFORMED_EVENT)
        if fault.stream_error_after is not None and number == min(fault.stream_error_after, total):
            status = fault.status or 500
            message = fault.message or phrase(status)
            # A v2 client only reads named events; "error" is our name, nothing was recorded.
            self._chunk(sse_event({"status": status, "message": message}, "error" if named else None))
            return True
        return False


class _Once:
    """A callable that runs its function the first time only."""

    def __init__(self, function: Callable[[], None]) -> None:
        self._function: Optional[Callable[[], None]] = function

    def __call__(self) -> None:
        function, self._function = self._function, None
        if function is not None:
            function()

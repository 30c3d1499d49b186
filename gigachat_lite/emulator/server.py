"""Sockets and threads: a threaded server whose open connections ``close_all()`` can cut.

Each accepted connection gets its own daemon thread, which also does the TLS
handshake, so one slow or broken client never blocks ``accept``. Sockets are tracked
so that stopping the emulator wakes threads stuck in a read, a write or a stall.
"""

import ipaddress
import socket
import ssl
import struct
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any, Optional, Set, Tuple

from .handler import Handler, Abort, log

HANDSHAKE_TIMEOUT = 10.0


def loopback(host: str) -> str:
    """``host`` as an IPv4 loopback address; anything else is refused."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.IPv4Address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError("the emulator only listens on IPv4 loopback, not %r" % host)


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
        except Abort as abort:
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

"""Helpers shared by the reliability tests and ``scripts/reliability.py``.

Importable outside pytest (the script runs the same tables), so nothing here
depends on fixtures: :func:`reset_state` does what conftest's autouse fixture does.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import requests

import gigachat_lite


class Hang(AssertionError):
    """A call that did not return within its guard."""


def reset_state(cache_dir: Optional[str] = None) -> None:
    """No GIGACHAT_* settings, no cached token, no shared session (as conftest.clean_state)."""
    for name in list(os.environ):
        if name.startswith("GIGACHAT_") or name.lower() in ("https_proxy", "http_proxy", "all_proxy", "no_proxy"):
            del os.environ[name]
    if cache_dir is not None:
        os.environ["GIGACHAT_LITE_CACHE_DIR"] = cache_dir
    gigachat_lite.reset()


def guarded(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run ``fn`` in a daemon thread; return its result, re-raise its error, or raise Hang."""
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="reliability-guard", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Hang(f"no outcome within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def pools(s: requests.Session) -> List[Any]:
    """Every urllib3 connection pool of every adapter (and proxy manager) of ``s``."""
    found = []
    for adapter in set(s.adapters.values()):
        managers = [adapter.poolmanager] + list(getattr(adapter, "proxy_manager", {}).values())
        for manager in managers:
            for key in manager.pools.keys():  # a copy, taken under the container's lock
                pool = manager.pools.get(key)
                if pool is not None:
                    found.append(pool)
    return found


def checked_out(s: requests.Session) -> int:
    """Connections taken from a pool and not given back: 0 when every response is released."""
    return sum(pool.pool.maxsize - pool.pool.qsize() for pool in pools(s))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def free_port() -> int:
    """A loopback port with nobody listening (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wake_accept(port: int) -> None:
    """Connect to a test server's listener once, so its accept() returns now rather than at its next timeout."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        pass


class Relay:
    """A TCP relay on 127.0.0.1 in front of a loopback server: ``peers`` lists the (host, port) of every
    client connection it accepted, which it pipes to ``target_port``.

    Put it in front of the emulator (``relay.config(emu)``) to see every connection a client makes
    (a proxy's, or a direct one that bypassed it).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.peers: List[Tuple[str, int]] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)  # so stop() is not stuck behind a blocking accept()
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._sockets: Set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="test-relay", daemon=True)
        self._thread.start()

    @classmethod
    def before(cls, emu: Any) -> "Relay":
        """A relay in front of the (started) emulator ``emu``."""
        return cls(int(emu.url.rsplit(":", 1)[1]))

    def url(self, emu_url: str) -> str:
        """``emu_url`` with the emulator's port replaced by the relay's."""
        base, _, rest = emu_url.partition(f":{self.target_port}")
        return f"{base}:{self.port}{rest}"

    def config(self, emu: Any) -> Dict[str, Any]:
        """``emu.client_config()`` pointed at the relay."""
        return {k: self.url(v) if k.endswith("_url") else v for k, v in emu.client_config().items()}

    def __enter__(self) -> "Relay":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopping.set()
        wake_accept(self.port)
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._stopping.is_set():
                client.close()
                return
            with self._lock:
                self.peers.append(peer)
            threading.Thread(target=self._serve, args=(client,), name="test-relay-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(None)
        upstream: Optional[socket.socket] = None
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            peers = {client: upstream, upstream: client}
            while not self._stopping.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._sockets.discard(sock)
                    try:
                        sock.close()
                    except OSError:
                        pass


class Proxy:
    """A small HTTP proxy on 127.0.0.1: CONNECT tunnels and absolute-form HTTP.

    It only connects to 127.0.0.1 (anything else gets 403). ``refuse=True``
    answers every request with 403. ``tunnels`` counts CONNECTs, ``forwarded``
    plain-HTTP connections, ``upstream_ports`` the local ports of its own
    connections to the target (to tell its traffic from a bypass).
    """

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.tunnels = 0
        self.forwarded = 0
        self.refused = 0
        self.targets: List[str] = []
        self.upstream_ports: Set[int] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)  # so stop() is not stuck behind a blocking accept()
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._sockets: Set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="test-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        wake_accept(self.port)
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _track(self, sock: socket.socket, on: bool) -> None:
        with self._lock:
            (self._sockets.add if on else self._sockets.discard)(sock)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._stopping.is_set():
                client.close()
                return
            client.settimeout(None)
            threading.Thread(target=self._serve, args=(client,), name="test-proxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client, True)
        upstream: Optional[socket.socket] = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = line.split(" ", 2)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
            else:
                rest = target.split("://", 1)[1]
                hostport = rest.split("/", 1)[0]
                host, _, port = hostport.rpartition(":")
                port = port or "80"
            with self._lock:
                self.targets.append(f"{method} {target}")
            if self.refuse or host != "127.0.0.1":
                with self._lock:
                    self.refused += 1
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            upstream = socket.create_connection((host, int(port)), timeout=10)
            upstream.settimeout(None)
            self._track(upstream, True)
            with self._lock:
                self.upstream_ports.add(upstream.getsockname()[1])
                if method == "CONNECT":
                    self.tunnels += 1
                else:
                    self.forwarded += 1
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest_bytes = head.split(b"\r\n\r\n", 1)[1]
            else:
                rest_bytes = head  # the emulator understands absolute-form request lines as they are
            if rest_bytes:
                upstream.sendall(rest_bytes)
            self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._track(sock, False)
                    try:
                        sock.close()
                    except OSError:
                        pass

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._stopping.is_set():
            readable, _, _ = select.select([a, b], [], [], 0.5)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)


# What queue.Queue.get/put call while holding the queue's mutex (urllib3's pool is a LifoQueue).
_UNDER_QUEUE_LOCK = ("_get", "_put", "_qsize")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def abandon_streams(emu: Any, count: int, seed: int = 20261125, timeout: float = 300) -> Dict[str, Any]:
    """Drop ``count`` half-read streams inside the caller's own reference cycles while a profile
    hook forces ``gc.collect()`` at random calls, often inside urllib3's pool queue (its lock held).

    Raises :class:`Hang` if the loop does not finish; returns fds and threads before and after.
    """
    import gc
    import random
    import sys

    from gigachat_lite import Session

    session = Session(**emu.client_config(), max_retries=0)
    "".join(session.chat("warm up"))
    gc.collect()
    before = (_open_fds(), threading.active_count())
    rng = random.Random(seed)

    def collect_sometimes(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and (frame.f_code.co_name in _UNDER_QUEUE_LOCK and rng.random() < 0.25 or rng.random() < 0.0005):
            gc.collect()

    def abandon() -> int:
        # What exists already (a whole test run's heap) is set aside: each collection then costs
        # what this loop made, not what the process holds, and still finds every dropped stream.
        gc.freeze()
        sys.setprofile(collect_sometimes)
        try:
            for _ in range(count):
                stream = session.chat("a reply of several chunks")
                next(stream)
                holder: List[Any] = [stream]
                holder.append(holder)  # only the cycle collector can free this stream now
                del stream, holder
        finally:
            sys.setprofile(None)
            gc.unfreeze()
        return count

    started = time.monotonic()
    dropped = guarded(abandon, timeout=timeout)
    seconds = time.monotonic() - started
    gc.collect()
    works = "".join(session.chat("still works")) == "Echo: still works"
    session.close()
    gc.collect()
    # The emulator runs in this process: the handler thread of a connection just closed
    # ends when it reads the close, a moment later. Wait for the counts to come back
    # (a leak never does), then take them.
    settle = time.monotonic() + 10
    while (threading.active_count() > before[1] or _open_fds() > before[0] + 2) and time.monotonic() < settle:
        time.sleep(0.05)
    return {"dropped": dropped, "seconds": seconds, "works_after": works, "fds_before": before[0],
            "fds_after": _open_fds(), "threads_before": before[1], "threads_after": threading.active_count()}

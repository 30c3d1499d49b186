"""A real redis-server for the coordination tests: own port on 127.0.0.1, own temp dir, no persistence.

Import the fixtures into a test module (``from redis_server import redis_server``).
Without /usr/bin/redis-server the tests skip, except under CI (``CI`` set),
where .ci/run installs it and a skip would hide a gap: there they fail.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _require_binary() -> None:
    if os.path.exists(REDIS_SERVER):
        return
    if os.environ.get("CI"):
        pytest.fail("redis-server is missing under CI: .ci/run should have installed it")
    pytest.skip("redis-server is not installed (apt-get install redis-server); .ci/run installs it")


class RedisServer:
    """One redis-server process; ``url`` points at it; ``stop()`` ends it."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.port = 0
        for _ in range(5):  # another process may grab the free port first: try another
            self.port = _free_port()
            if self._start():
                return
        raise RuntimeError(f"redis-server did not start; see {folder / 'redis.log'}")

    def _start(self) -> bool:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no",
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if self._wait_ready(10.0):
            return True
        self.stop()
        return False

    def restart(self) -> None:
        """Stop the server and start an empty one on the same port (no persistence: every key is gone)."""
        self.stop()
        if not self._start():
            raise RuntimeError(f"redis-server did not restart on port {self.port}; see {self.folder / 'redis.log'}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def client(self) -> Any:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def dump(self) -> Dict[str, List[str]]:
        """Every key and every value in it (strings, sorted-set members and scores, hash fields, list items)."""
        client = self.client()
        found: Dict[str, List[str]] = {}
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            if kind == "string":
                found[key] = [client.get(key) or ""]
            elif kind == "zset":
                found[key] = [f"{member} {score}" for member, score in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "hash":
                found[key] = [f"{field} {value}" for field, value in client.hgetall(key).items()]
            elif kind == "list":
                found[key] = list(client.lrange(key, 0, -1))
            else:
                found[key] = [f"<{kind}>"]
        client.close()
        return found


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server shared by one test module (tests use distinct keys)."""
    _require_binary()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis_server(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    """A redis-server for one test, which may stop it."""
    _require_binary()
    server = RedisServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["file", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """Each test twice: on the file backend, and on the module's real Redis."""
    if request.param == "file":
        return "file://" + str(tmp_path / "coordination")
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url

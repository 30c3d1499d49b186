"""The threads that run :mod:`.bridge`'s streams: started off the event loop, reused back to back.

No streams or HTTP here: a job is any callable, run in a thread of its own
while it runs (the design's one thread per stream in flight).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable

__all__ = ["Launcher", "Workers", "WORKERS"]


class Launcher:
    """Starts stream threads off the event loop, and exits after a short idle spell.

    ``Thread.start()`` waits until the new thread runs: with hundreds of threads
    competing for the GIL, 200 streams started in one loop iteration froze the
    loop for ~0.6 s. The loop only queues the thread.
    """

    idle_exit = 0.5

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue[threading.Thread]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    def start(self, thread: threading.Thread) -> None:
        self._queue.put(thread)
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="gigachat_lite-launcher", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                thread = self._queue.get(timeout=self.idle_exit)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # checked under the lock start() takes after put()
                        self._running = False
                        return
                continue
            thread.start()


LAUNCHER = Launcher()


class Workers:
    """Stream threads: one per stream in flight; a finished one waits ``idle_exit`` s for the next.

    A thread start took ~0.16 ms of an async stream's first chunk. ``_idle`` has a
    token per idle thread: a stream that takes one has a thread waiting, else a new
    one starts. A thread that times out leaves only if it takes a token back.
    """

    idle_exit = 0.5

    def __init__(self) -> None:
        self._jobs: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        if not self._idle.acquire(blocking=False):
            LAUNCHER.start(threading.Thread(target=self._work, name="gigachat_lite-stream", daemon=True))

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.idle_exit)
            except queue.Empty:
                if self._idle.acquire(blocking=False):
                    return
                continue
            try:
                job()
            finally:  # produce() hands every error to its consumer; del: no channel kept alive while idle
                del job
            self._idle.release()


WORKERS = Workers()


def _after_fork() -> None:
    # Threads do not survive a fork: the launcher's "running" flag and the idle
    # tokens would promise threads the child does not have, and no stream would
    # ever start there. Reset in place: other modules hold these objects.
    LAUNCHER.__init__()  # type: ignore[misc]
    WORKERS.__init__()  # type: ignore[misc]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

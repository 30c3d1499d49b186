"""Client worker processes for the fleet tests: gigachat_lite.chat() from many threads, as a gunicorn worker would.

Run under the spawn start method; each process configures itself through
``GIGACHAT_*`` variables only, as a deployed worker does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Dict, List

import gigachat_lite
from gigachat_lite.coordination import fleet


def chat_many(env: Dict[str, str], threads: int, calls: int, out_path: str, start_at: float) -> None:
    """``threads`` threads each make ``calls`` chat calls (streamed and not, alternately); counts go to ``out_path``."""
    os.environ.update(env)
    counts: Dict[str, int] = {}
    lock = threading.Lock()

    def note(what: str) -> None:
        with lock:
            counts[what] = counts.get(what, 0) + 1

    def run(number: int) -> None:
        for call in range(calls):
            try:
                if (number + call) % 2:
                    text = "".join(gigachat_lite.chat("hi"))
                else:
                    text = gigachat_lite.chat("hi", stream=False).text
                note("ok" if text else "empty")
            except gigachat_lite.RateLimitError:
                note("429")
            except gigachat_lite.GigaChatError as exc:
                note(type(exc).__name__)

    time.sleep(max(start_at - time.time(), 0))  # every process starts calling together
    workers: List[threading.Thread] = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(counts, out)


def stream_and_hang(env: Dict[str, str], lease_ttl: float, ready_path: str) -> None:
    """Start a stream, read one chunk, say so, then hang mid-stream until killed."""
    os.environ.update(env)
    fleet.LEASE_TTL = lease_ttl
    stream = gigachat_lite.chat("hi")
    next(iter(stream))
    with open(ready_path, "w", encoding="utf-8") as ready:
        ready.write("streaming")
    time.sleep(120)

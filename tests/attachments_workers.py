"""Worker processes for the fleet attachment tests (run under the spawn start method).

Each process configures itself through ``GIGACHAT_*`` variables only, as a
deployed gunicorn or Celery worker does, and sends chats carrying files.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Dict, List

import gigachat_lite


def send_files(env: Dict[str, str], threads: int, paths: List[str], out_path: str, start_at: float) -> None:
    """``threads`` threads each send one chat per path in ``paths`` (the file attached); the file ids sent go to ``out_path``."""
    os.environ.update(env)
    sent: Dict[str, List[str]] = {path: [] for path in paths}
    errors: List[str] = []
    lock = threading.Lock()

    def run() -> None:
        for path in paths:
            try:
                reply = gigachat_lite.chat([{"role": "user", "content": "What is this?", "attachments": [path]}], stream=False)
                assert reply.text == "Echo: What is this?", reply.text
            except Exception as exc:  # reported to the parent, which fails the test
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    time.sleep(max(start_at - time.time(), 0))  # every process starts together
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"errors": errors}, out)

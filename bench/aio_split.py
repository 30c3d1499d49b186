"""Where ``aio.chat()``'s CPU goes: ``python bench/aio_split.py [--rounds 5] [--plain]``.

One process, the emulator in its own (TLS unless ``--plain``); 20,000-event
streams, CPU per event by ``time.process_time()``, alternated round by round:
the floor, sync ``chat()``, the same sync stream in a plain thread, and
``aio.chat()`` with the loop's thread's own CPU (``time.thread_time()``)
taken apart from the rest (the stream's thread). Prints medians and ratios
to the floor: what the async adapter costs beyond the sync stream it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clients import Floor  # noqa: E402
from run import Emulator  # noqa: E402

EVENTS = 20000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    options = parser.parse_args()

    import gigachat_lite
    from gigachat_lite import aio

    emulator = Emulator(plain=options.plain)
    config = emulator.config
    prompt = f"x*{EVENTS}"
    floor = Floor(config)

    def per_event(seconds: float) -> float:
        return seconds / EVENTS * 1e6

    def floor_row() -> float:
        started = time.process_time()
        floor.stream(prompt)
        return per_event(time.process_time() - started)

    def sync_row() -> float:
        started = time.process_time()
        for _ in gigachat_lite.chat(prompt, **config):
            pass
        return per_event(time.process_time() - started)

    def thread_row() -> float:
        started = time.process_time()
        thread = threading.Thread(target=lambda: [None for _ in gigachat_lite.chat(prompt, **config)])
        thread.start()
        thread.join()
        return per_event(time.process_time() - started)

    def aio_row() -> Tuple[float, float]:
        async def consume() -> float:
            started = time.thread_time()
            async for _ in aio.chat(prompt, **config):
                pass
            return time.thread_time() - started

        started = time.process_time()
        loop_cpu = asyncio.run(consume())
        return per_event(time.process_time() - started), per_event(loop_cpu)

    try:
        sync_row(), aio_row()  # connection, token and threads warm
        rows: Dict[str, List[float]] = {"floor": [], "sync chat()": [], "sync chat() in a thread": [],
                                        "aio.chat(), whole": [], "  the loop's thread": [], "  the stream's thread": []}
        for _ in range(options.rounds):
            rows["floor"].append(floor_row())
            rows["sync chat()"].append(sync_row())
            rows["sync chat() in a thread"].append(thread_row())
            whole, loop = aio_row()
            rows["aio.chat(), whole"].append(whole)
            rows["  the loop's thread"].append(loop)
            rows["  the stream's thread"].append(whole - loop)
    finally:
        emulator.close()
    base = statistics.median(rows["floor"])
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"{name:26} {median:6.2f} µs/event  {median / base:.2f}x the floor")


if __name__ == "__main__":
    main()

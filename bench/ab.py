"""Two checkouts, one emulator: ``python bench/ab.py BEFORE [AFTER] [--rounds 4]``.

BEFORE and AFTER are folders holding a ``gigachat_lite`` package (AFTER
defaults to this checkout); for a commit, ``git worktree add /tmp/before
<commit>`` first. Each round runs one fresh process per checkout, alternated,
against the same TLS emulator (this checkout's, in its own process); each
process measures, in itself, the CPU per event of 20,000-event streams for
the floor, sync ``chat()`` (v1, v2) and ``aio.chat()`` (v1, v2), the middle
of 3 per client, and reports them as ratios to its own floor. Prints each
round and the medians: the before/after table of docs/performance.rst.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EVENTS = 20000


def measure(config: dict) -> dict:
    """In the child: CPU µs per event of each client, the middle of 3."""
    sys.path.insert(0, HERE)
    from clients import Floor

    import gigachat_lite
    from gigachat_lite import aio

    prompt = f"x*{EVENTS}"
    floor = Floor(config)

    def sync(version: str) -> None:
        for _ in gigachat_lite.chat(prompt, api_version=version, **config):
            pass

    def in_loop(version: str) -> None:
        async def main() -> None:
            async for _ in aio.chat(prompt, api_version=version, **config):
                pass

        asyncio.run(main())

    def cpu(function, *args) -> float:
        started = time.process_time()
        function(*args)
        return (time.process_time() - started) / EVENTS * 1e6

    cpu(sync, "v1"), cpu(in_loop, "v1")  # connection, token and threads warm
    rows = {"floor": (floor.stream, prompt), "chat()": (sync, "v1"), "chat(), v2": (sync, "v2"),
            "aio.chat()": (in_loop, "v1"), "aio.chat(), v2": (in_loop, "v2")}
    found: dict = {name: [] for name in rows}
    for _ in range(3):
        for name, (function, argument) in rows.items():
            found[name].append(cpu(function, argument))
    return {name: sorted(values)[1] for name, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", default=ROOT)
    parser.add_argument("--rounds", type=int, default=4)
    options = parser.parse_args()
    sys.path.insert(0, HERE)
    from run import Emulator

    emulator = Emulator(plain=False)
    trees = {"before": os.path.abspath(options.before), "after": os.path.abspath(options.after)}
    ratios: dict = {name: [] for name in trees}
    try:
        for _ in range(options.rounds):
            for name, tree in trees.items():
                env = dict(os.environ, PYTHONPATH=tree, BENCH_AB_CONFIG=json.dumps(emulator.config))
                done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], env=env,
                                      capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{name} ({tree}) failed:\n{done.stderr[-3000:]}")
                cpu = json.loads(done.stdout.strip().splitlines()[-1])
                row = {client: value / cpu["floor"] for client, value in cpu.items() if client != "floor"}
                ratios[name].append(row)
                print(f"{name:6} floor {cpu['floor']:5.2f} µs/event  " +
                      "  ".join(f"{client} {value:.2f}x" for client, value in row.items()), flush=True)
    finally:
        emulator.close()
    print("\nmedians of the ratios to the floor (TLS):")
    for name, rows in ratios.items():
        print(f"{name:6} " + "  ".join(f"{client} {statistics.median(r[client] for r in rows):.2f}x" for client in rows[0]))


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(measure(json.loads(os.environ["BENCH_AB_CONFIG"]))))
    else:
        main()

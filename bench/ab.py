"""Two checkouts, one emulator: ``python bench/ab.py BEFORE [AFTER] [--rounds 4] [--imports 0]``.

BEFORE and AFTER are folders holding a ``gigachat_lite`` package (AFTER
defaults to this checkout); for a commit, ``git worktree add /tmp/before
<commit>`` first. Each round runs one fresh process per checkout, alternated,
against the same TLS emulator (this checkout's, in its own process); each
process measures, in itself, the CPU per event of 20,000-event streams for
the floor, sync ``chat()`` (v1, v2) and ``aio.chat()`` (v1, v2), the middle
of 3 per client, and reports them as ratios to its own floor. Prints each
round and the medians: the before/after table of docs/performance.rst.

``--imports N`` also times ``import gigachat_lite`` in a process that has
imported requests, N times per checkout, alternated, each from its own
byte-code cache (warmed first), as bench/run.py's "after requests" row does:
the medians and the paired ratio tell a change in the package's import from
a change in the machine (``--rounds 0 --imports 15`` runs that alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
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


_IMPORT = "import time, requests\nstart = time.perf_counter()\nimport gigachat_lite\nprint(time.perf_counter() - start)"


def import_ms(tree: str) -> float:
    """One run of ``import gigachat_lite`` after requests, in ms, from ``tree`` with its own .pyc cache."""
    cache = os.path.join(tempfile.gettempdir(), "gigachat_lite-ab-pycache", tree.strip(os.sep).replace(os.sep, "_"))
    env = dict(os.environ, PYTHONPATH=tree, PYTHONPYCACHEPREFIX=cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte code as an installed package has it
    done = subprocess.run([sys.executable, "-c", _IMPORT], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return float(done.stdout) * 1000


def compare_imports(trees: dict, count: int) -> None:
    for tree in trees.values():
        import_ms(tree)  # byte code written
    times: dict = {name: [] for name in trees}
    for index in range(count):
        for name in (list(trees) if index % 2 == 0 else list(trees)[::-1]):
            times[name].append(import_ms(trees[name]))
    print(f"\nimport gigachat_lite after requests, {count} runs each, alternated:")
    for name, values in times.items():
        print(f"{name:6} median {statistics.median(values):.1f} ms (min {min(values):.1f})")
    paired = sorted(after / before for before, after in zip(times["before"], times["after"]))
    print(f"after / before, paired: median {statistics.median(paired):.2f}x ({paired[0]:.2f}x-{paired[-1]:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", default=ROOT)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--imports", type=int, default=0, help="also time the import N times per checkout")
    options = parser.parse_args()
    sys.path.insert(0, HERE)
    from run import Emulator

    trees = {"before": os.path.abspath(options.before), "after": os.path.abspath(options.after)}
    if options.imports:
        compare_imports(trees, options.imports)
    if not options.rounds:
        return
    emulator = Emulator(plain=False)
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

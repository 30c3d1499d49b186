"""Batch jobs at a personal key's limit: ``python bench/batch.py [--lines 1000] [--server-ms 100] [--rounds 2]``.

GigaChat runs one request at a time for a personal key (``GIGACHAT_API_PERS``),
so no batch on it can beat ``lines x one request alone``: that product is the
key's limit, and this measures how close :func:`gigachat_lite.run_batch` gets
to it. The emulator runs in its own process on 127.0.0.1 with the personal
limit (``max_in_flight=1``, 429 beyond) and a reply that takes ``--server-ms``
of server time inside the limit: 100 ms by default. A real model takes
several times longer, which only makes the runner's share smaller; at 20 ms
the coordination store's own cost per request (three store calls) shows.
One request alone is ``Session.call`` of one line's body, sent one at a
time from a fresh process, the mean over ``--alone`` requests; it is
measured right before and right after each run (the machine's load drifts),
and the run is compared to their mean. The runs:

* one runner process takes all the lines (no store: nothing else uses the key);
* two runner processes take half the lines each, sharing the key through a
  coordination store: a folder (``file://``), and Redis when ``redis-server``
  is installed; and, to show why, with no store at all.

Each runner calls ``run_batch`` at the same agreed moment (imports done),
and a run's time runs from that moment until the last runner ends. Every
run is repeated ``--rounds`` times, the kinds taking turns. Columns: lines
with a result and 429s the emulator sent (``max_in_flight``), both summed
over the rounds; the median time; ``lines x one request alone`` (median);
and the ratio of the two, median (min-max) over the rounds. Prints a
reStructuredText table (as README.rst shows it) and writes
``bench/results/batch-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from fleet import start_redis  # noqa: E402  (a redis-server on a free port, or None)

BODY = {"model": "GigaChat", "messages": [{"role": "system", "content": "Ответь одним словом: positive, negative или neutral."},
                                          {"role": "user", "content": "Отзыв номер {n}: доставили быстро, всё работает."}]}


def _env(**extra: str) -> Dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIGACHAT_")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _body(n: int) -> Dict[str, Any]:
    body = json.loads(json.dumps(BODY))
    body["messages"][1]["content"] = body["messages"][1]["content"].format(n=n)
    return body


# -- the emulator, in its own process ---------------------------------------------------------------

def serve(server_ms: float) -> None:
    """Print the emulator's env as one JSON line; answer ``stats`` with its counts; stop on ``quit``."""
    from gigachat_lite.emulator import Emulator

    def reply(body: Dict[str, Any]) -> str:
        time.sleep(server_ms / 1000)  # the model's time, counted in flight
        return "positive"

    with Emulator(max_in_flight=1, retry_after=1, reply=reply) as emu:
        print(json.dumps(emu.env()), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                chats = sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))
                print(json.dumps({"refused": emu.ledger.refused(emu.api_key), "peak": emu.ledger.peak(emu.api_key),
                                  "chat_requests": chats}), flush=True)
            elif line.strip() == "quit":
                break


class Server:
    def __init__(self, server_ms: float) -> None:
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", str(server_ms)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        assert self.process.stdout is not None
        self.env: Dict[str, str] = json.loads(self.process.stdout.readline())

    def stats(self) -> Dict[str, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        stats: Dict[str, int] = json.loads(self.process.stdout.readline())
        return stats

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(10)


# -- the measuring processes --------------------------------------------------------------------------

def alone(count: int) -> None:
    """One request at a time, ``count`` times, after a warm-up: print the mean seconds per request."""
    import gigachat_lite

    session = gigachat_lite.Session()
    headers = {"Accept": "application/json"}
    for n in range(5):
        session.call("POST", "/chat/completions", json=_body(n), headers=headers).json()
    started = time.perf_counter()
    for n in range(count):
        session.call("POST", "/chat/completions", json=_body(n), headers=headers).json()
    print(json.dumps({"seconds": (time.perf_counter() - started) / count}), flush=True)


def work(source: str, target: str, start_at: float) -> None:
    """``run_batch(source, target)`` from ``start_at`` (wall clock); print when it ended and its summary."""
    import gigachat_lite

    gigachat_lite.Session  # imported, like the runner will be, before the clock starts
    time.sleep(max(start_at - time.time(), 0))
    summary = gigachat_lite.run_batch(source, target, max_retries=0)  # a 429 shows as an error line, not hidden by a retry
    print(json.dumps({"ended": time.time(), "results": summary.results, "errors": summary.errors}), flush=True)


# -- the driver -----------------------------------------------------------------------------------------

def write_input(path: str, first: int, count: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for n in range(first, first + count):
            handle.write(json.dumps({"id": f"r{n}", "request": _body(n)}, ensure_ascii=False) + "\n")


def run_row(label: str, server: Server, folder: str, lines: int, runners: int, coordination: str) -> Dict[str, Any]:
    before = server.stats()
    for name in os.listdir(folder):  # each round starts afresh: no OUTPUT to resume from
        if name.startswith(label + "-"):
            os.unlink(os.path.join(folder, name))
    env = _env(**server.env, GIGACHAT_COORDINATION=coordination) if coordination else _env(**server.env)
    start_at = time.time() + 2.0  # every interpreter is up and imported by then
    share = [lines // runners + (1 if n < lines % runners else 0) for n in range(runners)]
    processes = []
    for n, count in enumerate(share):
        source, target = os.path.join(folder, f"{label}-{n}.jsonl"), os.path.join(folder, f"{label}-{n}.out.jsonl")
        write_input(source, sum(share[:n]), count)
        processes.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "--work", source, target, repr(start_at)],
                                          stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT))
    outputs = [json.loads(process.communicate(timeout=3600)[0].strip().splitlines()[-1]) for process in processes]
    after = server.stats()
    return {"label": label, "runners": runners, "lines": lines, "results": sum(o["results"] for o in outputs),
            "refused": after["refused"] - before["refused"], "peak": after["peak"],
            "seconds": max(o["ended"] for o in outputs) - start_at}


def measure_alone(server: Server, count: int) -> float:
    measured = subprocess.run([sys.executable, os.path.abspath(__file__), "--alone-worker", str(count)],
                              capture_output=True, text=True, env=_env(**server.env), cwd=ROOT, check=True)
    return float(json.loads(measured.stdout)["seconds"])


def table(rows: List[Dict[str, Any]]) -> str:
    head = ["runners", "store", "results", "429s", "time", "lines x alone", "ratio"]
    body = []
    for r in rows:
        ratios = sorted(r["ratios"])
        body.append([str(r["runners"]), r["store"], f"{r['results']}/{r['lines'] * len(ratios)}", str(r["refused"]),
                     f"{statistics.median(r['times']):.2f} s", f"{statistics.median(r['floors']):.2f} s",
                     f"{statistics.median(ratios):.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f})"])
    widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)
    fmt = lambda line: "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, fmt(head), rule] + [fmt(line) for line in body] + [rule])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--server-ms", type=float, default=100.0, help="server time of each reply (default 100)")
    parser.add_argument("--alone", type=int, default=50, help="requests timed one by one for each baseline (default 50)")
    parser.add_argument("--rounds", type=int, default=2, help="times each run is repeated (default 2)")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--alone-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve)
    if args.alone_worker is not None:
        return alone(args.alone_worker)
    if args.work:
        return work(args.work[0], args.work[1], float(args.work[2]))

    folder = tempfile.mkdtemp(prefix="gigachat_lite-batch-")
    redis = start_redis(folder)
    server = Server(args.server_ms)
    runs = [("one", 1, "none", ""), ("two-file", 2, "file", "file://" + os.path.join(folder, "coordination"))]
    if redis is not None:
        runs.append(("two-redis", 2, "Redis", redis.url))  # type: ignore[attr-defined]
    runs.append(("two-none", 2, "none", ""))
    rows: Dict[str, Dict[str, Any]] = {
        label: {"label": label, "runners": runners, "store": store, "lines": args.lines, "results": 0, "refused": 0,
                "times": [], "floors": [], "ratios": [], "alone": []}
        for label, runners, store, _ in runs
    }
    try:
        for round_number in range(args.rounds):
            for label, runners, _, url in runs:
                print(f"round {round_number + 1}/{args.rounds}: {label}...", file=sys.stderr, flush=True)
                before = measure_alone(server, args.alone)
                result = run_row(label, server, folder, args.lines, runners, url)
                per_request = (before + measure_alone(server, args.alone)) / 2
                row = rows[label]
                row["results"] += result["results"]
                row["refused"] += result["refused"]
                row["times"].append(result["seconds"])
                row["floors"].append(args.lines * per_request)
                row["ratios"].append(result["seconds"] / (args.lines * per_request))
                row["alone"].append(per_request)
    finally:
        server.close()
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    alone_all = [seconds for row in rows.values() for seconds in row["alone"]]
    print(f"{args.lines} chat lines, personal-key limit 1 (emulator, {args.server_ms:g} ms of server time a reply), "
          f"{args.rounds} rounds; one request alone: {statistics.median(alone_all) * 1000:.2f} ms "
          f"(median; {min(alone_all) * 1000:.2f}-{max(alone_all) * 1000:.2f})\n")
    print(table(list(rows.values())))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", time.strftime("batch-%Y%m%d-%H%M%S.json"))
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"lines": args.lines, "server_ms": args.server_ms, "rounds": args.rounds, "rows": list(rows.values())}, out, indent=1)


if __name__ == "__main__":
    main()

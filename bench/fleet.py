"""Many workers on one personal key: ``python bench/fleet.py [--processes 8] [--threads 4] [--calls 200]``.

GigaChat lets a personal key (``GIGACHAT_API_PERS``) run one request at a
time and answers 429 beyond. This runs a gunicorn-like fleet (``--processes``
worker processes of ``--threads`` threads, ``--calls`` streamed chat calls in
all, default retries) against the emulator with that limit
(``max_in_flight=1``, ``Retry-After: 1``), in its own process over plain HTTP
on 127.0.0.1, three times: without coordination, with the file backend
(``file://`` in a temporary folder) and with Redis (a ``redis-server`` started
on a free port, skipped if there is none). Each run gets a fresh emulator, so
every count is that run's.

Columns: 429s the callers saw (``RateLimitError``), 429s absorbed by retries,
OAuth calls (the emulator's count for the key), and wall time from the
moment every worker starts calling. Prints a table (reStructuredText, as
README.rst shows it) and writes ``bench/results/fleet-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _env(**extra: str) -> Dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIGACHAT_")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


# -- the emulator, in its own process ---------------------------------------------------------------

def serve() -> None:
    """Print the emulator's env as one JSON line; answer ``stats`` with its ledger; stop on ``quit``."""
    from gigachat_lite.emulator import Emulator

    with Emulator(max_in_flight=1, retry_after=1, delay=0.01, reply="a short streamed reply") as emu:
        print(json.dumps(emu.env()), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                key = emu.api_key
                chats = sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))
                print(json.dumps({"oauth": emu.ledger.oauth_calls(key), "refused": emu.ledger.refused(key),
                                  "peak": emu.ledger.peak(key), "chat_requests": chats}), flush=True)
            elif line.strip() == "quit":
                break


# -- one worker process -------------------------------------------------------------------------------

def work(threads: int, calls: int, start_at: float) -> None:
    """``calls`` streamed chats over ``threads`` threads; print what the callers met as one JSON line."""
    import gigachat_lite

    counts: Dict[str, int] = {}
    lock = threading.Lock()
    share = [calls // threads + (1 if n < calls % threads else 0) for n in range(threads)]

    def run(count: int) -> None:
        for _ in range(count):
            try:
                outcome = "ok" if "".join(gigachat_lite.chat("hi")) else "empty"
            except gigachat_lite.RateLimitError:
                outcome = "429"
            except gigachat_lite.GigaChatError as exc:
                outcome = type(exc).__name__
            with lock:
                counts[outcome] = counts.get(outcome, 0) + 1

    pool = [threading.Thread(target=run, args=(count,)) for count in share]
    time.sleep(max(start_at - time.time(), 0))
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps({"counts": counts, "ended": time.time()}), flush=True)


# -- the driver ---------------------------------------------------------------------------------------

class Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
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


def start_redis(folder: str) -> Optional["subprocess.Popen[bytes]"]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                process.url = f"redis://127.0.0.1:{port}/0"  # type: ignore[attr-defined]
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    return None


def run_fleet(label: str, coordination: str, processes: int, threads: int, calls: int) -> Dict[str, Any]:
    server = Server()
    try:
        env = _env(**server.env, GIGACHAT_COORDINATION=coordination) if coordination else _env(**server.env)
        start_at = time.time() + 2.0  # every interpreter is up and imported by then
        share = [calls // processes + (1 if n < calls % processes else 0) for n in range(processes)]
        workers = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--work", str(threads), str(count),
                                     repr(start_at)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
                   for count in share]
        outputs = [json.loads(worker.communicate(timeout=600)[0].strip().splitlines()[-1]) for worker in workers]
        stats = server.stats()
    finally:
        server.close()
    counts: Dict[str, int] = {}
    for output in outputs:
        for outcome, count in output["counts"].items():
            counts[outcome] = counts.get(outcome, 0) + count
    seen_429 = counts.get("429", 0)
    return {
        "label": label, "calls": calls, "ok": counts.get("ok", 0), "user_429": seen_429,
        "retried_429": stats["refused"] - seen_429, "oauth": stats["oauth"], "peak": stats["peak"],
        "seconds": max(output["ended"] for output in outputs) - start_at, "other": {
            k: v for k, v in counts.items() if k not in ("ok", "429")},
    }


def table(rows: List[Dict[str, Any]]) -> str:
    head = ["coordination", "calls ok", "429s seen", "429s retried", "OAuth calls", "peak in flight", "total time"]
    body = [[r["label"], f"{r['ok']}/{r['calls']}", str(r["user_429"]), str(r["retried_429"]), str(r["oauth"]),
             str(r["peak"]), f"{r['seconds']:.1f} s"] for r in rows]
    widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)
    fmt = lambda line: "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, fmt(head), rule] + [fmt(line) for line in body] + [rule])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    if args.work:
        return work(int(args.work[0]), int(args.work[1]), float(args.work[2]))
    folder = tempfile.mkdtemp(prefix="gigachat_lite-fleet-")
    redis = start_redis(folder)
    rows = []
    try:
        runs = [("none", ""), ("file", "file://" + os.path.join(folder, "coordination"))]
        if redis is not None:
            runs.append(("Redis", redis.url))  # type: ignore[attr-defined]
        for label, url in runs:
            print(f"running {label}...", file=sys.stderr, flush=True)
            rows.append(run_fleet(label, url, args.processes, args.threads, args.calls))
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.processes} processes x {args.threads} threads, {args.calls} streamed chat calls, "
          "personal-key limit 1 (emulator), default retries\n")
    print(table(rows))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", time.strftime("fleet-%Y%m%d-%H%M%S.json"))
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"processes": args.processes, "threads": args.threads, "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()

"""A fleet sending the same logo: ``python bench/attachments.py [--processes 8] [--threads 4] [--calls 3]``.

Issue 24 asks that 32 workers sending the same logo upload it once. This runs
``--processes`` worker processes of ``--threads`` threads (32 workers by
default); each thread makes ``--calls`` chat calls, each attaching the same
``--size`` KB logo (``logo.png``) and, on its first call, a note of its
process's own (``notes-N.txt``): ``1 + processes`` distinct files in all. The
emulator runs in this process on 127.0.0.1 with no in-flight limit and holds
each upload ``--upload-delay`` seconds (a real upload crosses the internet:
every worker asks for the file meanwhile). Once per store: without
coordination (each process uploads the logo itself), the file store
(``file://`` in a temporary folder) and Redis (a ``redis-server`` started on a
free port, skipped if there is none).

The table: chats that came back, ``POST /files`` calls the emulator counted
(all, and the logo's), distinct files, the most ids one file was sent with (1:
every worker used the same upload), and wall time from the moment every worker
starts. A coordinated fleet also keeps a personal key's one request in flight,
so its calls queue: its time shows that, not the uploads.

Below it, in this process: the median time of a chat whose logo is already
uploaded (the file read and hashed again, the id reused) against the same chat
without the logo, and their ratio: what a known attachment costs a call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import gigachat_lite  # noqa: E402
from gigachat_lite.emulator import Emulator, Fault  # noqa: E402

QUESTION = "What is on the logo?"


def work(threads: int, calls: int, logo: str, own: str, start_at: float) -> None:
    """One worker process: ``threads`` threads, ``calls`` chats each; prints its counts as JSON."""
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def run() -> None:
        for call in range(calls):
            attachments = [logo, own] if call == 0 else [logo]
            try:
                reply = gigachat_lite.chat([{"role": "user", "content": QUESTION, "attachments": attachments}], stream=False)
                ok = reply.text == "Echo: " + QUESTION
            except gigachat_lite.GigaChatError as exc:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                ok = False
            with lock:
                counts["ok" if ok else "failed"] += 1

    time.sleep(max(start_at - time.time(), 0))
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps(counts))


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


def run_fleet(label: str, url: str, folder: str, args: argparse.Namespace) -> Dict[str, Any]:
    logo = os.path.join(folder, "logo.png")
    with open(logo, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + os.urandom(args.size * 1024))  # a fresh logo per run: nothing known before
    with Emulator() as emu:
        emu.add_fault(Fault(path="*/api/v1/files", stall=args.upload_delay))
        env = dict(os.environ, **emu.env(), GIGACHAT_TIMEOUT="60")
        env.pop("GIGACHAT_COORDINATION", None)
        if url:
            env["GIGACHAT_COORDINATION"] = url
        start_at = time.time() + 2.0  # every interpreter is up and imported by then
        workers = []
        for number in range(args.processes):
            own = os.path.join(folder, f"notes-{number}.txt")
            with open(own, "w", encoding="utf-8") as out:
                out.write(f"worker {number}'s notes ({label})")
            workers.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--work", str(args.threads), str(args.calls), logo, own,
                 repr(start_at)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT))
        outputs = [json.loads(worker.communicate(timeout=600)[0].strip().splitlines()[-1]) for worker in workers]
        elapsed = time.time() - start_at
        names = {entry["id"]: entry["filename"] for entry in emu.file_store.listing()}
        ids: Dict[str, set] = {}
        for request in emu.requests:
            if request.path.endswith("/chat/completions"):
                for file_id in request.json["messages"][0]["attachments"]:
                    ids.setdefault(names[file_id], set()).add(file_id)
        return {"label": label, "ok": sum(o["ok"] for o in outputs), "calls": args.processes * args.threads * args.calls,
                "uploads": emu.file_store.uploads, "distinct": len(ids), "most_ids": max(len(v) for v in ids.values()),
                "logo_uploads": len(ids.get("logo.png", ())), "seconds": elapsed}


def known_file_cost(folder: str, size_kb: int, rounds: int) -> Dict[str, float]:
    """Median seconds of a chat with an already-uploaded logo, and of the same chat without it."""
    logo = os.path.join(folder, "known.png")
    with open(logo, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + os.urandom(size_kb * 1024))
    with Emulator() as emu, gigachat_lite.Session(**emu.client_config()) as session:
        plain = [{"role": "user", "content": QUESTION}]
        attached = [{"role": "user", "content": QUESTION, "attachments": [logo]}]
        session.chat(attached, stream=False)  # uploaded once, before timing
        times: Dict[str, List[float]] = {"plain": [], "attached": []}
        for _ in range(rounds):  # interleaved: a change in the machine's load hits both alike
            for name, messages in (("plain", plain), ("attached", attached)):
                began = time.perf_counter()
                session.chat(messages, stream=False)
                times[name].append(time.perf_counter() - began)
        assert emu.file_store.uploads == 1
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=3, help="chats per thread")
    parser.add_argument("--size", type=int, default=256, help="the logo's size in KB")
    parser.add_argument("--upload-delay", type=float, default=0.3, help="seconds the emulator holds each upload")
    parser.add_argument("--stores", default="none,file,redis", help="comma-separated: none, file, redis")
    parser.add_argument("--rounds", type=int, default=200, help="calls of each kind for the known-file cost")
    parser.add_argument("--work", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.work:
        return work(int(args.work[0]), int(args.work[1]), args.work[2], args.work[3], float(args.work[4]))
    stores = [name.strip().lower() for name in args.stores.split(",") if name.strip()]
    folder = tempfile.mkdtemp(prefix="gigachat_lite-attachments-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    redis = start_redis(folder) if "redis" in stores else None
    rows = []
    try:
        for name in stores:
            if name == "none":
                label, url = "none", ""
            elif name == "file":
                label, url = "file", "file://" + os.path.join(folder, "coordination")
            elif name == "redis" and redis is not None:
                label, url = "Redis", redis.url  # type: ignore[attr-defined]
            else:
                print(f"skipping {name}", file=sys.stderr)
                continue
            print(f"running {label}...", file=sys.stderr, flush=True)
            rows.append(run_fleet(label, url, folder, args))
        cost = known_file_cost(folder, args.size, args.rounds)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    workers = args.processes * args.threads
    print(f"{args.processes} processes x {args.threads} threads = {workers} workers, {args.calls} chats each, "
          f"one {args.size} KB logo for all and a note per process ({1 + args.processes} distinct files), "
          f"uploads held {args.upload_delay:g} s, {os.cpu_count()} cores\n")
    header = ("coordination", "chats ok", "uploads", "logo uploads", "distinct files", "most ids a file", "time")
    lines = [(r["label"], f"{r['ok']}/{r['calls']}", str(r["uploads"]), str(r["logo_uploads"]), str(r["distinct"]),
              str(r["most_ids"]), f"{r['seconds']:.1f} s") for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    rule = "  ".join("=" * w for w in widths)
    print(rule)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print(rule)
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)))
    print(rule)
    print(f"\na chat with the {args.size} KB logo already uploaded: {cost['attached'] * 1000:.2f} ms median, "
          f"without it {cost['plain'] * 1000:.2f} ms; ratio {cost['attached'] / cost['plain']:.2f} "
          f"({args.rounds} of each, interleaved, one process)")


if __name__ == "__main__":
    main()

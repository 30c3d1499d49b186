"""Many workers on one personal key: ``python bench/fleet.py [--processes 8] [--threads 4] [--calls 200]``.

GigaChat lets a personal key (``GIGACHAT_API_PERS``) run one request at a
time and answers 429 beyond. This runs a gunicorn-like fleet (``--processes``
worker processes of ``--threads`` threads, ``--calls`` streamed chat calls in
all, default retries) against the emulator with that limit
(``max_in_flight=1``, ``Retry-After: 1``, a reply of about 70 ms), in its own
process over plain HTTP on 127.0.0.1 (at nice -5 where allowed: GigaChat's
servers do not share the fleet's CPUs; an emulator descheduled between a
reply's last byte and counting it ended would refuse the next request for its
own lag), once per store: without coordination,
the in-process store (one process of ``processes x threads`` threads, since it
cannot coordinate processes), the file store (``file://`` in a temporary
folder) and Redis (a ``redis-server`` started on a free port, skipped if there
is none). Each run gets a fresh emulator, so every count is that run's.

Before each coordinated fleet, one worker alone makes ``--alone`` calls on the
same store: the median is **one call alone**, and ``workers x one call alone``
is the **FIFO bound**, the longest a worker waits when slots go in arrival
order. The fleet then runs with ``timeout`` set to ``--timeout-factor`` times
that bound (``GIGACHAT_TIMEOUT``), so a starved call fails with
``ConcurrencyLimitTimeout`` and is counted.

First table (safety): 429s the callers saw (``RateLimitError``), 429s absorbed
by retries, calls that timed out waiting for a slot, OAuth calls (the
emulator's count), the peak in flight, wall time from the moment every worker
starts calling.

Second table (fairness and hand-off), from the emulator's own clock:

* **longest wait**: the longest time from ``chat()`` to its first chunk, and
  its ratio to the FIFO bound (goal: at most 1.5); p99 beside it. The bound is
  measured just before the fleet runs, so on a shared machine whose load
  changes meanwhile the ratio moves with it;
* **most served ahead**: the most requests the emulator served between a
  call joining the queue and its own request's arrival; first come, first
  served keeps it at most the other workers (``workers - 1``), whatever the
  machine's load;
* **utilization**: the share of the time from the first request's arrival to
  the last reply's end during which the key had a request in flight (goal: at
  least 97 %);
* **hand-off p50 / p95**: from the end of one reply (the emulator writes its
  last byte) to the arrival of the next request: the release, the wake-up of
  the next waiter, and its request on the wire (goal: p50 at most 5 ms);
* **store calls per call**: every coordination-store operation a call made on
  its own thread (the cool-down check, joining the queue, waiting, releasing),
  mean and maximum; the lease renewer's calls are counted apart (``renewals``).

Each 429 the limit sent is explained in the JSON (``refusals``): how long
before it the previous holder had released, and how long after it the
emulator counted that reply ended. Below the tables, the hand-off's median
split into its legs: the holder reading the reply's end and releasing; the
store handing the slot over until the next waiter's ``acquire`` returns; that
waiter writing its request's first bytes; the emulator reading and admitting
it. Beside the store's leg, for the file store and Redis, the same hand-over
measured with nothing else running: two processes passing one slot back and
forth (p50 of 150 rounds). The file store's folder goes in ``/dev/shm`` (``--folder``), in
memory as ``/var/run`` usually is.

Prints both tables (reStructuredText, as README.rst shows them) and writes
``bench/results/fleet-<time>.json``.
"""

from __future__ import annotations

import argparse
import bisect
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
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REPLY = "a streamed reply of six pieces, ~70 ms in all"  # pieces of 8 characters, 10 ms apart


def _env(**extra: str) -> Dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIGACHAT_")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


# -- the emulator, in its own process ---------------------------------------------------------------

def serve() -> None:
    """Print the emulator's env as one JSON line; answer ``stats`` with its ledger; stop on ``quit``."""
    from gigachat_lite.emulator import Emulator

    # GigaChat's servers do not share the fleet's CPUs; the emulator does. Descheduled between
    # writing a reply's last byte and counting the reply ended, it would refuse the next request
    # (one 429, retried after Retry-After: 1 s) for its own lag. A higher priority, where allowed,
    # keeps the figures about the fleet.
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -5)
    except (OSError, AttributeError):
        pass
    with Emulator(max_in_flight=1, retry_after=1, delay=0.01, reply=REPLY) as emu:
        ledger = emu.ledger
        spans: List[List[float]] = []  # [arrival, end] of every admitted request, on this process's clock
        open_spans: Dict[int, List[float]] = {}
        refusals: List[float] = []  # when the limit refused a request (429)
        enter, leave = ledger.enter, ledger.leave

        def timed_enter(key: str, limit: Optional[int]) -> bool:
            admitted: bool = enter(key, limit)
            if admitted:
                open_spans[threading.get_ident()] = [time.time(), 0.0]
            else:
                refusals.append(time.time())
            return admitted

        def timed_leave(key: str) -> None:
            span = open_spans.pop(threading.get_ident(), None)
            if span is not None:
                span[1] = time.time()
                spans.append(span)
            leave(key)

        # The handler thread that admits a request is the one that lets it go: one open span per thread.
        ledger.enter, ledger.leave = timed_enter, timed_leave  # type: ignore[method-assign]
        print(json.dumps({"env": emu.env(), "nice": os.getpriority(os.PRIO_PROCESS, 0)}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                key = emu.api_key
                chats = sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))
                print(json.dumps({"oauth": ledger.oauth_calls(key), "refused": ledger.refused(key),
                                  "peak": ledger.peak(key), "chat_requests": chats, "spans": spans,
                                  "refusals": refusals}), flush=True)
            elif command == "forget":  # the baseline's calls are not the fleet's
                spans.clear()
                refusals.clear()
                print(json.dumps({"oauth": ledger.oauth_calls(emu.api_key)}), flush=True)
            elif command == "quit":
                break


# -- one worker process -------------------------------------------------------------------------------

_STORE_METHODS = ("get", "set", "add", "delete", "extend", "remaining", "lease_acquire", "lease_renew", "lease_release",
                  "lease_count", "lease_queue", "lease_wait", "lease_leave", "rate_hit")


def count_store_calls() -> Tuple[threading.local, Dict[str, int]]:
    """Count every store operation: per thread (``local.calls``) and by name for the whole process."""
    from gigachat_lite.coordination import filestore, redisstore, store

    local = threading.local()
    totals: Dict[str, int] = {}
    lock = threading.Lock()

    def counted(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            local.calls = getattr(local, "calls", 0) + 1
            if name == "lease_queue" and getattr(local, "joined", None) is None:
                local.joined = time.time()  # when this call took its place in the queue
            with lock:
                totals[name] = totals.get(name, 0) + 1
            return method(*args, **kwargs)
        return wrapper

    for cls in (store.MemoryStore, filestore.FileStore, redisstore.RedisStore):
        for name in _STORE_METHODS:
            if name in vars(cls):
                setattr(cls, name, counted(name, vars(cls)[name]))
    return local, totals


def stamp_slots(stamps: Dict[str, List[float]]) -> None:
    """Note when each lease is released and when each acquire returns (the hand-off's breakdown)."""
    from gigachat_lite.coordination import limiter

    import http.client

    release, acquire = limiter.Lease.release, limiter.ConcurrencyLimiter.acquire
    send = http.client.HTTPConnection.send
    after_acquire = threading.local()

    def stamped_release(self: Any) -> None:
        if self.held:
            stamps["released"].append(time.time())
        release(self)

    def stamped_acquire(self: Any, *args: Any, **kwargs: Any) -> Any:
        lease = acquire(self, *args, **kwargs)
        stamps["acquired"].append(time.time())
        after_acquire.waiting = True
        return lease

    def stamped_send(self: Any, data: Any) -> None:
        if getattr(after_acquire, "waiting", False):  # the first bytes of the request the slot was taken for
            after_acquire.waiting = False
            stamps["sent"].append(time.time())
        send(self, data)

    limiter.Lease.release = stamped_release  # type: ignore[method-assign]
    limiter.ConcurrencyLimiter.acquire = stamped_acquire  # type: ignore[method-assign]
    http.client.HTTPConnection.send = stamped_send  # type: ignore[method-assign]


def work(threads: int, calls: int, start_at: float) -> None:
    """``calls`` streamed chats over ``threads`` threads; print what each call met as one JSON line."""
    import gigachat_lite

    local, totals = count_store_calls() if os.environ.get("GIGACHAT_COORDINATION") else (threading.local(), {})
    stamps: Dict[str, List[float]] = {"released": [], "acquired": [], "sent": []}
    if os.environ.get("GIGACHAT_COORDINATION"):
        stamp_slots(stamps)
    records: List[Dict[str, Any]] = []
    lock = threading.Lock()
    share = [calls // threads + (1 if n < calls % threads else 0) for n in range(threads)]

    def run(count: int) -> None:
        for _ in range(count):
            local.calls = 0
            local.joined = None
            started = time.time()
            first = None
            try:
                parts = []
                for chunk in gigachat_lite.chat("hi"):
                    if first is None:
                        first = time.time()
                    parts.append(chunk)
                outcome = "ok" if parts else "empty"
            except gigachat_lite.ConcurrencyLimitTimeout:
                outcome = "timeout"
            except gigachat_lite.RateLimitError:
                outcome = "429"
            except gigachat_lite.GigaChatError as exc:
                outcome = type(exc).__name__
            ended = time.time()
            with lock:
                records.append({"outcome": outcome, "start": started, "first": first, "end": ended,
                                "store_calls": local.calls, "joined": local.joined})

    pool = [threading.Thread(target=run, args=(count,)) for count in share]
    # Warm up as a long-running worker is: settings resolved, the store opened (Redis connected).
    gigachat_lite.Session()
    time.sleep(max(start_at - time.time(), 0))
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps({"records": records, "store_totals": totals, "stamps": stamps, "ended": time.time()}), flush=True)


def ping_pong(url: str, rounds: int) -> None:
    """One of two processes passing one slot back and forth: print when it released and when it acquired."""
    from gigachat_lite.coordination.limiter import ConcurrencyLimiter
    from gigachat_lite.coordination.opener import open_store

    limiter = ConcurrencyLimiter(open_store(url), limit=1)
    key = ("https://fleet.test/oauth", "ping-pong", "GIGACHAT_API_PERS")
    stamps: Dict[str, List[float]] = {"released": [], "acquired": []}
    for _ in range(rounds):
        lease = limiter.acquire(key, timeout=30)
        stamps["acquired"].append(time.time())
        time.sleep(0.005)  # the other process queues meanwhile
        stamps["released"].append(time.time())
        lease.release()
    print(json.dumps(stamps), flush=True)


def idle_hand_over(url: str, rounds: int = 150) -> float:
    """The store's hand-over alone: p50 from one process's release to the other's acquire, nothing else running."""
    players = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--ping-pong", url, str(rounds)],
                                stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT) for _ in range(2)]
    outputs = [json.loads(player.communicate(timeout=300)[0].strip().splitlines()[-1]) for player in players]
    released = sorted(t for output in outputs for t in output["released"])
    acquired = sorted(t for output in outputs for t in output["acquired"])
    gaps = []
    for stamp in released:
        i = bisect.bisect_left(acquired, stamp)
        if i < len(acquired) and acquired[i] - stamp < 0.005:  # the other player's acquire, not this one's own next
            gaps.append(acquired[i] - stamp)
    return statistics.median(gaps) if gaps else float("nan")


# -- the driver ---------------------------------------------------------------------------------------

class Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        assert self.process.stdout is not None
        hello = json.loads(self.process.stdout.readline())
        self.env: Dict[str, str] = hello["env"]
        self.nice: int = hello["nice"]

    def ask(self, command: str) -> Dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer: Dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

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


def run_workers(env: Dict[str, str], processes: int, threads: int, calls: int) -> Tuple[List[Dict[str, Any]], float]:
    """Start the worker processes together; return their outputs and the common start time."""
    start_at = time.time() + 2.0  # every interpreter is up and imported by then
    share = [calls // processes + (1 if n < calls % processes else 0) for n in range(processes)]
    workers = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--work", str(threads), str(count),
                                 repr(start_at)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
               for count in share if count]
    outputs = [json.loads(worker.communicate(timeout=900)[0].strip().splitlines()[-1]) for worker in workers]
    return outputs, start_at


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def breakdown(spans: List[List[float]], released: List[float], acquired: List[float],
              sent: List[float]) -> Dict[str, float]:
    """Medians of the hand-off's four legs, between one reply's end and the next request's arrival:
    the holder reads the reply's end and releases, the store wakes the next waiter, which prepares
    and writes its request, and the emulator reads it."""
    spans, released, acquired, sent = sorted(spans), sorted(released), sorted(acquired), sorted(sent)
    legs: Dict[str, List[float]] = {"read_release": [], "store_wake": [], "prepare": [], "wire": []}
    for (_, end), (arrival, _) in zip(spans, spans[1:]):
        r = bisect.bisect_left(released, end)
        a = bisect.bisect_right(acquired, arrival) - 1
        s = bisect.bisect_right(sent, arrival) - 1
        if r < len(released) and a >= 0 and s >= 0 and end <= released[r] <= acquired[a] <= sent[s] <= arrival:
            legs["read_release"].append(released[r] - end)
            legs["store_wake"].append(acquired[a] - released[r])
            legs["prepare"].append(sent[s] - acquired[a])
            legs["wire"].append(arrival - sent[s])
    return {name: statistics.median(values) if values else float("nan") for name, values in legs.items()}


def refusals_explained(spans: List[List[float]], refusals: List[float], released: List[float],
                       acquired: List[float]) -> List[Dict[str, float]]:
    """For each 429 of the limit: how long before it the previous holder released, and how long after it
    the emulator counted the previous reply as ended (its bookkeeping lagging the bytes it sent)."""
    released, acquired = sorted(released), sorted(acquired)
    found = []
    for refused in refusals:
        covering = [end for arrival, end in spans if arrival <= refused <= end]
        r = bisect.bisect_right(released, refused) - 1
        a = bisect.bisect_right(acquired, refused) - 1
        found.append({"released_before": refused - released[r] if r >= 0 else float("nan"),
                      "acquired_before": refused - acquired[a] if a >= 0 else float("nan"),
                      "counted_ended_after": (covering[0] - refused) if covering else float("nan")})
    return found


def served_ahead(spans: List[List[float]], records: List[Dict[str, Any]]) -> int:
    """The most requests the emulator served between a call's place in the queue and its own request's arrival.

    First come, first served, that is at most the other workers (each is
    queued once); unlike the wait in seconds it does not move with the
    machine's load. With one request in flight at a time, a call's own request
    is the last one to arrive before its first chunk.
    """
    arrivals = sorted(arrival for arrival, _ in spans)
    most = 0
    for record in records:
        if record["first"] is not None:
            own = bisect.bisect_right(arrivals, record["first"]) - 1
            since = record["joined"] if record.get("joined") is not None else record["start"]
            most = max(most, own - bisect.bisect_right(arrivals, since))
    return most


def key_figures(spans: List[List[float]]) -> Dict[str, float]:
    """Utilization of the key and the idle gaps between one reply's end and the next arrival."""
    spans = sorted(spans)
    if not spans:
        return {"utilization": float("nan"), "handoff_p50": float("nan"), "handoff_p95": float("nan")}
    busy, gaps = 0.0, []
    covered_to = spans[0][0]
    for arrival, end in spans:
        if arrival > covered_to:
            gaps.append(arrival - covered_to)
        else:
            gaps.append(0.0)  # overlapping: more than one in flight (only without coordination)
        busy += max(end - max(arrival, covered_to), 0.0)
        covered_to = max(covered_to, end)
    span = covered_to - spans[0][0]
    gaps = gaps[1:]  # the first span has no predecessor
    return {"utilization": busy / span if span > 0 else float("nan"),
            "handoff_p50": percentile(gaps, 0.5), "handoff_p95": percentile(gaps, 0.95)}


def run_fleet(label: str, coordination: str, processes: int, threads: int, calls: int, alone: int,
              timeout_factor: float) -> Dict[str, Any]:
    server = Server()
    try:
        base_env = _env(**server.env, GIGACHAT_COORDINATION=coordination) if coordination else _env(**server.env)
        single = None
        timeout = None
        baseline_oauth = 0
        if coordination:
            # One call alone, on this store, against this emulator: the unit of the FIFO bound.
            (baseline,), _ = run_workers(base_env, 1, 1, alone)
            durations = [r["end"] - r["start"] for r in baseline["records"][1:] if r["outcome"] == "ok"]
            single = statistics.median(durations)
            timeout = round(timeout_factor * processes * threads * single + 0.05, 1)
            base_env["GIGACHAT_TIMEOUT"] = str(timeout)
            baseline_oauth = server.ask("forget")["oauth"]
        outputs, start_at = run_workers(base_env, processes, threads, calls)
        stats = server.ask("stats")
        nice = server.nice
    finally:
        server.close()
    records = [record for output in outputs for record in output["records"]]
    counts: Dict[str, int] = {}
    for record in records:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    totals: Dict[str, int] = {}
    for output in outputs:
        for name, count in output["store_totals"].items():
            totals[name] = totals.get(name, 0) + count
    waits = [r["first"] - r["start"] for r in records if r["first"] is not None]
    store_calls = [r["store_calls"] for r in records]
    seen_429 = counts.get("429", 0)
    row: Dict[str, Any] = {
        "label": label, "calls": calls, "ok": counts.get("ok", 0), "user_429": seen_429,
        "retried_429": stats["refused"] - seen_429, "timeouts": counts.get("timeout", 0),
        "oauth": stats["oauth"] - baseline_oauth,
        "peak": stats["peak"], "seconds": max(output["ended"] for output in outputs) - start_at,
        "other": {k: v for k, v in counts.items() if k not in ("ok", "429", "timeout")},
        "workers": processes * threads, "single": single, "timeout": timeout, "emulator_nice": nice,
        "longest_wait": max(waits) if waits else float("nan"), "p99_wait": percentile(waits, 0.99),
        "store_calls_mean": statistics.mean(store_calls) if totals else 0.0,
        "store_calls_max": max(store_calls) if totals else 0, "store_totals": totals,
        "renewals": totals.get("lease_renew", 0),
        "waits": sorted([round(r["start"] - start_at, 4), round(r["first"] - r["start"], 4)]
                        for r in records if r["first"] is not None),
    }
    row["fifo_bound"] = row["workers"] * single if single else None
    row["served_ahead"] = served_ahead(stats["spans"], records)
    row.update(key_figures(stats["spans"]))
    row["refusals"] = refusals_explained(stats["spans"], stats["refusals"],
                                         [t for o in outputs for t in o["stamps"]["released"]],
                                         [t for o in outputs for t in o["stamps"]["acquired"]])
    row["legs"] = breakdown(stats["spans"], *([t for o in outputs for t in o["stamps"][name]]
                                              for name in ("released", "acquired", "sent")))
    return row


def _table(head: List[str], body: List[List[str]]) -> str:
    widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)
    fmt = lambda line: "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, fmt(head), rule] + [fmt(line) for line in body] + [rule])


def table(rows: List[Dict[str, Any]]) -> str:
    head = ["coordination", "calls ok", "429s seen", "429s retried", "timed out", "OAuth calls", "peak in flight",
            "total time"]
    body = [[r["label"], f"{r['ok']}/{r['calls']}", str(r["user_429"]), str(r["retried_429"]), str(r["timeouts"]),
             str(r["oauth"]), str(r["peak"]), f"{r['seconds']:.1f} s"] for r in rows]
    return _table(head, body)


def fairness_table(rows: List[Dict[str, Any]]) -> str:
    head = ["coordination", "one call alone", "FIFO bound", "longest wait", "p99 wait", "most served ahead",
            "utilization", "hand-off p50 / p95", "store calls per call"]
    body = []
    for r in rows:
        if r["fifo_bound"] is None:
            continue
        body.append([
            r["label"], f"{r['single'] * 1000:.0f} ms", f"{r['fifo_bound']:.2f} s",
            f"{r['longest_wait']:.2f} s ({r['longest_wait'] / r['fifo_bound']:.2f}x)",
            f"{r['p99_wait']:.2f} s", f"{r['served_ahead']} (FIFO: {r['workers'] - 1})", f"{r['utilization'] * 100:.1f} %",
            f"{r['handoff_p50'] * 1000:.1f} / {r['handoff_p95'] * 1000:.1f} ms",
            f"{r['store_calls_mean']:.1f} (max {r['store_calls_max']})",
        ])
    return _table(head, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--alone", type=int, default=15, help="calls of the one-worker baseline (the first is not counted)")
    parser.add_argument("--timeout-factor", type=float, default=2.0,
                        help="the fleet's timeout, in FIFO bounds (a starved call fails with ConcurrencyLimitTimeout)")
    parser.add_argument("--stores", default="none,memory,file,redis", help="comma-separated: none, memory, file, redis")
    parser.add_argument("--folder", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the file store's temporary folder goes (default: /dev/shm, in memory, as /var/run is)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--ping-pong", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ping_pong:
        return ping_pong(args.ping_pong[0], int(args.ping_pong[1]))
    if args.serve:
        return serve()
    if args.work:
        return work(int(args.work[0]), int(args.work[1]), float(args.work[2]))
    stores = [name.strip().lower() for name in args.stores.split(",") if name.strip()]
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    folder = tempfile.mkdtemp(prefix="gigachat_lite-fleet-", dir=args.folder)
    redis = start_redis(folder) if "redis" in stores else None
    rows = []
    try:
        for name in stores:
            processes, threads = args.processes, args.threads
            if name == "none":
                label, url = "none", ""
            elif name == "memory":  # one process: the in-process store coordinates threads only
                label, url = f"memory (1 x {processes * threads})", "memory://"
                processes, threads = 1, processes * threads
            elif name == "file":
                label, url = "file", "file://" + os.path.join(folder, "coordination")
            elif name == "redis" and redis is not None:
                label, url = "Redis", redis.url  # type: ignore[attr-defined]
            else:
                print(f"skipping {name}", file=sys.stderr)
                continue
            print(f"running {label}...", file=sys.stderr, flush=True)
            row = run_fleet(label, url, processes, threads, args.calls, args.alone, args.timeout_factor)
            if name in ("file", "redis"):  # across processes: the store's hand-over with nothing else running
                row["idle_hand_over"] = idle_hand_over(url)
            rows.append(row)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.processes} processes x {args.threads} threads, {args.calls} streamed chat calls, "
          f"personal-key limit 1 (emulator), default retries, timeout {args.timeout_factor:g} x the FIFO bound, "
          f"file store in {os.path.dirname(folder)}, {os.cpu_count()} cores, load average before "
          f"{load_before:.1f}, emulator at nice {rows[0]['emulator_nice'] if rows else '?'}\n")
    print(table(rows))
    print()
    print(fairness_table(rows))
    print("\nhand-off p50 by leg (reply end -> released -> next waiter's acquire returns -> its request's first"
          " bytes written -> the emulator admits it):")
    for r in rows:
        if r["fifo_bound"] is not None:
            legs = r["legs"]
            idle = r.get("idle_hand_over")
            print(f"  {r['label']}: " + " + ".join(f"{legs[leg] * 1000:.2f}" for leg in
                                                   ("read_release", "store_wake", "prepare", "wire")) + " ms"
                  + ("" if idle is None else f" (the store's hand-over between two otherwise idle processes: "
                                             f"{idle * 1000:.2f} ms)"))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", time.strftime("fleet-%Y%m%d-%H%M%S.json"))
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"processes": args.processes, "threads": args.threads, "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()

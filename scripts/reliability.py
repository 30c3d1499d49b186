"""Run the reliability scenarios and print one table of figures.

    python scripts/reliability.py

The scenarios are the test suite's own tables and runners (tests/test_fault_matrix.py,
test_concurrency.py, test_bad_input.py, test_secrets.py, test_files.py, test_hostile*.py), run
directly against the local emulator on 127.0.0.1. Nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import tempfile
import time
from typing import Any, List, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from reliability_support import reset_state  # noqa: E402


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def faults() -> List[Tuple[str, Any]]:
    import test_fault_matrix as m

    tried = recovered = typed = duplicates = hangs = unreleased = wrong = 0
    with m.make_emulator() as emu:
        for row in m.ROWS:
            outcome = m.run_row(row, emu)
            tried += 1
            recovered += outcome.recovered and row.expect is None
            typed += outcome.typed
            duplicates += outcome.duplicates
            hangs += outcome.hang
            unreleased += outcome.checked_out
            try:
                m.check(outcome)
            except AssertionError as exc:
                wrong += 1
                print(f"  row not as expected: {exc}", file=sys.stderr)
    return [("faults tried", tried), ("  recovered transparently", recovered), ("  raised as the expected typed error", typed),
            ("  outcome not exactly as specified", wrong), ("  chunks duplicated", duplicates), ("  hangs", hangs),
            ("  connections not released", unreleased)]


def load() -> List[Tuple[str, Any]]:
    import test_concurrency as c
    from gigachat_lite.emulator import Emulator

    with Emulator(tls=True) as emu:
        threads = c.run_thread_load(emu)
        streams = c.run_async_load(emu)
        cancel = c.run_async_cancel(emu)
    return [
        (f"requests under load ({threads['threads']} threads, TLS)", threads["calls"]),
        ("  errors", threads["errors"] + threads["wrong"] + threads["hung"]),
        (f"  OAuth calls ({threads['elapsed']:.1f} s, token ttl {threads['ttl']:g} s)",
         f"{threads['oauth']} (bound {threads['windows'] + 2}, threads {threads['threads']})"),
        ("async streams at once / completed", f"{streams['streams']} / {streams['completed']}"),
        ("  worst event-loop lag", f"{streams['max_lag'] * 1000:.0f} ms"),
        ("async streams cancelled midway", cancel["cancelled"]),
        ("  threads before / after", f"{cancel['threads_before']} / {cancel['threads_after']}"),
        ("  open fds before / after", f"{cancel['fds_before']} / {cancel['fds_after']}"),
    ]


def bad_inputs() -> List[Tuple[str, Any]]:
    import test_bad_input as b
    from gigachat_lite.emulator import Emulator

    rejected = 0
    with Emulator() as emu:
        cases = b.all_cases()
        for entry, case in cases:
            ok, detail = b.run_case(entry, case, emu)
            rejected += ok
            if not ok:
                print(f"  bad input accepted or mis-reported: {entry} {case.name}: {detail}", file=sys.stderr)
        sent = len(emu.requests)
    return [(f"bad inputs tried ({len(b.CASES)} inputs x entry points)", len(cases)),
            ("  rejected locally, naming the item", rejected), ("  requests that reached the server", sent)]


def secrets() -> List[Tuple[str, Any]]:
    import test_secrets as s

    handler = _Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        emu, issued = s.recording_emulator()
        with emu:
            texts = s.run_scenarios(emu)
        texts += s.log_texts(handler.records) + s.cache_files()
        leaks = s.find_leaks(texts, s.secrets_of(emu, issued))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    for leak in leaks:
        print(f"  LEAK: {leak}", file=sys.stderr)
    return [(f"secrets searched ({len(issued)} tokens + key + proxy password)", f"{len(texts)} texts, {len(handler.records)} log records"),
            ("  secrets leaked", len(leaks))]


def files() -> List[Tuple[str, Any]]:
    import test_files as f

    with tempfile.TemporaryDirectory() as folder:
        figures = f.concurrent_writers(pathlib.Path(folder))
    return [("CA bundle reads during 10 concurrent writers", figures["reads"]),
            ("  partial, corrupt or missing", figures["corrupt"] + figures["missing"])]


def hostile() -> List[Tuple[str, Any]]:
    import gc
    import random
    import threading
    import tracemalloc

    import hostile_servers as h
    import test_hostile as t
    import test_hostile_streams as ts

    import gigachat_lite

    rng = random.Random(12)
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    kinds = {"complete": 0, "typed": 0, "shortened": 0, "hang": 0}
    worst = 0.0
    for _ in range(int(os.environ.get("HOSTILE_CASES", "200"))):  # any bytes x any split x any compression x any framing (the property test's space)
        texts = ["".join(rng.choice("aбв🙂 \n\"") for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(0, 6))]
        outcome = h.stream_case(texts, rng.choice(["whole", "truncated", "wire cut", "garbage"]), rng.randrange(10**6),
                                rng.randbytes(rng.randint(0, 300)), rng.choice(["identity", "gzip", "deflate"]),
                                rng.choice(["length", "chunked", "close"]), [rng.randrange(10**6) for _ in range(rng.randint(0, 8))])
        kinds[outcome.kind] += 1
        worst = max(worst, outcome.elapsed)
    named = bounded = 0
    for stream in (True, False):  # headers trickled one byte per 100 ms, deadline=1
        with h.RawServer(t._trickled_headers) as server:
            started = time.monotonic()
            try:
                list(gigachat_lite.chat("hi", stream=stream, **server.config(deadline=1, max_retries=3)))
            except gigachat_lite.DeadlineExceeded:
                bounded += time.monotonic() - started < 2
            named += 1
    payload = h.response(200, b"", {"Content-Type": "text/event-stream"}, length=False) + b"data: " + b"x" * (50 << 20)
    with h.RawServer(lambda conn, request: conn.sendall(payload)) as server:  # type: ignore[func-returns-value]
        tracemalloc.start()
        started = time.monotonic()
        line_error = "no error"
        try:
            list(gigachat_lite.chat("hi", **server.config()))
        except gigachat_lite.GigaChatError as exc:
            line_error = type(exc).__name__
        line_time, line_peak = time.monotonic() - started, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    busy = h.response(503, b'{"status": 503, "message": "busy"}', {"Retry-After": "25"})
    with h.RawServer(lambda conn, request: conn.sendall(busy) or True) as server:  # type: ignore[func-returns-value]
        started = time.monotonic()
        retry_error = "no error"
        try:
            gigachat_lite.chat("hi", stream=False, **server.config(deadline=2, max_retries=3))
        except gigachat_lite.GigaChatError as exc:
            retry_error = type(exc).__name__
        retry_time = time.monotonic() - started
    leaked, echoed = 0, 0
    for status in (400, 401, 500):
        for as_json in (True, False):
            with h.RawServer(ts._echo_authorization(status, as_json)) as server:
                try:
                    gigachat_lite.chat("hi", stream=False, **server.config())
                except gigachat_lite.GigaChatError as exc:
                    echoed += 1
                    leaked += bool(ts._leaks(exc, h.TOKEN))
    gigachat_lite.reset()
    time.sleep(0.5)  # the servers' threads wind down
    gc.collect()  # responses in reference cycles hold sockets until collected
    return [("hostile streams tried (bytes x splits x gzip/deflate x framing)", sum(kinds.values())),
            ("  complete and whole / typed error", f"{kinds['complete']} / {kinds['typed']}"),
            ("  silently shortened", kinds["shortened"]), ("  hangs", kinds["hang"]),
            ("  slowest outcome (deadline 5 s)", f"{worst:.1f} s"),
            ("headers trickled 1 byte / 100 ms, deadline=1", f"{bounded} of {named} ended within 2 s"),
            ("one 50 MB SSE line (limit 4 MiB)", f"{line_error}, {line_time:.2f} s, peak {line_peak / 2**20:.0f} MiB"),
            ("503 + Retry-After: 25, 3 retries, deadline=2", f"{retry_error} after {retry_time:.2f} s"),
            ("server errors echoing the token", echoed), ("  secrets leaked", leaked),
            ("  open fds / threads before -> after (+1: the deadline watchdog)",
             f"{fds} / {threads} -> {len(os.listdir('/proc/self/fd'))} / {threading.active_count()}")]


def dropped_streams() -> List[Tuple[str, Any]]:
    from reliability_support import abandon_streams

    from gigachat_lite.emulator import Emulator

    with Emulator(piece_size=2) as emu:
        try:
            f = abandon_streams(emu, 5000)
        except Exception as exc:  # Hang: the loop did not finish
            return [("streams dropped in cycles, GC forced under the pool lock", f"{type(exc).__name__}: {exc}"),
                    ("  deadlocked", 1)]
    return [("streams dropped in cycles, GC forced under the pool lock", f"{f['dropped']} in {f['seconds']:.0f} s"),
            ("  deadlocked", 0),
            ("  open fds / threads before -> after", f"{f['fds_before']} / {f['threads_before']} -> "
                                                     f"{f['fds_after']} / {f['threads_after']}")]


def coordination() -> List[Tuple[str, Any]]:
    """Issue 20 items 9-11 (tests/coordination_reliability.py): pauses, clock steps, Redis restarts."""
    import coordination_reliability

    return [(str(name), value) for name, value in coordination_reliability.figures()]


def command_line() -> List[Tuple[str, Any]]:
    """Issue 20 item 14: a hostile reply cut at every size, through the command line on a terminal."""
    import test_cli_hostile

    from gigachat_lite.emulator import Emulator

    with Emulator() as emu:
        found = test_cli_hostile.every_split(emu)
    return [(f"command line: a hostile reply cut at every size ({key})", value) for key, value in found.items()]


def round_three() -> List[Tuple[str, Any]]:
    """Issue 20's cases: cancellation, bounded caches, linear fragments, lying replies, tokens, paths, secrets."""
    import asyncio
    import base64
    import gc
    import json
    import shutil
    import socket
    import ssl

    import hostile_servers as h

    import gigachat_lite
    from gigachat_lite import InvalidResponseError, aio
    from gigachat_lite.auth import TOKENS
    from gigachat_lite.emulator import Emulator, Fault

    rows: List[Tuple[str, Any]] = []
    # 1. An aio call cancelled while its reply's headers are stalled (30 s): how soon the slot serves the next call.
    with Emulator() as emu:
        config = {**emu.client_config(), "coordination": "memory://", "max_concurrency": 1, "timeout": 10}
        emu.add_fault(Fault(path="chat/completions", stall=30, times=1))

        async def cancelled_then_next() -> float:
            task = asyncio.ensure_future(aio.chat("stalled", **config).__anext__())
            while not any(r.path.endswith("/chat/completions") for r in emu.requests):
                await asyncio.sleep(0.01)
            task.cancel()
            started = time.monotonic()
            try:
                await task
            except asyncio.CancelledError:
                pass
            "".join([c async for c in aio.chat("next", **config)])
            return time.monotonic() - started

        rows.append(("aio chat cancelled before its headers (server stalls 30 s), personal key",
                     f"next call served after {asyncio.run(cancelled_then_next()):.2f} s"))
    # 2. Caches: 300 keys; 30 rewrites of a CA bundle.
    keys = [base64.b64encode(f"client-{i}:secret".encode()).decode() for i in range(300)]
    with Emulator(keys=keys) as emu:
        for key in keys:
            with gigachat_lite.Session(api_key=key, base_url=emu.base_url, auth_url=emu.auth_url) as session:
                session.models()
    rows.append(("token cache after 300 keys", f"{len(TOKENS)} kept (bound {TOKENS.max_keys})"))
    with Emulator(tls=True) as emu, tempfile.TemporaryDirectory() as folder:
        bundle = pathlib.Path(folder) / "bundle.pem"
        assert emu.ca_bundle is not None
        shutil.copy(emu.ca_bundle, bundle)
        with gigachat_lite.Session(**{**emu.client_config(), "ca_bundle": str(bundle)}) as session:
            session.models()
            gc.collect()
            before = sum(isinstance(o, ssl.SSLContext) for o in gc.get_objects())
            for i in range(30):
                bundle.write_bytes(pathlib.Path(emu.ca_bundle).read_bytes() + b"\n" * (i + 1))
                session.models()
            gc.collect()
            after = sum(isinstance(o, ssl.SSLContext) for o in gc.get_objects())
    rows.append(("SSL contexts after 30 rewrites of the CA bundle", f"+{after - before} (the adapter keeps 4 pools)"))
    # 3. Function-call argument fragments: time for 4,000, 16,000 and 64,000 (linear: ~4x each).
    timings = []
    for count in (4000, 16000, 64000):
        text = json.dumps({"text": "x" * count})[:count] or "{}"
        events = [{"choices": [{"delta": {"function_call": {"name": "f", "arguments": piece}}, "index": 0}], "model": "m"}
                  for piece in text]
        events.append({"choices": [{"delta": {}, "index": 0, "finish_reason": "function_call"}], "model": "m"})
        body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"

        def handler(conn: socket.socket, request: Any, body: bytes = body) -> None:
            conn.sendall(h.response(200, body, {"Content-Type": "text/event-stream"}))

        with h.RawServer(handler) as server:
            stream = gigachat_lite.chat("hi", **server.config())
            started = time.process_time()
            list(stream)
            timings.append(time.process_time() - started)
    rows.append(("argument fragments 4k / 16k / 64k: CPU s (linear: x4 each)",
                 " / ".join(f"{t:.2f}" for t in timings) + f" (x{timings[1] / timings[0]:.1f}, x{timings[2] / timings[1]:.1f})"))
    # 4. A reply declaring Content-Length: 10^15.
    def huge(conn: socket.socket, request: Any) -> None:
        conn.sendall(h.response(200, b"{}", {"Content-Type": "application/json"}).replace(b"Content-Length: 2",
                                                                                          b"Content-Length: 1000000000000000"))

    with h.RawServer(huge) as server:
        started = time.monotonic()
        typed = 0
        for call in (lambda: gigachat_lite.models(**server.config()),
                     lambda: gigachat_lite.chat("x", stream=False, **server.config()),
                     lambda: gigachat_lite.file_content("f", **server.config())):
            try:
                call()
            except InvalidResponseError:
                typed += 1
        rows.append(("replies declaring Content-Length 10^15 (models, chat, file)",
                     f"{typed}/3 InvalidResponseError in {time.monotonic() - started:.2f} s"))
    return rows


def main() -> int:
    started = time.monotonic()
    logging.getLogger().addHandler(logging.NullHandler())  # urllib3's pool warnings under load: not on stderr
    cache = tempfile.mkdtemp(prefix="reliability-cache-")
    rows: List[Tuple[str, Any]] = []
    for section in (faults, load, bad_inputs, secrets, files, hostile, dropped_streams, round_three, coordination, command_line):
        reset_state(cache)
        rows += section()
    width = max(len(name) for name, _ in rows)
    value_width = max(len(str(value)) for _, value in rows)
    rule = "=" * width + "  " + "=" * value_width
    print(rule)
    print(f"{'scenario':<{width}}  {'figure':<{value_width}}")
    print(rule)
    for name, value in rows:
        print(f"{name:<{width}}  {value!s:<{value_width}}")
    print(rule)
    print(f"({time.monotonic() - started:.0f} s, Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    bad = dict(rows)
    failed = (bad["  outcome not exactly as specified"] or bad["  chunks duplicated"] or any(v for k, v in rows if k == "  hangs")
              or any(v for k, v in rows if k == "  secrets leaked") or bad["  partial, corrupt or missing"]
              or bad["  silently shortened"] or bad["  deadlocked"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

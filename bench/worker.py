"""One measurement of one client, in a fresh process: ``worker.py TASK CLIENT [ARGS as JSON]``.

The emulator's ``client_config()`` comes in ``$BENCH_CONFIG``; the result is
printed as one JSON object on the last line of stdout. Tasks:

* ``throughput``: one warm-up stream, then ``rounds`` streams of ``events``
  events: client CPU (``time.process_time()``, every thread of this process)
  and wall time of each. A client other than a floor also streams its floor
  (the raw http.client client of the same framing) in this process, one floor
  round next to each of its rounds, in ABBA order, so each round has a floor
  measured within a second of it: ``floor_rounds``. On a shared machine whose
  speed drifts over minutes, the ratio of each pair is steadier than the ratio
  of two medians taken minutes apart.
* ``ttfc``: seconds from the call to the first chunk, ``count`` times, on a
  warm connection with a valid token.
* ``rps``: ``rounds`` x ``count`` sequential non-stream calls, after warm-up.
* ``calls``: ``count`` sequential non-stream calls from cold (the runner counts
  the connections the emulator accepted).
* ``concurrent``: ``count`` streams at once (asyncio tasks, or threads for sync
  clients) against one stream alone, after one unmeasured concurrent round
  (connection pools filled, TLS handshakes done: the floor keeps one connection
  per thread across both rounds); the process's RSS after a single stream and
  its peak RSS, both reported.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clients import CLIENTS  # noqa: E402
from report import floor_of  # noqa: E402


def _rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _timed(run: Callable[[], Any]) -> Dict[str, float]:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


async def _atimed(run: Callable[[], Any]) -> Dict[str, float]:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await run()
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


def _floor(name: str, config: Dict[str, Any]) -> Any:
    """The floor to pair with client ``name`` (``None`` for a floor itself), warmed by one stream."""
    if name.startswith("floor"):
        return None
    floor = CLIENTS[floor_of(name)](config)
    floor.stream("x*100")
    return floor


def _abba(rounds: int, paired: bool) -> List[bool]:
    """The order of a throughput task's streams: ``True`` for the client's, ``False`` for its floor's (F C C F F C ...)."""
    order: List[bool] = []
    for index in range(rounds):
        order += ([False, True] if index % 2 == 0 else [True, False]) if paired else [True]
    return order


def sync_task(client: Any, task: str, args: Dict[str, Any], floor: Any = None) -> Dict[str, Any]:
    if task == "throughput":
        prompt = "x*%d" % args["events"]
        client.stream(prompt)
        rounds: List[Dict[str, float]] = []
        floors: List[Dict[str, float]] = []
        for mine in _abba(args["rounds"], floor is not None):
            if mine:
                rounds.append(_timed(lambda: client.stream(prompt)))
            else:
                floors.append(_timed(lambda: floor.stream(prompt)))
        return {"rounds": rounds, "floor_rounds": floors}
    if task == "ttfc":
        client.call("hi")
        client.stream("x*20")
        return {"seconds": [client.first("x*20") for _ in range(args["count"])]}
    if task == "rps":
        for _ in range(3):
            client.call("hi")
        rates = []
        for _ in range(args["rounds"]):
            start = time.perf_counter()
            for _ in range(args["count"]):
                client.call("hi")
            rates.append(args["count"] / (time.perf_counter() - start))
        return {"rps": rates}
    if task == "calls":
        for _ in range(args["count"]):
            client.call("hi")
        return {}
    if task == "concurrent":
        prompt = "x*%d" % args["events"]
        client.stream(prompt)
        single = statistics.median(_timed(lambda: client.stream(prompt))["wall"] for _ in range(3))
        rss = _rss_kib()
        # The floor has no pool: each thread keeps its own connection, opened (TLS
        # handshake included) in the warm-up round and reused in the measured one, as
        # our pool's connections are. Clients with a pool share the one instance.
        users = ([type(client)(client.config) for _ in range(args["count"])] if not getattr(client, "pooled", True)
                 else [client] * args["count"])
        errors: List[BaseException] = []

        def one(user: Any) -> None:
            try:
                user.stream(prompt)
            except BaseException as exc:  # reported, not hidden
                errors.append(exc)

        def all_at_once() -> None:
            threads = [threading.Thread(target=one, args=(user,)) for user in users]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        all_at_once()  # warm-up: pools fill and TLS handshakes happen here, not in the measured round
        warm_errors, errors[:] = len(errors), []
        many = _timed(all_at_once)
        return {"single": single, "many": many["wall"], "many_cpu": many["cpu"], "rss_kib": rss,
                "peak_kib": _peak_kib(), "errors": [repr(e) for e in errors[:3]], "failed": len(errors),
                "warm_failed": warm_errors}
    raise SystemExit("unknown task " + task)


async def async_task(client: Any, task: str, args: Dict[str, Any], floor: Any = None) -> Dict[str, Any]:
    if task == "throughput":
        prompt = "x*%d" % args["events"]
        await client.astream(prompt)
        rounds: List[Dict[str, float]] = []
        floors: List[Dict[str, float]] = []
        for mine in _abba(args["rounds"], floor is not None):
            if mine:
                rounds.append(await _atimed(lambda: client.astream(prompt)))
            else:
                floors.append(_timed(lambda: floor.stream(prompt)))  # sync, on the loop's thread: nothing else runs
        return {"rounds": rounds, "floor_rounds": floors}
    if task == "ttfc":
        await client.acall("hi")
        await client.astream("x*20")
        return {"seconds": [await client.afirst("x*20") for _ in range(args["count"])]}
    if task == "rps":
        for _ in range(3):
            await client.acall("hi")
        rates = []
        for _ in range(args["rounds"]):
            start = time.perf_counter()
            for _ in range(args["count"]):
                await client.acall("hi")
            rates.append(args["count"] / (time.perf_counter() - start))
        return {"rps": rates}
    if task == "calls":
        for _ in range(args["count"]):
            await client.acall("hi")
        return {}
    if task == "concurrent":
        prompt = "x*%d" % args["events"]
        await client.astream(prompt)
        singles = [(await _atimed(lambda: client.astream(prompt)))["wall"] for _ in range(3)]
        rss = _rss_kib()

        async def all_at_once() -> List[Any]:
            return await asyncio.gather(*(client.astream(prompt) for _ in range(args["count"])), return_exceptions=True)

        await all_at_once()  # warm-up: the pool fills (and TLS handshakes happen) here, not in the measured round
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        results = await all_at_once()
        many = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}
        errors = [r for r in results if isinstance(r, BaseException)]
        return {"single": statistics.median(singles), "many": many["wall"], "many_cpu": many["cpu"], "rss_kib": rss,
                "peak_kib": _peak_kib(), "errors": [repr(e) for e in errors[:3]], "failed": len(errors)}
    raise SystemExit("unknown task " + task)


def main() -> None:
    task, name = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    config = json.loads(os.environ["BENCH_CONFIG"])
    factory = CLIENTS[name]
    floor = _floor(name, config) if task == "throughput" else None
    if factory.is_async:
        async def run() -> Dict[str, Any]:
            return await async_task(factory(config), task, args, floor)

        result = asyncio.run(run())
    else:
        result = sync_task(factory(config), task, args, floor)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

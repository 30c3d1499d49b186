"""gigachat_lite against its peers and the floor: ``python bench/run.py [--quick] [--transport T]``.

The emulator runs in its own process (bench/server.py) on 127.0.0.1, over TLS
with a throwaway trustme CA and over plain HTTP (``--transport tls|http|both``,
default both); it serves v1 and v2 chat, so v1 and v2 rows meet the same
server. Every measurement runs in a fresh client process (bench/worker.py), so
imports, caches and memory do not leak between clients. Figures are shown as
median (min–max) over the rounds; every ratio is to the floor measured in the
same run over the same transport (v2 rows: the floor fed v2 framing). CPU per
event has a second ratio, "paired": each client's worker also streams the
floor, one round next to each of its own, and the column gives the median
(min–max) of those per-round ratios: the guard rails are judged on it, since a
shared machine's speed drifts between two workers minutes apart.

Prints the tables, writes ``bench/results/results-<time>.json`` and the chart
``bench/performance.png`` (the one docs/performance.rst shows) and a copy in
``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

from report import (CONCURRENT_CLIENTS, G4F_NOTE, STREAM_CLIENTS, chart_png, concurrent_table,  # noqa: E402
                    imports_table, streaming_table)

IMPORTS = [("requests", "requests"), ("gigachat_lite", "gigachat_lite"), ("gigachat (SDK)", "gigachat"),
           ("g4f GigaChat", "g4f.Provider"), ("aiohttp", "aiohttp"), ("httpx", "httpx")]


class Emulator:
    """bench/server.py in a subprocess, driven over its stdin/stdout."""

    def __init__(self, plain: bool) -> None:
        command = [sys.executable, os.path.join(HERE, "server.py")] + (["--plain"] if plain else [])
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=_env(), cwd=ROOT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the emulator did not start")
        self.config: Dict[str, str] = json.loads(line)["config"]

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        try:
            self.ask("quit")
        except (BrokenPipeError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONASYNCIODEBUG", None)
    env.update(extra)
    return env


def worker(emulator: Emulator, task: str, client: str, **args: Any) -> Optional[Dict[str, Any]]:
    command = [sys.executable, os.path.join(HERE, "worker.py"), task, client, json.dumps(args)]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(BENCH_CONFIG=json.dumps(emulator.config)),
                          cwd=ROOT, timeout=600)
    if done.returncode != 0:
        print("  ! %s %s failed:\n%s" % (task, client, done.stderr.strip()[-1500:]), file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


_PYCACHE = os.path.join(tempfile.gettempdir(), "gigachat_lite-bench-pycache")


def import_ms(module: str, repeat: int) -> float:
    """Median wall time of ``python -c 'import module'`` minus ``python -c pass``."""
    # Byte code as an installed package has it: this machine sets PYTHONDONTWRITEBYTECODE,
    # and a checkout imported without .pyc files recompiles every module on each run
    # (which read as +15 ms for gigachat_lite). A private cache folder, warmed first.
    env = _env(PYTHONPYCACHEPREFIX=_PYCACHE)
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def run(code: str) -> float:
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return (run("import " + module) - run("pass")) * 1000


def extra_import_ms(base: str, module: str, repeat: int) -> float:
    """Median time ``import module`` takes in a process that has imported ``base`` already."""
    env = _env(PYTHONPYCACHEPREFIX=_PYCACHE)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = ("import time, %s\nstart = time.perf_counter()\nimport %s\nprint(time.perf_counter() - start)"
            % (base, module))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True)  # warm .pyc
    times = [float(subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT,
                                  capture_output=True, text=True).stdout) for _ in range(repeat)]
    return statistics.median(times) * 1000


def machine() -> Dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in ("requests", "urllib3", "sseclient-py", "gigachat", "httpx", "g4f", "aiohttp"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = "-"
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(), "versions": json.dumps(versions)}


def measure(emulator: Emulator, clients: List[str], sizes: Dict[str, Any], concurrent: List[str]) -> Dict[str, Any]:
    """Every task for ``clients`` (the concurrency rows: ``concurrent``) against one emulator: raw figures."""
    events, rounds = sizes["events"], sizes["rounds"]
    results: Dict[str, Dict[str, Any]] = {name: {} for name in clients + concurrent}
    emulator.ask("delay 0")
    for name in clients:
        print("  - %-13s stream of %d events x %d" % (name, events, rounds), flush=True)
        got = worker(emulator, "throughput", name, events=events, rounds=rounds)
        if got:
            # v1: the content events, the finish event, [DONE]; v2: the deltas and the done event
            n = events + (1 if name.endswith("-v2") else 2)
            results[name]["cpu_us"] = [r["cpu"] / n * 1e6 for r in got["rounds"]]
            if got.get("floor_rounds"):  # each round over the floor round streamed next to it (worker.py)
                results[name]["cpu_paired"] = [r["cpu"] / f["cpu"] for r, f in zip(got["rounds"], got["floor_rounds"])]
            results[name]["wall_ms"] = [r["wall"] * 1000 for r in got["rounds"]]
    for name in clients:
        print("  - %-13s time to first chunk x %d" % (name, sizes["ttfc"]), flush=True)
        got = worker(emulator, "ttfc", name, count=sizes["ttfc"])
        if got:
            results[name]["ttfc_ms"] = [s * 1000 for s in got["seconds"]]
    for name in clients:
        print("  - %-13s %d non-stream calls x %d" % (name, sizes["rps"], sizes["rps_rounds"]), flush=True)
        got = worker(emulator, "rps", name, count=sizes["rps"], rounds=sizes["rps_rounds"])
        if got:
            results[name]["rps"] = got["rps"]
    for name in clients:
        emulator.ask("reset")
        if worker(emulator, "calls", name, count=100) is not None:
            results[name]["conns"] = int(emulator.ask("conns"))
    if concurrent:
        count, conc_events, delay = sizes["conc"], sizes["conc_events"], sizes["conc_delay"]
        emulator.ask("delay %g" % delay)
        for name in concurrent:
            print("  - %-13s %d concurrent streams of %d events, %g s apart" % (name, count, conc_events, delay),
                  flush=True)
            emulator.ask("reset")
            got = worker(emulator, "concurrent", name, count=count, events=conc_events)
            if got:
                got["conns"] = int(emulator.ask("conns"))
                if got["failed"]:
                    print("  ! %d streams failed: %s" % (got["failed"], got["errors"]), file=sys.stderr)
                results[name].update(conc_single_s=got["single"], conc_many_s=got["many"],
                                     conc_base_mib=got["rss_kib"] / 1024, conc_peak_mib=got["peak_kib"] / 1024,
                                     conc_extra_mib=(got["peak_kib"] - got["rss_kib"]) / 1024,
                                     conc_failed=got["failed"], conc_conns=got["conns"])
        emulator.ask("delay 0")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (fewer events, rounds and calls)")
    parser.add_argument("--transport", choices=("tls", "http", "both"), default="both",
                        help="TLS, plain HTTP or both (default)")
    parser.add_argument("--only", default="", help="comma-separated clients to run (default: all; the floors always)")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-time rows")
    options = parser.parse_args()
    quick = options.quick
    events, rounds = (5000, 3) if quick else (20000, 15)
    sizes = {"events": events, "rounds": rounds, "ttfc": 15 if quick else 60,
             "rps": 50 if quick else 200, "rps_rounds": 2 if quick else 5,
             "conc": 100, "conc_events": 40 if quick else 100, "conc_delay": 0.01 if quick else 0.02}
    import_repeat = 3 if quick else 9
    only = set(filter(None, options.only.split(",")))
    clients = [n for n in STREAM_CLIENTS if not only or n in only or n.startswith("floor")]
    concurrent = [n for n in CONCURRENT_CLIENTS if not only or n in only or n == "floor"]
    transports = {"tls": ["TLS"], "http": ["HTTP"], "both": ["TLS", "HTTP"]}[options.transport]

    info = machine()
    print("machine: %s CPU(s), %s, Python %s (shared with other jobs: figures vary run to run)"
          % (info["nproc"], info["cpu"], info["python"]))
    print("versions:", info["versions"])
    started = time.perf_counter()
    by_transport: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for transport in transports:
        emulator = Emulator(plain=transport == "HTTP")
        print("%s: emulator %s, own process (pid %d)" % (transport, emulator.config["base_url"], emulator.process.pid))
        try:
            by_transport[transport] = measure(emulator, clients, sizes,
                                             [n for n in concurrent if transport == "TLS" or n != "lite-bundle"])
        finally:
            emulator.close()
    imports: Dict[str, Optional[float]] = {}
    asyncio_loaded = "-"
    if not options.no_imports:
        print("- imports x %d" % import_repeat, flush=True)
        for label, module in IMPORTS:
            try:
                imports[label] = import_ms(module, import_repeat)
            except subprocess.CalledProcessError:
                imports[label] = None
        # The target itself: what ``import gigachat_lite`` adds once requests is loaded, timed
        # inside the process (whole-process timings above carry ±20 ms of start-up noise).
        imports["gigachat_lite after requests"] = extra_import_ms("requests", "gigachat_lite", import_repeat)
        probe = subprocess.run([sys.executable, "-c", "import sys, gigachat_lite; print('asyncio' in sys.modules)"],
                               capture_output=True, text=True, env=_env(), cwd=ROOT)
        asyncio_loaded = probe.stdout.strip()
    elapsed = time.perf_counter() - started

    tables = []
    for transport, results in by_transport.items():
        print()
        print("Streaming over %s: %d-event streams (v1: %d events with the finish event and [DONE]; v2: %d with "
              "the done event), median (min–max) of %d rounds; first chunk of %d; calls/s of %d rounds of %d calls; "
              "ratios to the same run's floor (v2 rows: the floor fed v2 framing); "
              "paired: each round's CPU over the floor round streamed next to it in the same process"
              % (transport, events, events + 2, events + 1, rounds, sizes["ttfc"], sizes["rps_rounds"], sizes["rps"]))
        tables.append(streaming_table(results))
        print(tables[-1])
        if "g4f" in results:
            print(G4F_NOTE)
    for transport, results in by_transport.items():
        if not any("conc_many_s" in r for r in results.values()):
            continue
        print()
        print("%d concurrent streams of %d events %g s apart over %s (threads for sync clients, tasks for async; "
              "every client warmed by one unmeasured concurrent round, the floor keeping one connection per thread)"
              % (sizes["conc"], sizes["conc_events"], sizes["conc_delay"], transport))
        tables.append(concurrent_table(results))
        print(tables[-1])
    if imports:
        print()
        tables.append(imports_table(imports))
        print(tables[-1])
        print("asyncio imported by `import gigachat_lite`: %s" % asyncio_loaded)
    print("\nmachine: %s CPU(s), %s, Python %s, shared with other jobs; total %.0f s"
          % (info["nproc"], info["cpu"], info["python"], elapsed))

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {"machine": info, "command": " ".join(["python", "bench/run.py"] + sys.argv[1:]), "quick": quick,
              "sizes": sizes, "results": by_transport, "imports": imports, "asyncio_on_import": asyncio_loaded,
              "tables": tables}
    with open(os.path.join(HERE, "results", "results-%s.json" % stamp), "w") as handle:
        json.dump(record, handle, indent=1)
    chart = chart_png(by_transport, imports, info, events, os.path.join(HERE, "results", "performance-%s.png" % stamp))
    if chart and not quick and not only and options.transport == "both" and imports:
        shutil.copy(chart, os.path.join(HERE, "performance.png"))
        print("chart: bench/performance.png")
    elif chart:
        print("chart:", os.path.relpath(chart, ROOT))


if __name__ == "__main__":
    main()

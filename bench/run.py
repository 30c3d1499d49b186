"""gigachat_lite against its peers and the floor: ``python bench/run.py [--quick] [--plain]``.

The emulator runs in its own process (bench/server.py), over TLS on 127.0.0.1
with a throwaway trustme CA (``--plain``: HTTP). Every measurement runs in a
fresh client process (bench/worker.py), so imports, caches and memory do not
leak between clients; figures are medians over the rounds, and every ratio is
to the floor measured in the same run.

Prints the tables, writes ``bench/results/results-<time>.json`` and the chart
``bench/performance.png`` (the one the README shows) and a copy in
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

from clients import LABELS  # noqa: E402

STREAM_CLIENTS = ["floor", "lite", "lite-session", "lite-aio", "sdk", "sdk-async", "g4f"]
V2_CLIENTS = ["floor-v2", "lite-v2"]  # against bench/v2_standin.py until the emulator serves v2
CONCURRENT_CLIENTS = ["floor", "lite", "lite-aio", "sdk-async", "g4f"]
IMPORTS = [("requests", "requests"), ("gigachat_lite", "gigachat_lite"), ("gigachat (SDK)", "gigachat"),
           ("g4f GigaChat", "g4f.Provider"), ("aiohttp", "aiohttp"), ("httpx", "httpx")]


class Emulator:
    """bench/server.py in a subprocess, driven over its stdin/stdout."""

    def __init__(self, plain: bool, script: str = "server.py") -> None:
        command = [sys.executable, os.path.join(HERE, script)] + (["--plain"] if plain else [])
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


def fmt_ratio(value: Optional[float], base: Optional[float]) -> str:
    if value is None or not base:
        return "-"
    return "%.2f×" % (value / base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (fewer events, rounds and calls)")
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    parser.add_argument("--only", default="", help="comma-separated clients to run (default: all)")
    options = parser.parse_args()
    quick = options.quick
    events, rounds = (5000, 3) if quick else (20000, 7)
    ttfc_count = 15 if quick else 60
    rps_count, rps_rounds = (50, 2) if quick else (200, 5)
    conc_count, conc_events, conc_delay = 100, (40 if quick else 100), (0.01 if quick else 0.02)
    import_repeat = 3 if quick else 9
    only = set(filter(None, options.only.split(",")))
    pick = (lambda names: [n for n in names if not only or n in only or n == "floor"])

    info = machine()
    print("machine: %s CPU(s), %s, Python %s" % (info["nproc"], info["cpu"], info["python"]))
    print("versions:", info["versions"])
    started = time.perf_counter()
    results: Dict[str, Dict[str, Any]] = {name: {} for name in STREAM_CLIENTS}
    emulator = Emulator(options.plain)
    print("emulator: %s, own process (pid %d)" % (emulator.config["base_url"], emulator.process.pid))
    try:
        emulator.ask("delay 0")
        for name in pick(STREAM_CLIENTS):
            print("- %-13s stream of %d events x %d" % (name, events, rounds), flush=True)
            got = worker(emulator, "throughput", name, events=events, rounds=rounds)
            if got:
                n = events + 2  # the content events, the finish event, [DONE]
                results[name]["cpu_us"] = statistics.median(r["cpu"] for r in got["rounds"]) / n * 1e6
                results[name]["wall_ms"] = statistics.median(r["wall"] for r in got["rounds"]) * 1000
                results[name]["cpu_us_all"] = [r["cpu"] / n * 1e6 for r in got["rounds"]]
        for name in pick(STREAM_CLIENTS):
            print("- %-13s time to first chunk x %d" % (name, ttfc_count), flush=True)
            got = worker(emulator, "ttfc", name, count=ttfc_count)
            if got:
                results[name]["ttfc_ms"] = statistics.median(got["seconds"]) * 1000
        for name in pick(STREAM_CLIENTS):
            print("- %-13s %d non-stream calls x %d" % (name, rps_count, rps_rounds), flush=True)
            got = worker(emulator, "rps", name, count=rps_count, rounds=rps_rounds)
            if got:
                results[name]["rps"] = statistics.median(got["rps"])
        for name in pick(STREAM_CLIENTS):
            emulator.ask("reset")
            got = worker(emulator, "calls", name, count=100)
            if got is not None:
                results[name]["conns"] = int(emulator.ask("conns"))
        emulator.ask("delay %g" % conc_delay)
        for name in pick(CONCURRENT_CLIENTS):
            print("- %-13s %d concurrent streams of %d events, %g s apart" % (name, conc_count, conc_events, conc_delay),
                  flush=True)
            got = worker(emulator, "concurrent", name, count=conc_count, events=conc_events)
            if got:
                if got["failed"]:
                    print("  ! %d streams failed: %s" % (got["failed"], got["errors"]), file=sys.stderr)
                results[name].update(conc_single_s=got["single"], conc_many_s=got["many"],
                                     conc_mib=(got["peak_kib"] - got["rss_kib"]) / 1024, conc_failed=got["failed"])
        emulator.ask("delay 0")
    finally:
        emulator.close()
    v2_results: Dict[str, Dict[str, Any]] = {}
    if not only or only & set(V2_CLIENTS):
        standin = Emulator(options.plain, "v2_standin.py")
        try:
            for name in V2_CLIENTS:
                print("- %-13s v2 stream of %d events x %d" % (name, events, rounds), flush=True)
                got = worker(standin, "throughput", name, events=events, rounds=rounds)
                if got:
                    n = events + 1  # the delta events and the done event (v2 has no [DONE])
                    v2_results[name] = {"cpu_us": statistics.median(r["cpu"] for r in got["rounds"]) / n * 1e6,
                                        "wall_ms": statistics.median(r["wall"] for r in got["rounds"]) * 1000}
        finally:
            standin.close()
    imports = {}
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

    floor = results["floor"]
    print()
    print("Streaming (%s, %d events per stream, median of %d rounds; ratios to the floor)"
          % ("HTTP" if options.plain else "TLS", events + 2, rounds))
    header = ("client", "CPU µs/event", "vs floor", "wall ms", "vs floor", "first chunk ms", "Δ floor ms",
              "calls/s", "vs floor", "conns/100")
    rows = []
    for name in STREAM_CLIENTS:
        r = results[name]
        if not r:
            continue
        rows.append((
            LABELS[name],
            "%.2f" % r["cpu_us"] if "cpu_us" in r else "-", fmt_ratio(r.get("cpu_us"), floor.get("cpu_us")),
            "%.0f" % r["wall_ms"] if "wall_ms" in r else "-", fmt_ratio(r.get("wall_ms"), floor.get("wall_ms")),
            "%.2f" % r["ttfc_ms"] if "ttfc_ms" in r else "-",
            "%+.2f" % (r["ttfc_ms"] - floor["ttfc_ms"]) if "ttfc_ms" in r and "ttfc_ms" in floor else "-",
            "%.0f" % r["rps"] if "rps" in r else "-", fmt_ratio(r.get("rps"), floor.get("rps")),
            str(r.get("conns", "-")),
        ))
    table_streaming = _table(header, rows)
    print(table_streaming)
    print()
    table_v2 = ""
    if v2_results:
        base = v2_results.get("floor-v2", {})
        print("v2 streaming (named events, %s, stand-in bench/v2_standin.py, %d events; ratios to the v2 floor)"
              % ("HTTP" if options.plain else "TLS", events + 1))
        table_v2 = _table(("client", "CPU µs/event", "vs floor", "wall ms", "vs floor"), [
            (LABELS[name], "%.2f" % r["cpu_us"], fmt_ratio(r["cpu_us"], base.get("cpu_us")),
             "%.0f" % r["wall_ms"], fmt_ratio(r["wall_ms"], base.get("wall_ms"))) for name, r in v2_results.items()])
        print(table_v2)
        print()
    print("%d concurrent streams of %d events %g s apart (threads for sync clients, tasks for async)"
          % (conc_count, conc_events, conc_delay))
    rows = []
    for name in CONCURRENT_CLIENTS:
        r = results[name]
        if "conc_many_s" not in r:
            continue
        rows.append((LABELS[name] + (" (threads)" if name in ("floor", "lite") else ""),
                     "%.2f" % r["conc_single_s"], "%.2f" % r["conc_many_s"],
                     "%.2f×" % (r["conc_many_s"] / r["conc_single_s"]), "%.1f" % r["conc_mib"],
                     str(r.get("conc_failed", 0))))
    table_concurrent = _table(("client", "1 stream s", "100 streams s", "ratio", "peak MiB", "failed"), rows)
    print(table_concurrent)
    print()
    rows = [(label, "%.1f" % value if value is not None else "-",
             "+%.1f" % value if label.endswith("after requests") else
             "%+.1f" % (value - imports["requests"]) if value is not None and imports.get("requests") is not None else "-")
            for label, value in imports.items()]
    table_imports = _table(("import", "ms", "vs requests"), rows)
    print(table_imports)
    print("asyncio imported by `import gigachat_lite`: %s" % asyncio_loaded)
    print("\nmachine: %s CPU(s), %s, Python %s; total %.0f s" % (info["nproc"], info["cpu"], info["python"], elapsed))

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {"machine": info, "quick": quick, "tls": not options.plain, "events": events + 2, "rounds": rounds,
              "results": results, "v2_results": v2_results, "imports": imports, "asyncio_on_import": asyncio_loaded,
              "tables": [table_streaming, table_v2, table_concurrent, table_imports]}
    with open(os.path.join(HERE, "results", "results-%s.json" % stamp), "w") as handle:
        json.dump(record, handle, indent=1)
    chart = chart_png(results, imports, info, events + 2, not options.plain, os.path.join(HERE, "results", "performance-%s.png" % stamp))
    if chart and not quick and not only:
        shutil.copy(chart, os.path.join(HERE, "performance.png"))
        print("chart: bench/performance.png")
    elif chart:
        print("chart:", os.path.relpath(chart, ROOT))


def _table(header: tuple, rows: List[tuple]) -> str:
    """An RST simple table."""
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, line(header), rule] + [line(r) for r in rows] + [rule])


def chart_png(results: Dict[str, Dict[str, Any]], imports: Dict[str, Optional[float]], info: Dict[str, str],
              events: int, tls: bool, path: str) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no chart)")
        return None
    names = [n for n in STREAM_CLIENTS if results[n]]
    colours = {"floor": "#888888", "lite": "#1f77b4", "lite-session": "#4a98d3", "lite-aio": "#7fb8e6",
               "sdk": "#d62728", "sdk-async": "#f08080", "g4f": "#2ca02c"}
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))

    def bars(ax: Any, key: str, title: str, unit: str, clients: List[str], scale: float = 1.0) -> None:
        shown = [n for n in clients if key in results[n]]
        values = [results[n][key] * scale for n in shown]
        y = range(len(shown))
        ax.barh(list(y), values, color=[colours[n] for n in shown])
        ax.set_yticks(list(y))
        ax.set_yticklabels([LABELS[n] for n in shown], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit, fontsize=8)
        for i, v in zip(y, values):
            ax.text(v, i, " %.3g" % v, va="center", fontsize=7)
        if "floor" in shown:
            ax.axvline(results["floor"][key] * scale, color="#444444", lw=0.8, ls="--")

    bars(axes[0][0], "cpu_us", "client CPU per event (%d-event stream)" % events, "µs (lower is better)", names)
    bars(axes[0][1], "wall_ms", "wall time of the stream", "ms (lower is better)", names)
    bars(axes[0][2], "ttfc_ms", "time to first chunk, warm connection", "ms (lower is better)", names)
    bars(axes[1][0], "rps", "sequential non-stream calls", "calls/s (higher is better)", names)
    conc = [n for n in CONCURRENT_CLIENTS if "conc_many_s" in results[n]]
    for n in conc:
        results[n]["conc_ratio"] = results[n]["conc_many_s"] / results[n]["conc_single_s"]
    bars(axes[1][1], "conc_ratio", "100 concurrent streams: time / one stream's", "× (lower is better; target 1.5)", conc)
    axes[1][1].axvline(1.5, color="#aa0000", lw=0.8, ls=":")
    ax = axes[1][2]
    shown = [(label, v) for label, v in imports.items() if v is not None and not label.endswith("after requests")]
    ax.barh(range(len(shown)), [v for _, v in shown], color="#9467bd")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([label for label, _ in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_title("import time", fontsize=10)
    ax.set_xlabel("ms (lower is better)", fontsize=8)
    for i, (_, v) in enumerate(shown):
        ax.text(v, i, " %.0f" % v, va="center", fontsize=7)
    fig.suptitle("gigachat_lite vs peers and the floor — emulator in its own process over %s on 127.0.0.1; "
                 "%s CPU(s) %s, Python %s" % ("TLS" if tls else "HTTP", info["nproc"], info["cpu"], info["python"]),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()

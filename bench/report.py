"""The tables and the chart of bench/run.py, from its raw per-round figures.

Every figure is shown as the median over the rounds with the min and max
beside it; every ratio is a median over the same run's floor median. v1 rows
are compared with the v1 floor, v2 rows with the floor fed v2 framing.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from clients import LABELS

Results = Dict[str, Dict[str, Any]]

STREAM_CLIENTS = ["floor", "lite", "lite-session", "lite-aio", "sdk", "sdk-async", "g4f",
                  "floor-v2", "lite-v2", "lite-aio-v2"]
CONCURRENT_CLIENTS = ["floor", "lite", "lite-bundle", "lite-aio", "sdk-async", "g4f"]
COLOURS = {"floor": "#888888", "lite": "#1f77b4", "lite-session": "#4a98d3", "lite-aio": "#7fb8e6",
           "sdk": "#d62728", "sdk-async": "#f08080", "g4f": "#2ca02c",
           "lite-bundle": "#3b6f99", "floor-v2": "#aaaaaa", "lite-v2": "#17becf", "lite-aio-v2": "#9edae5"}
G4F_NOTE = ("g4f opens a new connection (TCP + TLS handshake) and a new OAuth token request per call "
            "(conns/100), so its calls/s mostly measures handshakes, not its own code.")


def floor_of(name: str) -> str:
    return "floor-v2" if name.endswith("-v2") else "floor"


def med(values: Optional[Sequence[float]]) -> Optional[float]:
    return statistics.median(values) if values else None


def spread(values: Optional[Sequence[float]], form: str) -> str:
    """``median (min–max)``."""
    if not values:
        return "-"
    return ("%s (%s–%s)" % (form, form, form)) % (statistics.median(values), min(values), max(values))


def ratio(value: Optional[float], base: Optional[float]) -> str:
    if value is None or not base:
        return "-"
    return "%.2f×" % (value / base)


def table(header: Tuple[str, ...], rows: List[Tuple[str, ...]]) -> str:
    """An RST simple table."""
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, line(header), rule] + [line(r) for r in rows] + [rule])


def streaming_table(results: Results) -> str:
    header = ("client", "CPU µs/event", "vs floor", "paired", "wall ms", "vs floor", "first chunk ms", "Δ floor ms",
              "calls/s", "vs floor", "conns/100")
    rows = []
    for name in STREAM_CLIENTS:
        r, base = results.get(name) or {}, results.get(floor_of(name)) or {}
        if not r:
            continue
        ttfc, base_ttfc = med(r.get("ttfc_ms")), med(base.get("ttfc_ms"))
        rows.append((
            LABELS[name],
            spread(r.get("cpu_us"), "%.2f"), ratio(med(r.get("cpu_us")), med(base.get("cpu_us"))),
            spread(r.get("cpu_paired"), "%.2f×"),
            spread(r.get("wall_ms"), "%.0f"), ratio(med(r.get("wall_ms")), med(base.get("wall_ms"))),
            spread(r.get("ttfc_ms"), "%.2f"),
            "%+.2f" % (ttfc - base_ttfc) if ttfc is not None and base_ttfc is not None else "-",
            spread(r.get("rps"), "%.0f"), ratio(med(r.get("rps")), med(base.get("rps"))),
            str(r.get("conns", "-")),
        ))
    return table(header, rows)


def concurrent_table(results: Results) -> str:
    rows = []
    for name in CONCURRENT_CLIENTS:
        r = results.get(name) or {}
        if "conc_many_s" not in r:
            continue
        rows.append((LABELS[name] + (" (threads)" if name in ("floor", "lite", "lite-bundle") else ""),
                     "%.2f" % r["conc_single_s"], "%.2f" % r["conc_many_s"],
                     "%.2f×" % (r["conc_many_s"] / r["conc_single_s"]),
                     "%.1f" % r["conc_base_mib"], "%.1f" % r["conc_peak_mib"],
                     "%.1f" % (r["conc_peak_mib"] - r["conc_base_mib"]), str(r.get("conc_conns", "-")),
                     str(r.get("conc_failed", 0))))
    return table(("client", "1 stream s", "100 streams s", "ratio", "RSS 1 stream MiB", "peak MiB",
                  "peak − 1 stream MiB", "conns", "failed"), rows)


def imports_table(imports: Dict[str, Optional[float]]) -> str:
    rows = [(label, "%.1f" % value if value is not None else "-",
             "+%.1f" % value if label.endswith("after requests") else
             "%+.1f" % (value - imports["requests"]) if value is not None and imports.get("requests") is not None
             else "-")
            for label, value in imports.items()]
    return table(("import", "ms", "vs requests"), rows)


def chart_png(by_transport: Dict[str, Results], imports: Dict[str, Optional[float]], info: Dict[str, str],
              events: int, path: str) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no chart)")
        return None
    tls = by_transport.get("TLS") or {}
    plain = by_transport.get("HTTP") or {}
    fig, axes = plt.subplots(2, 4, figsize=(20, 8.5))

    def bars(ax: Any, results: Results, key: str, title: str, unit: str, clients: List[str]) -> None:
        shown = [n for n in clients if (results.get(n) or {}).get(key)]
        if not shown:
            ax.set_visible(False)
            return
        values = [results[n][key] for n in shown]
        mids = [med(v) if isinstance(v, list) else v for v in values]
        lows = [m - min(v) if isinstance(v, list) else 0 for m, v in zip(mids, values)]
        highs = [max(v) - m if isinstance(v, list) else 0 for m, v in zip(mids, values)]
        y = list(range(len(shown)))
        ax.barh(y, mids, xerr=[lows, highs], color=[COLOURS[n] for n in shown], error_kw={"lw": 0.8})
        ax.set_yticks(y)
        ax.set_yticklabels([LABELS[n] for n in shown], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit, fontsize=8)
        for i, v in zip(y, mids):
            ax.text(v, i, " %.3g" % v, va="center", fontsize=7)
        if "floor" in shown:
            ax.axvline(mids[shown.index("floor")], color="#444444", lw=0.8, ls="--")

    bars(axes[0][0], tls, "cpu_us", "CPU per event, TLS (%d events; min–max bars)" % events,
         "µs (lower is better)", STREAM_CLIENTS)
    bars(axes[0][1], plain, "cpu_us", "CPU per event, plain HTTP", "µs (lower is better)", STREAM_CLIENTS)
    bars(axes[0][2], tls, "ttfc_ms", "time to first chunk, warm connection, TLS", "ms (lower is better)",
         STREAM_CLIENTS)
    bars(axes[0][3], tls, "rps", "sequential non-stream calls, TLS (g4f: a handshake per call)",
         "calls/s (higher is better)", STREAM_CLIENTS)
    conc = [n for n in CONCURRENT_CLIENTS if "conc_many_s" in (tls.get(n) or {})]
    for n in conc:
        tls[n]["conc_ratio"] = tls[n]["conc_many_s"] / tls[n]["conc_single_s"]
    bars(axes[1][0], tls, "conc_ratio", "100 concurrent streams: time / one stream's", "× (lower is better)", conc)
    bars(axes[1][1], tls, "conc_peak_mib", "100 concurrent streams: peak RSS of the process", "MiB", conc)
    bars(axes[1][2], tls, "conc_extra_mib", "100 concurrent streams: peak − RSS after one stream", "MiB", conc)
    ax = axes[1][3]
    shown = [(label, v) for label, v in imports.items() if v is not None and not label.endswith("after requests")]
    ax.barh(range(len(shown)), [v for _, v in shown], color="#9467bd")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([label for label, _ in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_title("import time", fontsize=10)
    ax.set_xlabel("ms (lower is better)", fontsize=8)
    for i, (_, v) in enumerate(shown):
        ax.text(v, i, " %.0f" % v, va="center", fontsize=7)
    fig.suptitle("gigachat_lite vs peers and the floor: emulator in its own process on 127.0.0.1; %s CPU(s) %s "
                 "(shared with other jobs), Python %s" % (info["nproc"], info["cpu"], info["python"]), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

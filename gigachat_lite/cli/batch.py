"""``batch``: a JSONL file of requests through GigaChat (:func:`gigachat_lite.run_batch`), resumable.

Progress goes through :class:`Status`, the one owner of the terminal's
stderr line, so it is drawn only on a terminal and a retry's "retrying in
2 s after 429" takes its place until the next id finishes. The run ends
with one summary line on stderr, terminal or not.
"""

from __future__ import annotations

import argparse

from .connect import open_session
from .exitcodes import EXIT_API, EXIT_OK, UsageError
from .library import BatchInputError, BatchProgress, BatchSummary, GigaChatError, run_batch
from .output import PROG, note
from .status import Status

__all__ = ["batch", "describe_progress", "describe_summary"]

_IDS_SHOWN = 3


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``4m 05s``, ``1h 02m``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def describe_progress(progress: BatchProgress) -> str:
    """``120/1000 done, 2 errors, 4.1/s, ETA 3m 34s``: the terminal's progress line."""
    parts = [f"{progress.done}/{progress.total} done"]
    if progress.errors:
        parts.append(f"{progress.errors} error{'s' if progress.errors > 1 else ''}")
    if progress.rate > 0:
        parts.append(f"{progress.rate:.1f}/s")
    if progress.eta is not None and progress.done < progress.total:
        parts.append(f"ETA {duration(progress.eta)}")
    return ", ".join(parts)


def describe_summary(summary: BatchSummary) -> str:
    """The closing line: counts, time, the failed ids (a few), and what to do about them."""
    kept = f" ({summary.skipped} kept from an earlier run)" if summary.skipped else ""
    if summary.ok:
        return f"batch: {summary.results}/{summary.total} results in {duration(summary.elapsed)}{kept} -> {summary.output}"
    ids = ", ".join(summary.failed[:_IDS_SHOWN]) + (", ..." if len(summary.failed) > _IDS_SHOWN else "")
    return (
        f"batch: {summary.results}/{summary.total} results, {summary.errors} error{'s' if summary.errors > 1 else ''}"
        f" ({'id' if summary.errors == 1 else 'ids'} {ids}) in {duration(summary.elapsed)}{kept} -> {summary.output}; run the same command again to retry them"
    )


def batch(args: argparse.Namespace, status: Status) -> int:
    session = open_session(args)  # configuration errors first, before reading any file
    try:
        summary = run_batch(
            args.input, args.output, method=args.method, remote=args.remote, poll_interval=args.poll_interval,
            on_progress=lambda progress: status.waiting(describe_progress(progress)), session=session,
        )
    except BatchInputError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{exc.filename or args.input}: {exc.strerror or type(exc).__name__}") from None
    except (GigaChatError, KeyboardInterrupt):
        status.done()
        note(f"{PROG}: batch stopped; what finished is kept in {args.output}: run the same command again to resume")
        raise
    finally:
        status.done()
        session.close()
    note(f"{PROG}: {describe_summary(summary)}")
    return EXIT_OK if summary.ok else EXIT_API

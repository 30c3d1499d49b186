"""Batch jobs: a JSONL file of GigaChat requests in, one line per id out, here or through ``/batches``.

The file format is GigaChat's own (``POST /batches``): INPUT holds one JSON
object a line, ``{"id": "<unique string>", "request": {<a body of POST
/chat/completions, or of /embeddings>}}``; OUTPUT gets one line per id,
``{"id": ..., "result": {<the API's reply>}}`` or ``{"id": ..., "error":
{"status": <int or null>, "message": "..."}}``.

:func:`run_batch` sends the requests from this process, as many at once as
the key allows (threads, each call through :meth:`Session.call`, so with the
session's retries and, when ``coordination`` is set, the fleet's slots), or
with ``remote=True`` submits the file to ``/batches``, polls it and fetches
the results file. Either way OUTPUT is the job's state:

* each finished id is appended as one line, flushed and ``fsync``-ed, so a
  run killed at any moment loses only the requests in flight;
* a re-run reads OUTPUT back (a torn last line is dropped), skips the ids
  that have a result and redoes those that ended in error;
* a complete run rewrites OUTPUT atomically (a temporary file and
  :func:`os.replace`) with exactly one line per input id, in input order.

A remote run also keeps ``OUTPUT.remote.json`` (the batch ids it submitted)
until it has their results, so a re-run after a crash polls those batches
instead of paying for them twice.
"""

from __future__ import annotations

import codecs
import collections
import json
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from ._http.deadline import Deadline, using
from .config import Config
from .errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConcurrencyLimitTimeout,
    CoordinationError,
    GigaChatError,
    InvalidResponseError,
    MissingAuthError,
    NotFoundError,
    TLSError,
)
from .results import json_reply
from .session import Session, shared_session

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .config import Options

__all__ = ["run_batch", "BatchProgress", "BatchSummary", "BatchInputError", "METHODS", "REMOTE_MAX_LINES"]

PathArg = Union[str, "os.PathLike[str]"]

#: ``method=`` names: the library's (``chat``, ``embeddings``) and ``/batches``' own (``chat_completions``, ``embedder``),
#: each to (the endpoint a line is sent to, the ``/batches?method=`` value).
METHODS: Dict[str, Tuple[str, str]] = {
    "chat": ("/chat/completions", "chat_completions"),
    "chat_completions": ("/chat/completions", "chat_completions"),
    "embeddings": ("/embeddings", "embedder"),
    "embedder": ("/embeddings", "embedder"),
}
#: Lines per ``POST /batches``: the official SDK's batching notebook says the API takes up to 500; longer jobs are split.
REMOTE_MAX_LINES = 500
# Ended without results: the documented statuses are only created, in_progress and completed, but a
# batch that failed or expired must not be polled for ever (names as other batch APIs spell them).
_FAILED_STATUSES = ("failed", "expired", "cancelled", "canceled", "cancelling", "error")
_JSON = {"Accept": "application/json"}
# Failures every request would meet: the run stops (what finished is kept) instead of writing them on every line.
_FATAL = (MissingAuthError, AuthenticationError, TLSError, APIConnectionError, CoordinationError)
_PROBLEMS_SHOWN = 5


class BatchInputError(ValueError):
    """INPUT (or the OUTPUT of an earlier run) cannot be used; raised before any request.

    Attributes:
        path: the file.
        problems: ``(line number, what is wrong)`` pairs, line 0 for the file as a whole.
    """

    def __init__(self, path: str, problems: Sequence[Tuple[int, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        shown = "; ".join(f"line {number}: {text}" if number else text for number, text in self.problems[:_PROBLEMS_SHOWN])
        more = len(self.problems) - _PROBLEMS_SHOWN
        super().__init__(f"{path}: {shown}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""))


class BatchProgress(NamedTuple):
    """Where a run stands, passed to ``on_progress`` after each finished id (remote: each poll)."""

    done: int  #: ids with an outcome: results and errors, the results kept from OUTPUT included
    total: int  #: ids in INPUT
    errors: int  #: ids that ended in error in this run
    skipped: int  #: results kept from an earlier run's OUTPUT
    elapsed: float  #: seconds since the run started
    rate: float  #: ids finished per second in this run
    eta: Optional[float]  #: seconds left at that rate; ``None`` until it is known


class BatchSummary(NamedTuple):
    """What a finished run left in OUTPUT: one line per id, in input order."""

    output: str  #: the OUTPUT path
    total: int  #: ids in INPUT (and lines in OUTPUT)
    results: int  #: ids with a result
    errors: int  #: ids with an error line (a re-run retries them)
    skipped: int  #: results kept from an earlier run instead of asked again
    elapsed: float  #: seconds the run took
    failed: Tuple[str, ...]  #: the ids that ended in error, in input order

    @property
    def ok(self) -> bool:
        """Every id has a result."""
        return self.errors == 0


ProgressCallback = Callable[[BatchProgress], Any]


# -- INPUT ------------------------------------------------------------------------------------


class _Task(NamedTuple):
    id: str
    request: Dict[str, Any]
    line: bytes  # as written in INPUT: what --remote submits
    number: int


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads takes NaN and Infinity; the API would not


def _split_lines(data: bytes) -> Iterator[Tuple[int, bytes]]:
    for number, line in enumerate(data.split(b"\n"), 1):
        yield number, line.rstrip(b"\r")


def read_tasks(path: str) -> List[_Task]:
    """Every line of INPUT checked: not JSON, missing or duplicate id, a request that is not an object, streaming.

    Raises:
        BatchInputError: naming each bad line.
        OSError: INPUT cannot be read.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]  # as some Windows editors save UTF-8
    tasks: List[_Task] = []
    problems: List[Tuple[int, str]] = []
    first_seen: Dict[str, int] = {}
    for number, line in _split_lines(data):
        if not line.strip():
            continue  # blank lines (a trailing newline's) are not requests
        try:
            item = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            problems.append((number, "not UTF-8 text"))
            continue
        except json.JSONDecodeError as exc:
            problems.append((number, f"not JSON ({exc.msg} at column {exc.colno})"))
            continue
        except ValueError as exc:  # NaN, Infinity
            problems.append((number, f"not JSON ({exc})"))
            continue
        except RecursionError:
            problems.append((number, "nested too deeply to read"))
            continue
        problem = _task_problem(item) or _unsendable(item)
        if problem is None and item["id"] in first_seen:
            problem = f"duplicate id {item['id']!r} (first on line {first_seen[item['id']]})"
        if problem is not None:
            problems.append((number, problem))
            continue
        first_seen[item["id"]] = number
        tasks.append(_Task(item["id"], item["request"], line.strip(), number))
    if not tasks and not problems:
        problems.append((0, "no requests (the file is empty)"))
    if problems:
        raise BatchInputError(path, problems)
    return tasks


def _task_problem(item: Any) -> Optional[str]:
    if not isinstance(item, dict):
        return f"a line must be a JSON object, got {_kind(item)}"
    if "id" not in item:
        return 'no "id"'
    if not isinstance(item["id"], str) or not item["id"].strip():
        return f'"id" must be a non-empty string, got {json.dumps(item["id"], ensure_ascii=False)[:40]}'
    if "request" not in item:
        return f'no "request" (id {item["id"]!r})'
    request = item["request"]
    if not isinstance(request, dict):
        return f'"request" must be a JSON object, got {_kind(request)} (id {item["id"]!r})'
    if request.get("stream") not in (None, False):
        # A batch keeps whole replies: a stream would have nothing to read it.
        return f'"stream" must be false or left out in a batch (id {item["id"]!r})'
    return None


def _unsendable(item: Dict[str, Any]) -> Optional[str]:
    """Why the line cannot be sent as JSON or written back as UTF-8, checked now rather than mid-run."""
    try:
        json.dumps(item, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return f'a lone surrogate (half of a character, such as "\\ud800") in the line (id {item["id"]!r:.40})'
    except ValueError:  # a number JSON cannot hold: 1e400 reads as infinity
        return f"a number too large for JSON (it reads as infinity) (id {item['id']!r:.40})"
    except RecursionError:
        return "nested too deeply to send"
    return None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


# -- OUTPUT -----------------------------------------------------------------------------------


def _line(task_id: str, key: str, value: Any) -> bytes:
    try:
        return (json.dumps({"id": task_id, key: value}, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a reply (half an emoji): kept, as a JSON escape
        return (json.dumps({"id": task_id, key: value}) + "\n").encode("ascii")


def _error_line(task_id: str, status: Optional[int], message: str) -> bytes:
    return _line(task_id, "error", {"status": status, "message": message})


def _outcome(item: Any) -> Optional[Tuple[str, bool]]:
    """``(id, has a result)`` of an OUTPUT line, or ``None`` when it is not one."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    if "result" in item:
        return item["id"], True
    error = item.get("error")
    if isinstance(error, dict):
        return item["id"], False
    return None


class _Output:
    """OUTPUT as the job's state: read back, appended to with fsync, rewritten atomically at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: Dict[str, Tuple[bool, bytes]] = {}  # id -> (has a result, its line)
        self._fd: Optional[int] = None

    def load(self, ids: Dict[str, _Task]) -> None:
        """Read an earlier run's lines: a result wins over an error, else the last line counts.

        Raises:
            BatchInputError: a whole line that is not an OUTPUT line, or no line for any id of
                INPUT (both mean OUTPUT is some other file: it is not overwritten).
        """
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return
        lines = list(_split_lines(data))
        if lines and lines[-1][1] == b"":
            lines.pop()  # after the final newline
        complete = data.endswith(b"\n")
        problems: List[Tuple[int, str]] = []
        found: Dict[str, Tuple[bool, bytes]] = {}
        for position, (number, line) in enumerate(lines):
            last = position == len(lines) - 1
            try:
                outcome = _outcome(json.loads(line.decode("utf-8")))
            except (ValueError, RecursionError):  # UnicodeDecodeError included
                outcome = None
            if outcome is None:
                if last and not complete:
                    continue  # torn by a crash mid-write: that id is simply done again
                if line.strip():
                    problems.append((number, "not a result or error line of a batch"))
                continue
            task_id, has_result = outcome
            if has_result or not found.get(task_id, (False, b""))[0]:
                found[task_id] = (has_result, line.strip() + b"\n")
        if problems:
            raise BatchInputError(self.path, problems + [(0, "is OUTPUT the right file? It is left as it is")])
        if found and not found.keys() & ids.keys():
            raise BatchInputError(self.path, [(0, f"holds {len(found)} lines, none for an id of INPUT: another job's output? It is left as it is")])
        self.lines = {task_id: line for task_id, line in found.items() if task_id in ids}
        self._repair(data, complete)

    def _repair(self, data: bytes, complete: bool) -> None:
        # Appends must start on a line of their own: cut a torn tail, end a whole last line.
        if complete or not data:
            return
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        with open(self.path, "r+b") as handle:
            handle.truncate(cut)
            try:
                kept = _outcome(json.loads(tail.decode("utf-8"))) is not None
            except (ValueError, RecursionError):
                kept = False
            if kept:
                handle.seek(cut)
                handle.write(tail.strip() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def open(self) -> None:
        """Open OUTPUT for appending (created if need be): a folder that is missing or not writable fails here, before any request."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def append(self, items: Sequence[Tuple[str, bool, bytes]]) -> None:
        """Write finished ids, one line each, and make them durable before returning."""
        self.open()
        assert self._fd is not None
        data = b"".join(line for _, _, line in items)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)
        for task_id, has_result, line in items:
            if has_result or not self.lines.get(task_id, (False, b""))[0]:
                self.lines[task_id] = (has_result, line)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finish(self, tasks: Sequence[_Task]) -> None:
        """Replace OUTPUT with one line per task, in order, all at once (a crash leaves the old file)."""
        self.close()
        temporary = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                for task in tasks:
                    handle.write(self.lines[task.id][1])
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        _sync_folder(self.path)


def _sync_folder(path: str) -> None:
    # The rename itself is durable only once the folder is synced (POSIX; Windows cannot open folders).
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the tally: progress and what is written --------------------------------------------------


class _Tally:
    """Counts the run and writes each finished id to OUTPUT, in the caller's thread."""

    def __init__(self, output: _Output, total: int, on_progress: Optional[ProgressCallback]) -> None:
        self.output = output
        self.total = total
        self.on_progress = on_progress
        self.skipped = sum(1 for has_result, _ in output.lines.values() if has_result)
        self.finished = 0
        self.errors = 0
        self.started = time.monotonic()

    def record(self, items: Sequence[Tuple[str, bool, bytes]], report: bool = True) -> None:
        if not items:
            return
        self.output.append(items)
        self.finished += len(items)
        self.errors += sum(1 for _, has_result, _ in items if not has_result)
        if report:
            self.report()

    def report(self, running: int = 0) -> None:
        """Tell ``on_progress``; ``running``: ids a remote batch has answered but not yet handed over."""
        if self.on_progress is None:
            return
        elapsed = time.monotonic() - self.started
        done = self.skipped + self.finished + running
        rate = (self.finished + running) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else None
        self.on_progress(BatchProgress(done, self.total, self.errors, self.skipped, elapsed, rate, eta))


# -- local: the requests sent from here -------------------------------------------------------


def _answer(session: Session, path: str, task: _Task, stopped: Callable[[], bool]) -> Optional[Tuple[str, bool, bytes]]:
    """One request, its outcome as an OUTPUT line (None: the run stopped before it was sent); the failures that would meet every request raise."""
    while True:
        try:
            response = session.call("POST", path, json=task.request, headers=_JSON)
            return task.id, True, _line(task.id, "result", json_reply(response))
        except ConcurrencyLimitTimeout:
            # The fleet kept every slot busy for a whole timeout: nothing was sent, so wait again.
            if stopped():
                return None
        except _FATAL:
            raise
        except APIError as exc:
            return task.id, False, _error_line(task.id, exc.status_code, exc.message)
        except GigaChatError as exc:
            return task.id, False, _error_line(task.id, None, str(exc))


_DONE = object()  # a worker's last word


class StopSignal(threading.Event):
    """A run's ``stop``: once set, no request starts, and no retry either (the wait before one ends at once).

    A request on the wire when it is set goes on, and its reply is kept: it
    was paid for. A retry that is not made leaves its id's last error line,
    which the next run asks again.
    """

    def __init__(self) -> None:
        super().__init__()
        self._scopes: List[Deadline] = []
        self._scopes_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._scopes_lock:
            scopes = list(self._scopes)
        for scope in scopes:
            scope.stop_retries()

    def watch(self, scope: Deadline) -> None:
        """Stop ``scope``'s retries when this is set (at once if it is)."""
        with self._scopes_lock:
            self._scopes.append(scope)
        if self.is_set():
            scope.stop_retries()


def _run_local(session: Session, path: str, tasks: Sequence[_Task], workers: int, tally: _Tally, stop: threading.Event) -> None:
    """``stop`` set from outside (an asyncio task cancelled): no request starts after it, those in flight are written."""
    work: Deque[_Task] = collections.deque(tasks)
    finished: "queue.Queue[Any]" = queue.Queue()
    leaving = StopSignal()  # this thread is on its way out (Ctrl-C, an exception): the workers stop too

    def stopped() -> bool:
        return stop.is_set() or leaving.is_set()

    def worker() -> None:
        scope = Deadline()  # every request of this worker under it: a stop ends their retries
        for signal in (stop, leaving):
            if isinstance(signal, StopSignal):
                signal.watch(scope)
        try:
            with using(scope):
                while not stopped():
                    try:
                        task = work.popleft()
                    except IndexError:
                        return
                    outcome = _answer(session, path, task, stopped)
                    if outcome is None:
                        return
                    finished.put(outcome)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            finished.put(exc)
        finally:
            finished.put(_DONE)

    threads = [threading.Thread(target=worker, name=f"gigachat_lite-batch-{n}", daemon=True) for n in range(min(workers, len(tasks)))]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            items = [finished.get()]
            while True:  # whatever else is ready goes out with the same fsync
                try:
                    items.append(finished.get_nowait())
                except queue.Empty:
                    break
            running -= sum(1 for item in items if item is _DONE)
            tally.record([item for item in items if isinstance(item, tuple)])  # kept even when a failure came with them
            failure = next((item for item in items if isinstance(item, BaseException)), None)
            if failure is not None:
                raise failure
    finally:
        # Workers in a request finish it and stop; its reply is dropped (the next run asks again).
        leaving.set()
        _keep_leftovers(finished, tally)


def _keep_leftovers(finished: "queue.Queue[Any]", tally: _Tally) -> None:
    """On the way out (Ctrl-C, an exception from ``on_progress``): replies already back are still written."""
    leftovers = []
    while True:
        try:
            leftovers.append(finished.get_nowait())
        except queue.Empty:
            break
    try:
        tally.record([item for item in leftovers if isinstance(item, tuple)], report=False)
    except OSError:
        pass  # the exception on its way out says more than this one


# -- remote: GigaChat's /batches ----------------------------------------------------------------


class _Job(NamedTuple):
    id: str
    ids: List[str]


def _jobs_path(output: str) -> str:
    return output + ".remote.json"


def _load_jobs(path: str) -> List[_Job]:
    try:
        with open(path, "rb") as handle:
            saved = json.loads(handle.read().decode("utf-8"))
        return [_Job(job["id"], [str(i) for i in job["ids"]]) for job in saved["batches"] if isinstance(job.get("id"), str)]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return []  # torn or foreign: its batches are submitted again


def _save_jobs(path: str, jobs: Sequence[_Job]) -> None:
    if not jobs:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(json.dumps({"batches": [job._asdict() for job in jobs]}).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def batch_objects(payload: Any) -> List[Dict[str, Any]]:
    """The batch objects of a ``GET /batches`` reply: a bare array, ``{"batches": [...]}`` or one object."""
    if isinstance(payload, dict) and isinstance(payload.get("batches"), list):
        payload = payload["batches"]
    elif isinstance(payload, dict) and "id" in payload:
        payload = [payload]
    if not isinstance(payload, list):
        raise InvalidResponseError("the /batches reply is not a list of batches")
    return [item for item in payload if isinstance(item, dict)]


def _create(session: Session, method: str, tasks: Sequence[_Task]) -> str:
    body = b"".join(task.line + b"\n" for task in tasks)
    headers = {"Content-Type": "application/octet-stream", **_JSON}
    created = batch_objects(json_reply(session.call("POST", "/batches", params={"method": method}, data=body, headers=headers)))
    batch_id = created[0].get("id") if created else None
    if not isinstance(batch_id, str) or not batch_id:
        raise InvalidResponseError("the POST /batches reply has no batch id")
    return batch_id


def _status(session: Session, batch_id: str) -> Optional[Dict[str, Any]]:
    """The batch's object, or ``None`` when the server does not know it."""
    try:
        found = batch_objects(json_reply(session.call("GET", "/batches", params={"batch_id": batch_id}, headers=_JSON)))
    except NotFoundError:
        return None
    return next((item for item in found if item.get("id") == batch_id), None)


def _counted(batch: Dict[str, Any]) -> int:
    counts = batch.get("request_counts")
    if not isinstance(counts, dict):
        return 0
    return sum(value for key in ("completed", "failed") for value in [counts.get(key)] if isinstance(value, int))


def _results(content: bytes, job: _Job, where: str) -> List[Tuple[str, bool, bytes]]:
    """Each id of ``job`` from the batch's output file; an id it lacks becomes an error line."""
    wanted = set(job.ids)
    found: Dict[str, Tuple[str, bool, bytes]] = {}
    for _, line in _split_lines(content):
        try:
            item = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):
            continue
        task_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(task_id, str) or task_id not in wanted or found.get(task_id, ("", False, b""))[1]:
            continue
        if "result" in item:
            found[task_id] = (task_id, True, _line(task_id, "result", item["result"]))
            continue
        error = item.get("error")
        status = error.get("status") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        found[task_id] = (
            task_id, False,
            _error_line(task_id, status if isinstance(status, int) and not isinstance(status, bool) else None,
                        message if isinstance(message, str) else f"the batch output has no result for this id ({where})"),
        )
    return [found.get(i) or (i, False, _error_line(i, None, f"missing from the batch output ({where})")) for i in job.ids]


def _run_remote(
    session: Session, method: str, tasks: Sequence[_Task], jobs_file: str, poll_interval: float, tally: _Tally, stop: threading.Event,
) -> None:
    pending = {task.id: task for task in tasks}
    jobs: List[_Job] = []
    for job in _load_jobs(jobs_file):
        ids = [i for i in job.ids if i in pending]
        if ids and _status(session, job.id) is not None:  # one an earlier run submitted and still has to collect
            jobs.append(_Job(job.id, ids))
    submitted = {i for job in jobs for i in job.ids}
    fresh = [task for task in tasks if task.id not in submitted]
    for start in range(0, len(fresh), REMOTE_MAX_LINES):
        part = fresh[start:start + REMOTE_MAX_LINES]
        jobs.append(_Job(_create(session, method, part), [task.id for task in part]))
        _save_jobs(jobs_file, jobs)  # from here a crash costs no second submission
    _save_jobs(jobs_file, jobs)
    wait = min(1.0, poll_interval)
    while jobs:
        if stop.wait(wait):
            raise _Stopped()  # the jobs file stays: the same call collects them
        wait = min(wait * 2, poll_interval)
        running = 0
        for job in list(jobs):
            batch = _status(session, job.id)
            status = None if batch is None else batch.get("status")
            if batch is None:
                outcomes = [(i, False, _error_line(i, None, f"the batch {job.id} is gone")) for i in job.ids]
            elif status == "completed":
                file_id = batch.get("output_file_id")
                if isinstance(file_id, str) and file_id:
                    outcomes = _results(session.file_content(file_id), job, f"batch {job.id}")
                else:
                    outcomes = [(i, False, _error_line(i, None, f"the batch {job.id} completed with no output file")) for i in job.ids]
            elif status in _FAILED_STATUSES:
                outcomes = [(i, False, _error_line(i, None, f"the batch {job.id} ended as {status!r}")) for i in job.ids]
            else:
                running += min(_counted(batch), len(job.ids)) if batch is not None else 0
                continue
            tally.record(outcomes)
            jobs.remove(job)
            _save_jobs(jobs_file, jobs)
        if jobs:
            tally.report(running)


# -- the entry point ----------------------------------------------------------------------------


def _concurrency(session: Session) -> int:
    if session.config.max_concurrency is not None:
        return int(session.config.max_concurrency)
    # Lazy: the coordination package (~10 ms to import) holds GigaChat's per-scope limits, and only a run needs one.
    from .coordination.keys import default_limit

    return default_limit(session.config.scope)


def _check_arguments(method: str, poll_interval: float, on_progress: Any) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or not 0 < poll_interval < float("inf"):
        raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}")
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable, got {type(on_progress).__name__}")


def run_batch(
    input: PathArg,
    output: PathArg,
    *,
    method: str = "chat",
    remote: bool = False,
    on_progress: Optional[ProgressCallback] = None,
    poll_interval: float = 30.0,
    session: Optional[Session] = None,
    **options: "Unpack[Options]",
) -> BatchSummary:
    """Run every request of the JSONL file ``input``; write one result or error line per id to ``output``.

    Each line of ``input`` is ``{"id": "<unique string>", "request": {...}}``,
    the request being the body of ``POST /chat/completions`` (``method="chat"``,
    also spelled ``"chat_completions"``) or of ``POST /embeddings``
    (``"embeddings"``, or ``"embedder"``), sent as written. Locally, as many
    requests run at once as the key allows: 1 for a personal key, 10 for
    business ones, or the ``max_concurrency`` configuration keyword (which a
    ``coordination`` store applies across processes too).
    ``remote=True`` submits the file to GigaChat's ``/batches``
    instead (pay-as-you-go accounts) and polls it, at most every
    ``poll_interval`` seconds. The same ``output`` again resumes: results kept,
    errors retried.

    ``on_progress(progress)`` is called with a :class:`BatchProgress` in this
    thread after each finished id (remote: after each poll); an exception it
    raises stops the run, as Ctrl-C does, with every finished id kept.
    Configuration keywords (``api_key``, ``scope``, ``coordination``, ...) or
    ``session=`` say where the requests go.

    Returns:
        BatchSummary: counts and the ids that ended in error.

    Raises:
        BatchInputError: a bad line in ``input`` (or ``output`` is another file), before any request.
        ValueError, TypeError, MissingAuthError: bad arguments or configuration, before any request.
        OSError: a file cannot be read or written.
        AuthenticationError, TLSError, APIConnectionError, CoordinationError: a failure every
            request would meet stops the run; finished ids stay in ``output``.
    """
    return run_stoppable_batch(threading.Event(), input, output, method=method, remote=remote, on_progress=on_progress,
                               poll_interval=poll_interval, session=session, **options)


class _Stopped(Exception):
    """A remote run's polling ended by its ``stop`` event; the jobs file is kept for the next run."""


def run_stoppable_batch(
    stop: threading.Event, input: PathArg, output: PathArg, *, method: str, remote: bool,
    on_progress: Optional[ProgressCallback], poll_interval: float, session: Optional[Session], **options: "Unpack[Options]",
) -> BatchSummary:
    """:func:`run_batch`, ended early when another thread sets ``stop`` (``aio.run_batch`` cancelled).

    Every argument is given by its two callers: the defaults are the public signatures'.

    Locally no request starts once ``stop`` is set and those in flight are
    written; remotely the polling ends and the jobs file stays. Raises
    :class:`_Stopped` when stopped, so a caller never mistakes it for a whole run.
    """
    _check_arguments(method, poll_interval, on_progress)
    if session is not None and options:
        raise TypeError(f"pass session= or configuration keywords, not both (got {', '.join(sorted(options))})")
    source, target = os.fspath(input), os.fspath(output)
    if os.path.exists(target) and os.path.exists(source) and os.path.samefile(source, target):
        raise BatchInputError(target, [(0, "OUTPUT is INPUT: results would overwrite the requests")])
    tasks = read_tasks(source)
    by_id = {task.id: task for task in tasks}
    store = _Output(target)
    store.load(by_id)
    pending = [task for task in tasks if not store.lines.get(task.id, (False, b""))[0]]
    if pending and session is None:
        session = shared_session(Config.resolve(**options))
    tally = _Tally(store, len(tasks), on_progress)
    path, wire_method = METHODS[method]
    try:
        if pending and session is not None:
            store.open()
            tally.report()
            if remote:
                _run_remote(session, wire_method, pending, _jobs_path(target), float(poll_interval), tally, stop)
            else:
                _run_local(session, path, pending, _concurrency(session), tally, stop)
        if stop.is_set():
            raise _Stopped()  # what finished is in OUTPUT, in the order it finished
        store.finish(tasks)
    finally:
        store.close()
    if remote:
        _save_jobs(_jobs_path(target), [])
    failed = tuple(task.id for task in tasks if not store.lines[task.id][0])
    return BatchSummary(target, len(tasks), len(tasks) - len(failed), len(failed), tally.skipped,
                        time.monotonic() - tally.started, failed)

"""``run_batch`` and ``aio.run_batch`` against the emulator: local and ``remote=True``, resumption, bad input.

Everything listens on 127.0.0.1. The command line (subprocesses, SIGKILL, a
terminal) is in test_batch_cli.py.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import pytest
import requests
import responses

import gigachat_lite
from gigachat_lite import (
    AuthenticationError,
    BatchInputError,
    BatchProgress,
    BatchSummary,
    GigaChatError,
    aio,
    run_batch,
)
from gigachat_lite.emulator import Emulator, Fault

from conftest import BASE

WRONG_KEY = "d3JvbmctY2xpZW50Ondyb25nLXNlY3JldC0xMjM0NQ=="  # base64("wrong-client:wrong-secret-12345")


# -- helpers -----------------------------------------------------------------------------------


def chat_line(task_id: str, text: Optional[str] = None, **body: Any) -> Dict[str, Any]:
    request = {"model": "GigaChat", "messages": [{"role": "user", "content": text or f"вопрос {task_id}"}], **body}
    return {"id": task_id, "request": request}


def embeddings_line(task_id: str) -> Dict[str, Any]:
    return {"id": task_id, "request": {"model": "Embeddings", "input": [f"текст {task_id}", "второй"]}}


def write_jsonl(path: pathlib.Path, items: Sequence[Any]) -> pathlib.Path:
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), "utf-8")
    return path


def chat_input(path: pathlib.Path, count: int) -> List[str]:
    ids = [f"q{n}" for n in range(count)]
    write_jsonl(path, [chat_line(i) for i in ids])
    return ids


def read_output(path: pathlib.Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def answer_text(line: Dict[str, Any]) -> str:
    return str(line["result"]["choices"][0]["message"]["content"])


def posts(emulator: Emulator, endpoint: str) -> List[Any]:
    return [r for r in emulator.requests if r.method == "POST" and r.path.split("?")[0].endswith(endpoint)]


@pytest.fixture
def files(tmp_path: pathlib.Path) -> Dict[str, pathlib.Path]:
    return {"input": tmp_path / "in.jsonl", "output": tmp_path / "out.jsonl"}


# -- local runs ----------------------------------------------------------------------------------


@pytest.mark.gigachat_emulator(max_in_flight=1)
def test_one_line_per_id_in_input_order_one_request_at_a_time(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 12)
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    lines = read_output(files["output"])
    assert [line["id"] for line in lines] == ids
    assert [answer_text(line) for line in lines] == [f"Echo: вопрос {i}" for i in ids]
    assert summary == BatchSummary(str(files["output"]), 12, 12, 0, 0, summary.elapsed, ())
    assert summary.ok
    # A personal key: one request at a time, so the server never had to refuse one.
    assert emu.ledger.peak(emu.api_key) == 1 and emu.too_many_requests == 0
    assert len(posts(emu, "/chat/completions")) == 12


@pytest.mark.gigachat_emulator(max_in_flight=10)
def test_a_business_key_runs_ten_requests_at_once(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    # Each reply waits until ten requests are in the server together: fewer at once would
    # break the barrier (a 500, so an error line); more would meet the emulator's 429.
    barrier = threading.Barrier(10, timeout=20)

    def reply(body: Dict[str, Any]) -> str:
        barrier.wait()
        return "ok"

    emu.set_reply(reply)
    chat_input(files["input"], 30)
    summary = run_batch(files["input"], files["output"], scope="GIGACHAT_API_B2B", max_retries=0, **emu.client_config())
    assert summary.errors == 0 and summary.results == 30
    assert emu.ledger.peak(emu.api_key) == 10 and emu.too_many_requests == 0


def test_max_concurrency_sets_the_requests_at_once(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    barrier = threading.Barrier(3, timeout=20)

    def reply(body: Dict[str, Any]) -> str:
        barrier.wait()
        return "ok"

    emu.set_reply(reply)
    chat_input(files["input"], 9)
    summary = run_batch(files["input"], files["output"], max_concurrency=3, max_retries=0, **emu.client_config())
    assert summary.results == 9 and emu.ledger.peak(emu.api_key) == 3


@pytest.mark.parametrize("method", ["embeddings", "embedder"])
def test_embeddings(method: str, emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    write_jsonl(files["input"], [embeddings_line(f"e{n}") for n in range(4)])
    summary = run_batch(files["input"], files["output"], method=method, **emu.client_config())
    lines = read_output(files["output"])
    assert summary.results == 4 and [line["id"] for line in lines] == ["e0", "e1", "e2", "e3"]
    for line in lines:
        vectors = [item["embedding"] for item in line["result"]["data"]]
        assert len(vectors) == 2 and all(isinstance(x, float) for x in vectors[0])
    assert len(posts(emu, "/embeddings")) == 4 and not posts(emu, "/chat/completions")


def test_each_request_is_sent_exactly_as_written(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    written = [
        chat_line("a", "Привет", temperature=0.3, max_tokens=50, stream=False, profanity_check=True),
        {"id": "b", "request": {"messages": [{"role": "system", "content": "Кратко."}, {"role": "user", "content": "Да?"}]}},
    ]
    write_jsonl(files["input"], written)
    run_batch(files["input"], files["output"], **emu.client_config())
    assert [r.json for r in posts(emu, "/chat/completions")] == [item["request"] for item in written]


def test_a_byte_order_mark_and_crlf_line_ends_are_read(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    lines = [json.dumps(chat_line(i), ensure_ascii=False).encode("utf-8") for i in ("a", "b")]
    files["input"].write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")  # as Windows Notepad saves it
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    assert summary.results == 2 and [line["id"] for line in read_output(files["output"])] == ["a", "b"]


def test_failures_are_error_lines_and_a_rerun_retries_only_them(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 10)
    emu.add_fault(Fault(path="chat/completions", status=503, times=3))
    first = run_batch(files["input"], files["output"], max_retries=0, **emu.client_config())
    assert (first.results, first.errors, first.failed) == (7, 3, ("q0", "q1", "q2"))
    lines = read_output(files["output"])
    assert [line["id"] for line in lines] == ids
    assert [line["error"] for line in lines[:3]] == [{"status": 503, "message": "Service Unavailable"}] * 3
    sent_before = len(posts(emu, "/chat/completions"))

    second = run_batch(files["input"], files["output"], max_retries=0, **emu.client_config())
    assert (second.results, second.errors, second.skipped) == (10, 0, 7)
    assert len(posts(emu, "/chat/completions")) - sent_before == 3  # only the errors were asked again
    assert [r.json["messages"][0]["content"] for r in posts(emu, "/chat/completions")[-3:]] == [f"вопрос q{n}" for n in range(3)]
    assert [answer_text(line) for line in read_output(files["output"])] == [f"Echo: вопрос {i}" for i in ids]


def test_an_error_line_carries_the_status_and_the_servers_message(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    write_jsonl(files["input"], [chat_line("ok"), {"id": "bad", "request": {"model": "Нет-такой", "messages": [{"role": "user", "content": "x"}]}},
                                 {"id": "empty", "request": {"model": "GigaChat", "messages": []}}])
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    assert summary.failed == ("bad", "empty")
    lines = {line["id"]: line for line in read_output(files["output"])}
    assert lines["bad"]["error"] == {"status": 404, "message": "No such model"}
    assert lines["empty"]["error"] == {"status": 422, "message": "messages must be a non-empty list"}
    assert "result" in lines["ok"]


@pytest.mark.slow
def test_429s_and_503s_are_retried(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 6)
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="0", times=1))
    emu.add_fault(Fault(path="chat/completions", status=503, times=1))
    summary = run_batch(files["input"], files["output"], **emu.client_config())  # the default 2 retries
    assert summary.ok and summary.results == 6
    assert len(posts(emu, "/chat/completions")) == 6 + 2  # each refusal sent once more


def test_a_failure_every_request_would_meet_stops_the_run(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 5)
    config = dict(emu.client_config(), api_key=WRONG_KEY)
    with pytest.raises(AuthenticationError):
        run_batch(files["input"], files["output"], **config)
    assert not posts(emu, "/chat/completions")
    assert files["output"].read_text() == ""  # opened before the first request, nothing in it


def test_ids_done_before_a_crash_are_not_asked_again_and_a_torn_line_is_dropped(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 8)
    # What a run killed mid-write leaves: whole lines (in any order), an error line, a torn last line.
    done = [{"id": "q3", "result": {"choices": [{"message": {"role": "assistant", "content": "from before"}}]}},
            {"id": "q0", "result": {"choices": [{"message": {"role": "assistant", "content": "from before"}}]}},
            {"id": "q5", "error": {"status": 429, "message": "Too Many Requests"}}]
    files["output"].write_bytes(b"".join(json.dumps(item).encode() + b"\n" for item in done) + b'{"id": "q6", "res')
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    asked = [r.json["messages"][0]["content"] for r in posts(emu, "/chat/completions")]
    assert asked == [f"вопрос {i}" for i in ids if i not in ("q0", "q3")]
    assert (summary.results, summary.skipped, summary.errors) == (8, 2, 0)
    lines = read_output(files["output"])
    assert [line["id"] for line in lines] == ids
    assert [answer_text(line) for line in lines if line["id"] in ("q0", "q3")] == ["from before", "from before"]


def test_a_whole_last_line_without_its_newline_is_kept(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 3)
    files["output"].write_text(json.dumps({"id": "q1", "result": {"choices": [{"message": {"content": "kept"}}]}}), "utf-8")
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    assert summary.skipped == 1 and len(posts(emu, "/chat/completions")) == 2
    assert [line["id"] for line in read_output(files["output"])] == ids


def test_a_finished_job_run_again_sends_nothing(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 4)
    run_batch(files["input"], files["output"], **emu.client_config())
    before = files["output"].read_bytes()
    count = len(emu.requests)
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    assert (summary.skipped, summary.results, len(emu.requests)) == (4, 4, count)
    assert files["output"].read_bytes() == before


def test_ids_no_longer_in_input_are_dropped_from_output(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 4)
    run_batch(files["input"], files["output"], **emu.client_config())
    write_jsonl(files["input"], [chat_line("q1"), chat_line("q9")])
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    assert [line["id"] for line in read_output(files["output"])] == ["q1", "q9"] and summary.skipped == 1


def test_on_progress_counts_up_to_the_total(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 6)
    seen: List[BatchProgress] = []
    run_batch(files["input"], files["output"], on_progress=seen.append, **emu.client_config())
    assert [p.total for p in seen] == [6] * len(seen)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[0].done == 0 and seen[-1].done == 6 and seen[-1].eta == 0
    assert all(p.errors == 0 and p.skipped == 0 for p in seen)


class Gate:
    """An emulator reply that holds every request after the first ``passes`` until :meth:`release`."""

    def __init__(self, passes: int) -> None:
        self.passes = passes
        self.seen = 0
        self.lock = threading.Condition()
        self.released = threading.Event()

    def __call__(self, body: Dict[str, Any]) -> str:
        with self.lock:
            self.seen += 1
            number = self.seen
            self.lock.notify_all()
        if number > self.passes:
            self.released.wait(30)
        return "ok"

    def release(self) -> None:
        self.released.set()

    def wait_seen(self, count: int, timeout: float = 30) -> bool:
        """Wait until ``count`` requests have arrived."""
        with self.lock:
            return self.lock.wait_for(lambda: self.seen >= count, timeout)


def test_an_exception_from_on_progress_stops_the_run_and_keeps_what_finished(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 10)
    gate = Gate(3)  # the 4th request is held: the run is stopped while it is in flight
    emu.set_reply(gate)

    def stop_at_three(progress: BatchProgress) -> None:
        if progress.done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(files["input"], files["output"], on_progress=stop_at_three, **emu.client_config())
    gate.release()
    assert [line["id"] for line in read_output(files["output"])] == ids[:3]
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    assert summary.skipped == 3 and summary.results == 10
    assert len(posts(emu, "/chat/completions")) in (10, 11)  # at most the one in flight was lost


# -- bad input: reported with its line number, before any request -------------------------------


BAD_INPUTS = [
    (b'{"id": "a", "request": {}}\n{not json\n', [(2, "not JSON")]),
    (b'{"request": {"messages": []}}\n', [(1, 'no "id"')]),
    (b'{"id": "a", "request": {}}\n{"id": "b", "request": {}}\n{"id": "a", "request": {}}\n', [(3, "duplicate id 'a' (first on line 1)")]),
    (b'{"id": "a", "request": "hello"}\n', [(1, '"request" must be a JSON object, got a string')]),
    (b'{"id": "a"}\n', [(1, 'no "request"')]),
    (b'{"id": 7, "request": {}}\n', [(1, '"id" must be a non-empty string, got 7')]),
    (b'{"id": "", "request": {}}\n', [(1, '"id" must be a non-empty string')]),
    (b'[1, 2]\n', [(1, "a line must be a JSON object, got an array")]),
    (b'{"id": "a", "request": {"temperature": NaN}}\n', [(1, "NaN is not JSON")]),
    (b'{"id": "a", "request": {"stream": true, "messages": []}}\n', [(1, '"stream" must be false or left out')]),
    (b'{"id": "a", "request": {}}\n\xff\xfe\n', [(2, "not UTF-8")]),
    (b"", [(0, "no requests")]),
    (b"\n  \n", [(0, "no requests")]),
    (b'{"id": "a", "request": []}\n{"id": "b"}\n\n{oops\n', [(1, "got an array"), (2, 'no "request"'), (4, "not JSON")]),
    # Read fine, but would have failed mid-run, after requests went out:
    (b'{"id": "a", "request": {}}\n{"id": "b", "request": {"x": ' + b"[" * 100000 + b"]" * 100000 + b"}}\n",
     [(2, "nested too deeply")]),
    (b'{"id": "a\\ud800", "request": {}}\n{"id": "b", "request": {"messages": [{"content": "\\udc00"}]}}\n',
     [(1, "a lone surrogate"), (2, "a lone surrogate")]),
    (b'{"id": "a", "request": {"temperature": 1e400}}\n', [(1, "a number too large for JSON")]),
]


@pytest.mark.slow
@pytest.mark.parametrize("content, expected", BAD_INPUTS, ids=[str(n) for n in range(len(BAD_INPUTS))])
def test_bad_input_is_refused_with_its_line_numbers_before_any_request(
    content: bytes, expected: List[Any], emu: Emulator, files: Dict[str, pathlib.Path]
) -> None:
    files["input"].write_bytes(content)
    with pytest.raises(BatchInputError) as caught:
        run_batch(files["input"], files["output"], **emu.client_config())
    problems = caught.value.problems
    assert [number for number, _ in problems] == [number for number, _ in expected]
    for (_, text), (_, part) in zip(problems, expected):
        assert part in text
    assert str(files["input"]) in str(caught.value)
    assert emu.requests == [] and not files["output"].exists()


def test_an_output_line_nested_too_deeply_is_not_a_result_line(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 2)
    files["output"].write_bytes(b'{"id": "q0", "result": {}}\n' + b"[" * 100000 + b"]" * 100000 + b"\n")
    with pytest.raises(BatchInputError) as caught:
        run_batch(files["input"], files["output"], **emu.client_config())
    assert caught.value.problems[0] == (2, "not a result or error line of a batch") and emu.requests == []


@responses.activate
def test_a_reply_holding_half_a_character_is_written_escaped(files: Dict[str, pathlib.Path]) -> None:
    # A model's reply cut inside an emoji: "\ud83d" alone is valid JSON but no UTF-8.
    write_jsonl(files["input"], [chat_line("a"), chat_line("b")])
    reply = b'{"choices": [{"message": {"role": "assistant", "content": "half \\ud83d"}, "index": 0, "finish_reason": "stop"}]}'
    responses.post(f"{BASE}/chat/completions", body=reply, content_type="application/json")
    summary = run_batch(files["input"], files["output"], access_token="tok-0123456789", base_url=BASE, max_retries=0)
    assert summary.results == 2 and len(responses.calls) == 2
    lines = read_output(files["output"])
    assert [line["result"]["choices"][0]["message"]["content"] for line in lines] == ["half \ud83d"] * 2


def test_many_bad_lines_are_summed_up_in_one_message(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    files["input"].write_text("x\n" * 12, "utf-8")
    with pytest.raises(BatchInputError) as caught:
        run_batch(files["input"], files["output"], **emu.client_config())
    assert len(caught.value.problems) == 12 and "(and 7 more problems)" in str(caught.value)


def test_output_of_another_job_is_left_alone(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 3)
    other = json.dumps({"id": "x1", "result": {}}) + "\n"
    files["output"].write_text(other, "utf-8")
    with pytest.raises(BatchInputError, match="another job's output"):
        run_batch(files["input"], files["output"], **emu.client_config())
    assert files["output"].read_text("utf-8") == other and emu.requests == []


@pytest.mark.parametrize("same", [True, False])
def test_output_that_is_not_a_result_file_is_left_alone(same: bool, emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 3)
    target = files["input"] if same else files["output"]
    if not same:
        target.write_text('{"id": "q0", "result": {}}\nsome notes\n{"id": "q1", "result": {}}\n', "utf-8")
    before = target.read_bytes()
    with pytest.raises(BatchInputError) as caught:
        run_batch(files["input"], target, **emu.client_config())
    assert ("OUTPUT is INPUT" in str(caught.value)) if same else (caught.value.problems[0] == (2, "not a result or error line of a batch"))
    assert target.read_bytes() == before and emu.requests == []


def test_an_output_folder_that_does_not_exist_fails_before_any_request(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 2)
    with pytest.raises(FileNotFoundError):
        run_batch(files["input"], files["input"].parent / "missing" / "out.jsonl", **emu.client_config())
    assert emu.requests == []


def test_bad_arguments_are_refused_before_reading_anything(files: Dict[str, pathlib.Path]) -> None:
    with pytest.raises(ValueError, match="method must be one of chat, chat_completions, embeddings, embedder"):
        run_batch(files["input"], files["output"], method="images", api_key="k")
    with pytest.raises(ValueError, match="poll_interval"):
        run_batch(files["input"], files["output"], poll_interval=0, api_key="k")
    with pytest.raises(TypeError, match="on_progress"):
        run_batch(files["input"], files["output"], on_progress=3, api_key="k")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="session= or configuration keywords"):
        run_batch(files["input"], files["output"], session=gigachat_lite.Session(api_key="k"), api_key="k")
    with pytest.raises(FileNotFoundError):
        run_batch(files["input"], files["output"], api_key="k")


# -- remote: GigaChat's /batches ---------------------------------------------------------------


def batch_requests(emulator: Emulator, method: str) -> List[Any]:
    return [r for r in emulator.requests if r.method == method and r.path.split("?")[0].endswith("/batches")]


@pytest.mark.parametrize("method, make", [("chat", chat_line), ("embeddings", embeddings_line)])
def test_remote_writes_what_a_local_run_writes(method: str, make: Any, emu: Emulator, tmp_path: pathlib.Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [make(f"r{n}") for n in range(5)])
    local = run_batch(source, tmp_path / "local.jsonl", method=method, **emu.client_config())
    remote = run_batch(source, tmp_path / "remote.jsonl", method=method, remote=True, poll_interval=0.01, **emu.client_config())
    assert (local.results, remote.results) == (5, 5)

    def comparable(path: pathlib.Path) -> List[Any]:
        return [{**line, "result": {k: v for k, v in line["result"].items() if k != "created"}} for line in read_output(path)]

    assert comparable(tmp_path / "remote.jsonl") == comparable(tmp_path / "local.jsonl")
    (created,) = batch_requests(emu, "POST")
    wire = {"chat": "chat_completions", "embeddings": "embedder"}[method]
    assert created.path.endswith(f"/batches?method={wire}")
    assert created.headers["Content-Type"] == "application/octet-stream"
    assert created.body == source.read_bytes()  # the lines as written
    assert not (tmp_path / "remote.jsonl.remote.json").exists()


def test_remote_line_errors_are_error_lines_and_a_rerun_resubmits_only_them(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 6)
    emu.add_fault(Fault(path="chat/completions", status=429, times=2))  # two sub-requests fail inside the batch
    emu.batches.drop_ids = {"q4"}  # and one id is missing from the output file
    first = run_batch(files["input"], files["output"], remote=True, poll_interval=0.01, **emu.client_config())
    assert first.failed == ("q0", "q1", "q4")
    lines = {line["id"]: line for line in read_output(files["output"])}
    assert lines["q0"]["error"] == {"status": 429, "message": "Too Many Requests"}
    assert lines["q4"]["error"]["status"] is None and "missing from the batch output" in lines["q4"]["error"]["message"]

    emu.batches.drop_ids = set()
    second = run_batch(files["input"], files["output"], remote=True, poll_interval=0.01, **emu.client_config())
    assert second.ok and second.skipped == 3
    resubmitted = batch_requests(emu, "POST")[-1]
    assert [json.loads(line)["id"] for line in resubmitted.body.splitlines()] == ["q0", "q1", "q4"]
    assert [line["id"] for line in read_output(files["output"])] == ids


@pytest.mark.slow
def test_remote_requests_are_retried_through_429s_and_503s(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 3)
    emu.add_fault(Fault(path="/batches", status=503, times=2))  # the submission, twice
    emu.add_fault(Fault(path="/content", status=429, retry_after="0", times=1))  # the results file, once
    summary = run_batch(files["input"], files["output"], remote=True, poll_interval=0.01, max_retries=3, **emu.client_config())
    assert summary.ok and len(batch_requests(emu, "POST")) == 3 and len(posts(emu, "/chat/completions")) == 0
    assert len([r for r in emu.requests if r.path.endswith("/content")]) == 2


@pytest.mark.slow
def test_a_long_job_is_submitted_in_parts_of_500_lines(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 501)
    summary = run_batch(files["input"], files["output"], remote=True, poll_interval=0.01, **emu.client_config())
    assert summary.results == 501
    assert [len(r.body.splitlines()) for r in batch_requests(emu, "POST")] == [500, 1]
    assert [line["id"] for line in read_output(files["output"])] == ids


def test_remote_progress_follows_the_batchs_counts(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 4)
    seen: List[int] = []

    def progress(update: BatchProgress) -> None:
        seen.append(update.done)
        emu.batches.line_time = 0.0 if len(seen) >= 3 else 1e9  # then the batch gets on with it

    emu.batches.start_delay = 0.0
    emu.batches.line_time = 1e9  # in progress, nothing answered yet
    run_batch(files["input"], files["output"], remote=True, on_progress=progress, poll_interval=0.01, **emu.client_config())
    assert seen[:3] == [0, 0, 0] and seen[-1] == 4


def test_a_remote_run_stopped_while_waiting_collects_its_batch_instead_of_paying_twice(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 5)
    emu.batches.start_delay = 1e9  # the batch stays "created" until the test lets it go

    def give_up(progress: BatchProgress) -> None:
        if batch_requests(emu, "GET"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(files["input"], files["output"], remote=True, on_progress=give_up, poll_interval=0.01, **emu.client_config())
    jobs = pathlib.Path(str(files["output"]) + ".remote.json")
    saved = json.loads(jobs.read_text("utf-8"))["batches"]
    assert [job["ids"] for job in saved] == [ids]

    emu.batches.start_delay = 0.0
    summary = run_batch(files["input"], files["output"], remote=True, poll_interval=0.01, **emu.client_config())
    assert summary.ok and len(batch_requests(emu, "POST")) == 1 and not jobs.exists()
    assert [line["id"] for line in read_output(files["output"])] == ids


def test_a_saved_batch_the_server_no_longer_knows_is_submitted_again(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 2)
    pathlib.Path(str(files["output"]) + ".remote.json").write_text(json.dumps({"batches": [{"id": "batch_gone", "ids": ["q0", "q1"]}]}))
    summary = run_batch(files["input"], files["output"], remote=True, poll_interval=0.01, **emu.client_config())
    assert summary.ok and len(batch_requests(emu, "POST")) == 1


def test_the_emulators_batch_goes_through_created_in_progress_completed(emu: Emulator, tmp_path: pathlib.Path) -> None:
    token = requests.post(emu.auth_url, headers={"Authorization": f"Basic {emu.api_key}", "RqUID": "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e"},
                          data={"scope": "GIGACHAT_API_PERS"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    body = b"".join(json.dumps(chat_line(f"s{n}")).encode() + b"\n" for n in range(3))
    emu.batches.start_delay = 1e9
    created = requests.post(emu.base_url + "/batches", params={"method": "chat_completions"}, data=body,
                            headers={**auth, "Content-Type": "application/octet-stream"}).json()
    assert created["status"] == "created" and created["request_counts"] == {"total": 3}
    assert "output_file_id" not in created

    def look() -> Dict[str, Any]:
        reply = requests.get(emu.base_url + "/batches", params={"batch_id": created["id"]}, headers=auth)
        assert reply.status_code == 200
        (found,) = reply.json()  # a bare array
        return dict(found)

    assert look()["status"] == "created"
    emu.batches.start_delay, emu.batches.line_time = 0.0, 1e9
    assert look()["status"] == "in_progress" and look()["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
    emu.batches.line_time = 0.0
    done = look()
    assert done["status"] == "completed" and done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    content = requests.get(f"{emu.base_url}/files/{done['output_file_id']}/content", headers=auth).content
    assert [json.loads(line)["id"] for line in content.splitlines()] == ["s0", "s1", "s2"]
    listed = requests.get(emu.base_url + "/batches", headers=auth).json()
    assert [item["id"] for item in listed] == [created["id"]]
    assert requests.get(emu.base_url + "/batches", params={"batch_id": "nope"}, headers=auth).status_code == 404
    refused = requests.post(emu.base_url + "/batches", params={"method": "images"}, data=body, headers=auth)
    assert refused.status_code == 422
    bad = requests.post(emu.base_url + "/batches", params={"method": "embedder"}, data=b'{"id": "a"}\n', headers=auth)
    assert (bad.status_code, bad.json()["message"]) == (400, "line 1: request must be an object")


@pytest.mark.parametrize("shape", ["array", "wrapped", "object"])
@responses.activate(assert_all_requests_are_fired=True)
def test_remote_reads_each_shape_of_the_batch_list(shape: str, files: Dict[str, pathlib.Path]) -> None:
    # The Python SDK branch accepts a bare array, {"batches": [...]} and a single object; the Java one the array.
    chat_input(files["input"], 2)
    batch = {"id": "b1", "method": "chat_completions", "request_counts": {"total": 2, "completed": 2}, "status": "completed",
             "output_file_id": "f1", "created_at": 1, "updated_at": 2}
    listed: Any = {"array": [batch], "wrapped": {"batches": [batch]}, "object": batch}[shape]
    responses.post(f"{BASE}/batches", json={**batch, "status": "created"})
    responses.get(f"{BASE}/batches", json=listed)
    output = b"".join(json.dumps({"id": i, "result": {"n": i}}).encode() + b"\n" for i in ("q1", "q0"))
    responses.get(f"{BASE}/files/f1/content", body=output)
    summary = run_batch(files["input"], files["output"], remote=True, poll_interval=0.01, access_token="tok", base_url=BASE)
    assert summary.ok
    assert read_output(files["output"]) == [{"id": "q0", "result": {"n": "q0"}}, {"id": "q1", "result": {"n": "q1"}}]


# -- asyncio ----------------------------------------------------


def test_aio_run_batch_reports_on_the_loop(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 5)
    threads: List[int] = []

    async def main() -> BatchSummary:
        loop_thread = threading.get_ident()
        summary = await aio.run_batch(files["input"], files["output"], on_progress=lambda p: threads.append(threading.get_ident()),
                                      **emu.client_config())
        await asyncio.sleep(0)  # the last report is queued on the loop
        assert set(threads) == {loop_thread}
        return summary

    summary = asyncio.run(main())
    assert summary.results == 5 and threads


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_exception_from_on_progress_stops_an_aio_run_too(error: type, emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 10)
    gate = Gate(3)  # the 4th request is held: the run is stopped while it is in flight
    emu.set_reply(gate)

    def stop_at_three(progress: BatchProgress) -> None:
        if progress.done >= 3:
            gate.release()
            raise error("enough")

    async def main() -> None:
        await aio.run_batch(files["input"], files["output"], on_progress=stop_at_three, **emu.client_config())

    with pytest.raises(error):
        asyncio.run(main())
    done = [line["id"] for line in read_output(files["output"])]
    assert ids[:3] == done[:3] and len(done) <= 4  # the one in flight may be kept; nothing started after
    assert len(posts(emu, "/chat/completions")) <= 4


def test_cancelling_aio_run_batch_starts_nothing_more_and_keeps_every_reply_in_flight(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 30)
    gate = Gate(2)  # q0 and q1 are answered; q2, q3, q4 (one per worker) are held until after the cancel

    async def main() -> None:
        task = asyncio.ensure_future(aio.run_batch(files["input"], files["output"], max_concurrency=3, **emu.client_config()))
        # Every worker in a held request: the state the cancel meets is known.
        assert await asyncio.get_running_loop().run_in_executor(None, gate.wait_seen, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.release()

    emu.set_reply(gate)
    asyncio.run(main())  # waits for the executor thread: had the run gone on, all 30 would be done
    assert gate.seen == 5  # no request started after the cancel
    kept = [line["id"] for line in read_output(files["output"])]
    assert sorted(kept) == sorted(ids[:5])  # the three in flight were paid for: their replies are kept
    summary = run_batch(files["input"], files["output"], **emu.client_config())
    assert summary.results == 30 and summary.skipped == 5
    assert len(posts(emu, "/chat/completions")) == 30


@pytest.mark.slow
def test_cancelling_aio_run_batch_during_a_retrys_wait_sends_no_retry(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 3)
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="3", times=3))

    async def main() -> None:
        task = asyncio.ensure_future(aio.run_batch(files["input"], files["output"], max_retries=5, **emu.client_config()))
        while not posts(emu, "/chat/completions"):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # the 429 is back: the worker waits 3 s before its retry
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(main())  # waits for the executor's thread, so for any retry it would still send
    assert len(posts(emu, "/chat/completions")) == 1
    assert time.monotonic() - started < 3  # the wait ended with the cancel, not after its 3 s
    summary = run_batch(files["input"], files["output"], **emu.client_config())  # the same call resumes
    assert summary.results == 3


@pytest.mark.slow
def test_an_interrupted_sync_run_sends_no_retry_after_it_returns(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    chat_input(files["input"], 4)
    emu.add_fault(Fault(path="chat/completions", stall=0.6, times=1))  # the first request: answered after 0.6 s
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="3", times=1))  # the second waits 3 s to retry

    def interrupt(progress: BatchProgress) -> None:
        if progress.done >= 1:  # the first answered, the second in its retry's wait
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(files["input"], files["output"], max_concurrency=2, max_retries=5, on_progress=interrupt,
                  **emu.client_config())
    time.sleep(3.5)  # past the retry's wait (3 s after the 429): a worker left behind would send it now
    asked = [r.json["messages"][0]["content"] for r in posts(emu, "/chat/completions")]
    assert len(asked) >= 2 and len(set(asked)) == len(asked)  # no request was sent twice: the 429'd one was not retried


def test_cancelling_a_remote_aio_run_batch_stops_polling_and_the_same_call_collects(emu: Emulator, files: Dict[str, pathlib.Path]) -> None:
    ids = chat_input(files["input"], 4)

    async def main() -> None:
        polled = asyncio.Event()
        task = asyncio.ensure_future(aio.run_batch(files["input"], files["output"], remote=True, poll_interval=60,
                                                   on_progress=lambda p: polled.set(), **emu.client_config()))
        await polled.wait()  # submitted: the first report comes before the first wait
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())  # the executor thread ends at once (a 60 s poll wait would show here)
    assert len(posts(emu, "/batches")) == 1
    summary = run_batch(files["input"], files["output"], remote=True, poll_interval=0.05, **emu.client_config())
    assert summary.results == 4 and len(posts(emu, "/batches")) == 1  # collected, not submitted again
    assert sorted(line["id"] for line in read_output(files["output"])) == sorted(ids)


def test_the_public_names(emu: Emulator) -> None:
    for name in ("run_batch", "BatchProgress", "BatchSummary", "BatchInputError"):
        assert name in gigachat_lite.__all__ and hasattr(gigachat_lite, name)
    assert "run_batch" in aio.__all__
    assert issubclass(BatchInputError, ValueError) and not issubclass(BatchInputError, GigaChatError)

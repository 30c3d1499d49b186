"""``gigachat-lite batch`` as a real subprocess: SIGKILL mid-run then a re-run, exit codes, progress, two runs on one key.

The emulator runs in this process on 127.0.0.1; injected 429s and 503s come
before the stalls that give the runs time to be killed.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sys
import time
from typing import Any, Callable, Dict, List

import pytest

from gigachat_lite.emulator import Emulator, Fault

from redis_server import redis_server, store_url  # noqa: F401  (fixtures)
from test_cli import WRONG_KEY, cache_dir, cli_env, popen_cli, posix_only, run_cli  # noqa: F401  (fixtures)

pytestmark = posix_only

ENDPOINT = {"chat": "/chat/completions", "embeddings": "/embeddings"}


def make_input(path: pathlib.Path, method: str, count: int) -> List[str]:
    ids = [f"q{n:02d}" for n in range(count)]  # q00, ..., q99, q100, ...
    with open(path, "w", encoding="utf-8") as handle:
        for task_id in ids:
            if method == "chat":
                request: Dict[str, Any] = {"model": "GigaChat", "messages": [{"role": "user", "content": f"вопрос {task_id}"}]}
            else:
                request = {"model": "Embeddings", "input": [f"текст {task_id}"]}
            handle.write(json.dumps({"id": task_id, "request": request}, ensure_ascii=False) + "\n")
    return ids


def asked_ids(emulator: Emulator, method: str, since: int = 0) -> List[str]:
    """The ids whose request reached the endpoint (each line's text names its id)."""
    found = []
    for recorded in emulator.requests[since:]:
        if recorded.method == "POST" and recorded.path.endswith(ENDPOINT[method]) and recorded.json:
            text = recorded.json["messages"][0]["content"] if method == "chat" else recorded.json["input"][0]
            found.append(text.split()[-1])
    return found


def output_lines(path: pathlib.Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def complete_lines(path: pathlib.Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def slow_and_flaky(emulator: Emulator, method: str) -> None:
    """Two 429s and two 503s first (the first request's retries run out), then every request takes 20 ms."""
    target = ENDPOINT[method].lstrip("/")
    emulator.add_fault(Fault(path=target, status=429, retry_after="0", times=2))
    emulator.add_fault(Fault(path=target, status=503, times=2))
    emulator.add_fault(Fault(path=target, stall=0.02))


# -- killed and run again --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["chat", "embeddings"])
def test_local_run_killed_then_run_again(method: str, emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = make_input(source, method, 120)
    slow_and_flaky(emu, method)
    env = cli_env(cache_dir, emu)
    process = popen_cli("batch", str(source), "-o", str(target), "--method", method, env=env)
    try:
        wait_for(lambda: complete_lines(target) >= 8, "8 finished lines")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    kept = output_lines(target)
    done = {line["id"] for line in kept if "result" in line}
    # q00 met 429, 429, 503: its retries spent, an error line, which the re-run asks again.
    assert kept[0] == {"id": "q00", "error": {"status": 503, "message": "Service Unavailable"}}
    assert len(kept) >= 8 and len(done) < 120
    with open(target, "ab") as handle:
        handle.write(b'{"id": "q119", "resu')  # as if the kill had torn the last write
    before = len(emu.requests)

    again = run_cli("batch", str(source), "-o", str(target), "--method", method, env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    assert sorted(asked_ids(emu, method, before)) == sorted(set(ids) - done)  # nothing finished is asked again
    lines = output_lines(target)
    assert [line["id"] for line in lines] == ids and all("result" in line for line in lines)
    assert again.stderr.startswith("gigachat-lite: batch: 120/120 results in ")
    assert again.stderr.endswith(f" ({len(done)} kept from an earlier run) -> {target}\n")
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl", "out.jsonl"]  # no temporary file left


@pytest.mark.slow
@pytest.mark.parametrize("method", ["chat", "embeddings"])
def test_remote_run_killed_then_run_again(method: str, emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = make_input(source, method, 40)
    emu.add_fault(Fault(path="/batches", status=503, times=1))
    emu.add_fault(Fault(path="/batches", status=429, retry_after="0", times=1))
    emu.batches.start_delay = 1e9  # the batch waits until the first run is dead
    env = cli_env(cache_dir, emu)
    command = ("batch", str(source), "-o", str(target), "--method", method, "--remote", "--poll-interval", "0.05")
    process = popen_cli(*command, env=env)
    jobs = pathlib.Path(str(target) + ".remote.json")
    try:
        wait_for(lambda: any(r.method == "GET" and "/batches" in r.path for r in emu.requests), "a status poll")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert jobs.exists()
    emu.batches.start_delay, emu.batches.line_time = 0.0, 0.001

    again = run_cli(*command, env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    submitted = [r for r in emu.requests if r.method == "POST" and "/batches" in r.path]
    assert len(submitted) == 3  # a 503, a 429, then the one batch: the re-run collected it
    lines = output_lines(target)
    assert [line["id"] for line in lines] == ids and all("result" in line for line in lines)
    assert not jobs.exists()
    assert asked_ids(emu, method) == []  # nothing was sent line by line


@pytest.mark.slow
def test_interrupted_run_keeps_what_finished(emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    make_input(source, "chat", 120)
    emu.add_fault(Fault(path="chat/completions", stall=0.02))
    process = popen_cli("batch", str(source), "-o", str(target), env=cli_env(cache_dir, emu))
    wait_for(lambda: complete_lines(target) >= 3, "3 finished lines")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert stderr.decode().splitlines() == [
        f"gigachat-lite: batch stopped; what finished is kept in {target}: run the same command again to resume",
        "gigachat-lite: interrupted",
    ]
    assert 3 <= len(output_lines(target)) < 120


# -- exit codes and messages ----------------------------------------------------------------------


@pytest.mark.slow
def test_exit_1_when_some_ids_end_in_error_then_0_once_they_are_retried(emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    make_input(source, "chat", 5)
    emu.add_fault(Fault(path="chat/completions", status=503, times=2))
    env = cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0")
    first = run_cli("batch", str(source), "-o", str(target), env=env)
    assert first.returncode == 1 and first.stdout == ""
    assert first.stderr.startswith("gigachat-lite: batch: 3/5 results, 2 errors (ids q00, q01) in ")
    assert first.stderr.endswith(f" -> {target}; run the same command again to retry them\n")
    second = run_cli("batch", str(source), "-o", str(target), env=env)
    assert second.returncode == 0 and "(3 kept from an earlier run)" in second.stderr


@pytest.mark.slow
def test_bad_input_exits_2_naming_the_lines_and_sends_nothing(emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"id": "a", "request": {}}\n{"id": "a", "request": {}}\n{"id": "b", "request": [1]}\n', "utf-8")
    result = run_cli("batch", str(source), "-o", str(target), env=cli_env(cache_dir, emu))
    assert result.returncode == 2
    assert result.stderr == (
        f"gigachat-lite: error: {source}: line 2: duplicate id 'a' (first on line 1); "
        "line 3: \"request\" must be a JSON object, got an array (id 'b')\n"
    )
    assert emu.requests == [] and not target.exists()


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["missing.jsonl", "-o", "out.jsonl"], "missing.jsonl: No such file or directory"),
    (["in.jsonl"], "the following arguments are required: -o/--output"),
    (["in.jsonl", "-o", "out.jsonl", "--method", "images"], "invalid choice: 'images'"),
    (["in.jsonl", "-o", "out.jsonl", "--max-concurrency", "0"], "must be 1..1000"),
    (["in.jsonl", "-o", "out.jsonl", "--coordination", "ftp://x"], "--coordination"),
])
def test_usage_errors_exit_2(args: List[str], message: str, emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    make_input(tmp_path / "in.jsonl", "chat", 1)
    result = run_cli("batch", *[str(tmp_path / a) if a.endswith(".jsonl") else a for a in args], env=cli_env(cache_dir, emu))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert emu.requests == []


@pytest.mark.slow
def test_a_refused_key_stops_the_run_with_exit_3(emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    make_input(source, "chat", 3)
    result = run_cli("batch", str(source), "-o", str(target), env=cli_env(cache_dir, emu, GIGACHAT_CREDENTIALS=WRONG_KEY))
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    assert lines[0].startswith("gigachat-lite: batch stopped") and lines[1].startswith("gigachat-lite: error: ")
    assert WRONG_KEY not in result.stderr


@pytest.mark.slow
def test_help_lists_the_exit_codes_batch_can_return(cache_dir: str) -> None:
    result = run_cli("batch", "--help", env=cli_env(cache_dir))
    codes = [int(line.split()[0]) for line in result.stdout.split("exit codes:\n", 1)[1].split("\n\n", 1)[0].splitlines()]
    assert codes == [0, 1, 2, 3, 4, 130]
    assert "examples:\n  gigachat-lite batch" in result.stdout


# -- progress: on a terminal only ------------------------------------------------------------------


@pytest.mark.slow
def test_progress_is_drawn_on_a_terminal(emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    make_input(source, "chat", 60)
    emu.add_fault(Fault(path="chat/completions", stall=0.03))
    child = pexpect.spawn(sys.executable, ["-m", "gigachat_lite", "batch", str(source), "-o", str(target)],
                          env=cli_env(cache_dir, emu), encoding="utf-8", timeout=60)
    child.expect(r"\d+/60 done, [\d.]+/s, ETA \d")
    child.expect_exact("gigachat-lite: batch: 60/60 results in ")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.slow
def test_nothing_but_the_summary_in_a_pipe(emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    make_input(source, "chat", 20)
    emu.add_fault(Fault(path="chat/completions", stall=0.02))
    result = run_cli("batch", str(source), "-o", str(target), env=cli_env(cache_dir, emu))
    assert result.returncode == 0 and result.stdout == ""
    (line,) = result.stderr.splitlines(keepends=True)
    assert line.startswith("gigachat-lite: batch: 20/20 results in ") and "\r" not in line and "done" not in line


# -- two runs sharing one personal key ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.gigachat_emulator(max_in_flight=1)
def test_two_runs_on_one_personal_key_never_meet_a_429(store_url: str, emu: Emulator, cache_dir: str, tmp_path: pathlib.Path) -> None:
    # The reply's own time counts as in flight (a stall fault would come before the count).
    emu.set_reply(lambda body: time.sleep(0.01) or "ok")  # type: ignore[func-returns-value]
    env = cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0")  # a 429 would be an error line, not absorbed
    runs = []
    for name in ("a", "b"):
        make_input(tmp_path / f"{name}.jsonl", "chat", 30)
        runs.append(popen_cli("batch", str(tmp_path / f"{name}.jsonl"), "-o", str(tmp_path / f"{name}.out.jsonl"),
                              "--coordination", store_url, env=env))
    for process in runs:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    assert emu.too_many_requests == 0 and emu.ledger.peak(emu.api_key) == 1
    assert len(asked_ids(emu, "chat")) == 60
    for name in ("a", "b"):
        assert all("result" in line for line in output_lines(tmp_path / f"{name}.out.jsonl"))


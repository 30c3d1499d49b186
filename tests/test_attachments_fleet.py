"""Attachments across a fleet (issue 24, part 2): one upload per distinct file for every worker process.

Worker processes (spawned, configured only through ``GIGACHAT_*`` variables)
each run threads that send the same logo and a file of their own; with a
coordination store (a folder, a real redis-server on 127.0.0.1) the logo is
uploaded once for the whole fleet and every chat references that one id. The
control without a store shows the process-local dedup alone uploads it once
per process.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import pathlib
import time
from typing import Dict, List, Optional

import pytest

import attachments_workers as workers
from gigachat_lite import Session
from gigachat_lite.emulator import Emulator, Fault
from redis_server import RedisServer, redis_server, store_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only: the file backend needs fcntl")

SPAWN = multiprocessing.get_context("spawn")
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
PROCESSES, THREADS = 4, 3


@pytest.fixture
def emu() -> Emulator:
    with Emulator() as emulator:
        emulator.add_fault(Fault(path="*/api/v1/files", stall=0.3))  # a slow upload: every worker asks meanwhile
        yield emulator


def run_fleet(emu: Emulator, tmp_path: pathlib.Path, coordination: Optional[str]) -> Dict[str, List[str]]:
    """Run the fleet to its end (bounded); return the file ids each file was sent with."""
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    own = []
    for number in range(PROCESSES):
        path = tmp_path / f"notes-{number}.txt"
        path.write_text(f"worker {number}'s notes", encoding="utf-8")
        own.append(str(path))
    env = dict(emu.env(), GIGACHAT_TIMEOUT="30")
    if coordination:
        env["GIGACHAT_COORDINATION"] = coordination
    start_at = time.time() + 1.5  # spawned interpreters need about a second to import
    outs = [tmp_path / f"out-{n}.json" for n in range(PROCESSES)]
    processes = [SPAWN.Process(target=workers.send_files, args=(env, THREADS, [str(logo), own[n]], str(out), start_at))
                 for n, out in enumerate(outs)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 90
    try:
        for process in processes:
            process.join(max(deadline - time.monotonic(), 0.1))
        assert [p.exitcode for p in processes] == [0] * PROCESSES
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)
    errors = [error for out in outs for error in json.loads(out.read_text("utf-8"))["errors"]]
    assert errors == []
    names = {entry["id"]: entry["filename"] for entry in emu.file_store.listing()}
    sent: Dict[str, List[str]] = {}
    for request in emu.requests:
        if request.path.endswith("/chat/completions"):
            (file_id,) = request.json["messages"][0]["attachments"]
            sent.setdefault(names[file_id], []).append(file_id)
    return sent


@pytest.mark.slow
def test_a_coordinated_fleet_uploads_each_distinct_file_once(emu: Emulator, store_url: str, tmp_path: pathlib.Path) -> None:
    sent = run_fleet(emu, tmp_path, store_url)
    assert emu.file_store.uploads == 1 + PROCESSES  # the logo once, and each worker's own file once
    assert len(set(sent["logo.png"])) == 1 and len(sent["logo.png"]) == PROCESSES * THREADS
    for number in range(PROCESSES):
        assert len(set(sent[f"notes-{number}.txt"])) == 1 and len(sent[f"notes-{number}.txt"]) == THREADS


@pytest.mark.slow
def test_without_a_store_each_process_uploads_the_logo_itself(emu: Emulator, tmp_path: pathlib.Path) -> None:
    # The control: without it the test above could pass by luck of timing.
    sent = run_fleet(emu, tmp_path, None)
    assert emu.file_store.uploads == 2 * PROCESSES
    assert len(set(sent["logo.png"])) == PROCESSES  # once per process: its threads still share one upload


@pytest.mark.slow
def test_redis_keeps_file_ids_and_nothing_else_of_the_files(emu: Emulator, redis_server: RedisServer,  # noqa: F811
                                                            tmp_path: pathlib.Path) -> None:
    client = redis_server.client()
    client.flushdb()  # the module's server: an earlier test's emulator left its ids
    client.close()
    run_fleet(emu, tmp_path, redis_server.url)
    dump = redis_server.dump()
    files = {name: values for name, values in dump.items() if name.startswith("gigachat_lite:file.")}
    stored = {entry["id"] for entry in emu.file_store.listing()}
    assert len(files) == 1 + PROCESSES and {v for values in files.values() for v in values} == stored
    assert not [name for name in dump if name.startswith("gigachat_lite:upload.")]  # the upload locks are gone
    secret = emu.api_key
    assert not [name for name, values in dump.items() if secret in name or any(secret in v for v in values)]


def test_a_file_deleted_by_one_worker_is_uploaded_again_by_the_next_without_a_refused_call(
    store_url: str, tmp_path: pathlib.Path
) -> None:
    # Each Session stands for a worker; the store is the fleet's memory, as between processes.
    with Emulator() as emu:
        config = dict(emu.client_config(), coordination=store_url)
        ask = [{"role": "user", "content": "What is this?", "attachments": [(PNG, "logo.png")]}]
        first = Session(**config)
        first.chat(ask, stream=False)
        (file_id,) = emu.requests[-1].json["messages"][0]["attachments"]
        Session(**config).delete_file(file_id)  # another worker deletes it
        before = len(emu.requests)
        Session(**config).chat(ask, stream=False)
        # Not: chat/completions refused (404, the id is gone), then the upload and the call again.
        assert [r.path.rsplit("/", 1)[-1] for r in emu.requests[before:]] == ["files", "completions"]
        (again,) = emu.requests[-1].json["messages"][0]["attachments"]
        assert again != file_id and emu.file_store.uploads == 2

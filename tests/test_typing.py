"""The package is mypy --strict clean (it ships py.typed, so its hints are a promise)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import gigachat_lite


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One cache for this file's runs: the package is analysed once, not once per snippet (5 s each)."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.mark.slow  # mypy over the package
def test_mypy_strict_on_the_package(tmp_path: pathlib.Path, mypy_cache: pathlib.Path) -> None:
    pytest.importorskip("mypy")
    package = pathlib.Path(gigachat_lite.__file__).parent
    assert (package / "py.typed").is_file()
    # By module name, from an empty folder: mypy checks the package this test
    # imported (the installed one in CI), found through sys.path like a user's code.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(mypy_cache), "-p", "gigachat_lite"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(package.parent)},
    )
    assert done.returncode == 0, done.stdout + done.stderr


_SEEN = '''
from __future__ import annotations

import dataclasses
from typing import List, Optional

from typing_extensions import assert_type

import gigachat_lite
from gigachat_lite import AsyncStream, ChatReply, ChatStream, Session, ToolCall, aio


@dataclasses.dataclass
class City:
    name: str


def sync() -> None:
    assert_type(gigachat_lite.chat("x"), ChatStream)
    assert_type(gigachat_lite.chat("x", stream=False), ChatReply)
    assert_type(gigachat_lite.parse("x", City), City)
    session = Session(api_key="k")
    assert_type(session.chat("x"), ChatStream)
    assert_type(session.chat("x", stream=False, temperature=0.2), ChatReply)
    assert_type(session.parse("x", City), City)
    reply = gigachat_lite.chat("x", stream=False)
    if reply.usage is not None:
        assert_type(reply.usage.total_tokens, Optional[int])
        assert_type(reply.usage.cached_tokens, Optional[int])
    assert_type(reply.tool_calls, List[ToolCall])
    assert_type(gigachat_lite.chat("x").finish_reason, Optional[str])


async def asynchronous() -> None:
    stream = aio.chat("x")
    assert_type(stream, AsyncStream[str])
    assert_type(stream.usage.total_tokens if stream.usage else None, Optional[int])
    assert_type(await aio.parse("x", City), City)
'''

_TYPOS = '''
import gigachat_lite
from gigachat_lite import aio

gigachat_lite.chat("x").finish_reasn
gigachat_lite.chat("x", temprature=0.2)
aio.chat("x").usgae
gigachat_lite.chat("x", stream=False).usage.total_tokns
'''


def _mypy(tmp_path: pathlib.Path, cache: pathlib.Path, code: str) -> "subprocess.CompletedProcess[str]":
    pytest.importorskip("mypy")
    package = pathlib.Path(gigachat_lite.__file__).parent
    (tmp_path / "snippet.py").write_text(code)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "snippet.py"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(package.parent)},
    )


@pytest.mark.slow
def test_a_type_checker_sees_what_each_call_returns(tmp_path: pathlib.Path, mypy_cache: pathlib.Path) -> None:
    done = _mypy(tmp_path, mypy_cache, _SEEN)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_a_type_checker_catches_attribute_and_keyword_typos(tmp_path: pathlib.Path, mypy_cache: pathlib.Path) -> None:
    done = _mypy(tmp_path, mypy_cache, _TYPOS)
    lines = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert any("finish_reasn" in line for line in lines), done.stdout
    assert any("temprature" in line for line in lines), done.stdout
    assert any("usgae" in line for line in lines), done.stdout
    assert any("total_tokns" in line for line in lines), done.stdout

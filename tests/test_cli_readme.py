"""The shell lines of README.rst's first screen run as written.

tests/test_readme.py runs the Python examples; this runs the ``serve`` /
``chat`` lines a newcomer copies, in bash, with ``gigachat-lite`` being this
checkout's ``python -m gigachat_lite`` behind a wrapper script (the console script may not be installed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

import gigachat_lite

from test_cli import cache_dir, cli_env  # noqa: F401  (fixture)

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.rst")


def first_screen_commands() -> list:
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    head = text.split(".. contents::", 1)[0]
    block = head.split("A conversation on the terminal", 1)[1].split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if not line.strip().startswith("#")]


@pytest.mark.skipif(shutil.which("bash") is None, reason="the README's shell lines are run by bash")
@pytest.mark.slow  # a pty
def test_the_first_screen_conversation_runs_as_written(cache_dir: str, tmp_path) -> None:
    serve_line, chat_line = first_screen_commands()
    assert serve_line.startswith("gigachat-lite serve") and chat_line == "gigachat-lite chat"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "gigachat-lite"  # what the console script does, for this checkout
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gigachat_lite "$@"\n')
    wrapper.chmod(0o755)
    script = f"""
set -e
PATH="{bin_dir}:$PATH"
{serve_line}
printf 'первая строка\\nвторая строка\\n' | {chat_line}
kill %1
wait %1 || true
"""
    # Run from a scratch folder (emulator.env lands there), importing the package under test.
    env = cli_env(cache_dir, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(gigachat_lite.__file__))))
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, encoding="utf-8", timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Echo: первая строка\nвторая строка\n", result.stderr

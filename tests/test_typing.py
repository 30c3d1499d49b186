"""The package is mypy --strict clean (it ships py.typed, so its hints are a promise)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import gigachat_lite


@pytest.mark.slow  # mypy over the package
def test_mypy_strict_on_the_package(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("mypy")
    package = pathlib.Path(gigachat_lite.__file__).parent
    assert (package / "py.typed").is_file()
    # By module name, from an empty folder: mypy checks the package this test
    # imported (the installed one in CI), found through sys.path like a user's code.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull, "-p", "gigachat_lite"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(package.parent)},
    )
    assert done.returncode == 0, done.stdout + done.stderr

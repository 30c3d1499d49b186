"""The package is mypy --strict clean (it ships py.typed, so its hints are a promise)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import gigachat_lite


def test_mypy_strict_on_the_package() -> None:
    pytest.importorskip("mypy")
    package = pathlib.Path(gigachat_lite.__file__).parent
    assert (package / "py.typed").is_file()
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", "/dev/null", str(package)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr

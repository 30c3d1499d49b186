"""The shipped pytest plugin: registered in every pytest run once gigachat_lite is installed, it must cost nothing there.

Each test runs pytest in a subprocess on a folder of its own (no conftest, an
empty ini), the way another project's test run meets the installed plugin.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # a pytest subprocess each, ~1-2 s


def run_pytest(folder: pathlib.Path, source: str) -> subprocess.CompletedProcess:
    (folder / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    (folder / "test_other_project.py").write_text(textwrap.dedent(source))
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST_", "GIGACHAT"))}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", str(folder)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def test_an_unrelated_run_imports_no_emulator_module(tmp_path: pathlib.Path) -> None:
    result = run_pytest(tmp_path, """
        import sys

        def test_unrelated(pytestconfig):
            # The plugin is registered and its marker declared...
            assert pytestconfig.pluginmanager.has_plugin("gigachat_emulator")
            assert any(line.startswith("gigachat_emulator(") for line in pytestconfig.getini("markers"))
            # ...yet nothing of the emulator beyond the plugin module itself (and its package) is loaded.
            loaded = sorted(name for name in sys.modules if name.startswith("gigachat_lite.emulator"))
            print("LOADED", loaded)
            assert loaded == ["gigachat_lite.emulator", "gigachat_lite.emulator.pytest_plugin"]
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout and "LOADED ['gigachat_lite.emulator', " in result.stdout


def test_the_fixture_and_its_marker_still_work_when_asked_for(tmp_path: pathlib.Path) -> None:
    result = run_pytest(tmp_path, """
        import sys

        import pytest

        import gigachat_lite

        pytestmark = pytest.mark.gigachat_emulator(reply="from the plugin", shared=True)

        def test_asks_for_the_fixture(gigachat_emulator):
            assert gigachat_emulator.url.startswith("http://127.0.0.1:")
            assert "".join(gigachat_lite.chat("hi", **gigachat_emulator.client_config())) == "from the plugin"
            assert "gigachat_lite.emulator.server" in sys.modules

        @pytest.mark.gigachat_emulator(tls=True)
        def test_the_closest_marker_wins(gigachat_emulator):
            assert gigachat_emulator.url.startswith("https://127.0.0.1:")
            assert "".join(gigachat_lite.chat("hi", **gigachat_emulator.client_config())) == "Echo: hi"
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout

"""README's gpt4free tool-call example runs after ``pip install g4f`` alone (issue 21).

gpt4free does not need pydantic, and without it its reply objects are plain
stand-ins (``call.function`` a dict, no ``model_dump()``); the test suite has
pydantic (the official SDK brings it), so this runs the example in a
subprocess where ``import pydantic`` fails, against the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gigachat_lite.emulator import Emulator

from test_readme import BLOCKS

pytestmark = pytest.mark.gigachat_emulator(shared=True)

_NO_PYDANTIC = "import sys; sys.modules['pydantic'] = None  # as if it were not installed\n"


@pytest.mark.slow
@pytest.mark.parametrize("pydantic", [False, True], ids=["without-pydantic", "with-pydantic"])
def test_the_tool_call_example_runs_with_or_without_pydantic(gigachat_emulator: Emulator, pydantic: bool) -> None:
    pytest.importorskip("g4f")
    [code] = [code for section, code in BLOCKS if section == "gpt4free drop-in" and "tool_calls" in code]
    done = subprocess.run([sys.executable, "-c", ("" if pydantic else _NO_PYDANTIC) + code], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **gigachat_emulator.env()})
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'Function weather returned: {"temperature": -5}' in done.stdout

"""Every Python example in README.rst runs, against the emulator."""

from __future__ import annotations

import pathlib
import re
from typing import List, Tuple

import pytest

from gigachat_lite.emulator import Emulator

README = pathlib.Path(__file__).resolve().parent.parent / "README.rst"


def python_blocks() -> List[Tuple[str, str]]:
    text = README.read_text("utf-8")
    blocks = []
    section = ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1]) and line.strip():
            section = line.strip()
        if line.strip() == ".. code-block:: python":
            body = []
            for following in lines[i + 2:]:
                if following and not following.startswith("    "):
                    break
                body.append(following[4:])
            blocks.append((section, "\n".join(body).strip() + "\n"))
    return blocks


BLOCKS = python_blocks()


pytestmark = pytest.mark.gigachat_emulator(shared=True)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 12


@pytest.mark.slow
@pytest.mark.parametrize("section,code", BLOCKS, ids=[f"{i}-{s}" for i, (s, _) in enumerate(BLOCKS)])
def test_example_runs(section: str, code: str, emu: Emulator, monkeypatch: pytest.MonkeyPatch,
                      tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_example"}  # nothing predefined: each example runs as written
    # dont_inherit: this module's `from __future__ import annotations` must not leak into the
    # examples (a dataclass defined in exec-ed code cannot resolve string annotations).
    exec(compile(code, f"README.rst [{section}]", "exec", dont_inherit=True), namespace)
    out = capsys.readouterr().out
    if "print(" in code:
        assert out.strip(), "the example printed nothing"

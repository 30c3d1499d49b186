"""The tests use the library the way its users do: no private module, no private attribute.

A test that reaches inside (``stream._response``, ``from gigachat_lite import _sse``,
``monkeypatch.setattr(module, "_LIMIT", ...)``) breaks whenever the inside is
rearranged, and checks what a user can never see. What a test truly needs is
public: the emulator, raw servers on 127.0.0.1, ``responses``, the logs,
:meth:`gigachat_lite.ChatStream.from_chunks` for reads of one's choosing.
"""

from __future__ import annotations

import ast
import pathlib
from typing import List, Tuple

HERE = pathlib.Path(__file__).parent
HERE_NAME = pathlib.Path(__file__).name  # this file's examples below are reaches on purpose
ALLOWED = {"os._exit"}  # documented public functions whose names start with "_"


def private_reaches(source: str) -> List[Tuple[int, str]]:
    """(line, what) for each reach into something private in ``source``."""
    found: List[Tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                text = ast.unparse(node)
                if text not in ALLOWED:
                    found.append((node.lineno, text))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gigachat_lite":
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append((node.lineno, f"from {node.module} import ..."))
            found += [(node.lineno, f"from {node.module} import {alias.name}") for alias in node.names
                      if alias.name.startswith("_") and not alias.name.endswith("__")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"import {alias.name}") for alias in node.names
                      if alias.name.split(".")[0] == "gigachat_lite" and any(p.startswith("_") for p in alias.name.split("."))]
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and ast.unparse(node.func).endswith(("setattr", "getattr", "delattr")):
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.startswith("_") \
                    and not name.value.endswith("__"):
                found.append((node.lineno, f"{ast.unparse(node.func)}(..., {name.value!r})"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "gigachat_lite._" in node.value:
            found.append((node.lineno, f"a string naming {node.value.split('gigachat_lite._')[1][:30]!r}"))
    return found


def test_no_test_reaches_into_the_library() -> None:
    reaches = [f"{path.name}:{line}: {what}" for path in sorted(HERE.glob("*.py")) if path.name != HERE_NAME
               for line, what in private_reaches(path.read_text("utf-8"))]
    assert reaches == [], "\n".join(reaches)


def test_the_check_sees_each_kind_of_reach() -> None:
    source = '''
from gigachat_lite import _sse
from gigachat_lite._http import certs
from gigachat_lite.session import _SHARED_LOCK
import gigachat_lite._bridge
stream._response.raw
monkeypatch.setattr(bridge, "_BATCH_WAIT", 2.0)
monkeypatch.setattr("gigachat_lite._bridge._HIGH_WATER", 1)
self._own = 1
os._exit(0)
obj.__class__
'''
    assert sorted(line for line, _ in private_reaches(source)) == [2, 3, 4, 5, 6, 7, 8]

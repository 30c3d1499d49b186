"""Shared fixtures: a clean environment, a private cache folder, helpers for recorded traffic.

The emulator comes from the package's own pytest plugin (``gigachat_emulator``,
registered by the ``pytest11`` entry point of the installed package; from a
checkout that is not installed, run ``pytest -p gigachat_lite.emulator.pytest_plugin``).

Property tests run Hypothesis's fixed, derandomized profile ``ci`` (the same
examples every run: what CI runs); ``HYPOTHESIS_PROFILE=random pytest`` draws
new ones each run and keeps any failure it finds in ``.hypothesis/`` to replay it.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
from typing import Any, Dict, Iterator, List

import pytest
from hypothesis import HealthCheck, settings

import gigachat_lite
from gigachat_lite.emulator import Emulator

# No deadline in either: a wall-clock bound per example is a timed assertion, flaky on a loaded machine.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("random", derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DATA = pathlib.Path(__file__).parent / "data"
KEY = "dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ="  # base64("test-client:test-secret"), not a real key
BASE = "https://gigachat.test/api/v1"
AUTH = "https://ngw.test:9443/api/v2/oauth"


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test starts with no GIGACHAT_* settings, no cached token and no shared session."""
    for name in list(os.environ):
        if name.startswith("GIGACHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIGACHAT_LITE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "ca-cache"))
    gigachat_lite.reset()


@pytest.fixture(autouse=sys.version_info < (3, 10))
def current_event_loop() -> Iterator[None]:
    """Python 3.9 only: a current event loop in the main thread, as 3.9 code outside asyncio expects.

    On 3.9, ``asyncio.Lock()`` and ``asyncio.get_event_loop()`` need one, and ``asyncio.run`` leaves
    none behind: the official SDK's and gpt4free's synchronous clients then fail in whichever test
    comes after an asyncio one. Not our code's need (it never asks for a current loop).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def emu(gigachat_emulator: Emulator) -> Emulator:
    """The plugin's emulator; a module sets its settings with ``pytestmark = pytest.mark.gigachat_emulator(...)``."""
    return gigachat_emulator


def load_cassette(name: str) -> List[Dict[str, Any]]:
    """The interactions of a recorded cassette (real GigaChat traffic, see data/README.rst)."""
    yaml = pytest.importorskip("yaml")
    with open(DATA / "cassettes" / name, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["interactions"]


def cassette_body(interaction: Dict[str, Any]) -> bytes:
    body = interaction["response"]["body"]["string"]
    return body.encode("utf-8") if isinstance(body, str) else body


def fixture_text(name: str) -> str:
    return (DATA / "fixtures" / name).read_text("utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


def count_sends(monkeypatch: pytest.MonkeyPatch, session: Any) -> List[str]:
    """Record the URL of every request ``session`` sends (requests' public ``Session.send``)."""
    sent: List[str] = []
    original = session.send

    def spy(request: Any, **kwargs: Any) -> Any:
        sent.append(request.url)
        return original(request, **kwargs)

    monkeypatch.setattr(session, "send", spy)
    return sent

"""pytest plugin: the ``gigachat_emulator`` fixture.

Register it once, either through the ``pytest11`` entry point of an installed
gigachat_lite or with ``pytest_plugins = ["gigachat_lite.emulator.pytest_plugin"]`` in
the root ``conftest.py`` (not both: pytest refuses a plugin registered twice).
"""

from typing import Iterator

import pytest

from .emulator import Emulator


@pytest.fixture
def gigachat_emulator() -> Iterator[Emulator]:
    """A started plain-HTTP :class:`Emulator` with default settings, stopped afterwards.

    Point a client at it with ``emulator.client_config()`` or ``monkeypatch`` the
    variables of ``emulator.env()``; inject failures with ``emulator.add_fault``.
    """
    with Emulator() as emulator:
        yield emulator

"""pytest plugin: the ``gigachat_emulator`` fixture, configured by a marker.

Register it once, either through the ``pytest11`` entry point of an installed
gigachat_lite (automatic) or with ``pytest_plugins = ["gigachat_lite.emulator.pytest_plugin"]``
in the root ``conftest.py`` (not both: pytest refuses a plugin registered twice)::

    import pytest

    pytestmark = pytest.mark.gigachat_emulator(tls=True, shared=True)

    def test_chat(gigachat_emulator):
        ...  # gigachat_lite.chat("hi", **gigachat_emulator.client_config())

The marker's keywords are :class:`Emulator`'s (``tls``, ``piece_size``,
``keys``, ``models``, ``max_in_flight``, ...), on a module (``pytestmark``), a
class or a test; the closest one wins. ``shared=True`` starts one emulator per
test module for the tests with the same settings (faster, for TLS especially);
without it each test gets a fresh one. An indirect parametrization
(``@pytest.mark.parametrize("gigachat_emulator", [{"tls": True}], indirect=True)``)
adds its dict to the settings.

Registered, the plugin costs a pytest run nothing it does not use: it declares
the marker and the fixtures, and imports the emulator only when a test asks
for ``gigachat_emulator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator

import pytest

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["gigachat_emulator", "pytest_configure"]


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "gigachat_emulator(**settings): Emulator keywords for the gigachat_emulator fixture; shared=True for one per module"
    )


@pytest.fixture(scope="module")
def _gigachat_emulators() -> Iterator[Dict[str, Emulator]]:
    started: Dict[str, Emulator] = {}
    yield started
    for emulator in started.values():
        emulator.stop()


@pytest.fixture
def gigachat_emulator(request: Any, _gigachat_emulators: Dict[str, Emulator]) -> Iterator[Emulator]:
    """A started :class:`Emulator` (plain HTTP unless the marker says ``tls=True``), stopped afterwards.

    Point a client at it with ``emulator.client_config()`` or ``monkeypatch`` the
    variables of ``emulator.env()``; inject failures with ``emulator.add_fault``.
    """
    # Imported here, for import time: a pytest run that never asks for the
    # fixture (any project's, once gigachat_lite is installed) loads no server module.
    from .emulator import Emulator

    marker = request.node.get_closest_marker("gigachat_emulator")
    settings: Dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    settings.update(getattr(request, "param", None) or {})
    if settings.pop("shared", False):
        key = repr(sorted(settings.items()))
        if key not in _gigachat_emulators:
            _gigachat_emulators[key] = Emulator(**settings).start()
        yield _gigachat_emulators[key]
        return
    with Emulator(**settings) as emulator:
        yield emulator

"""A local GigaChat-compatible server (standard library only) for tests and demos.

It speaks the wire format recorded from the real service: OAuth at ``/api/v2/oauth``
and user/password tokens at ``{base}/token``, ``/chat/completions`` (JSON or SSE) and
``/api/v2/chat/completions`` (the GigaChat-3 contract: content parts, built-in tools,
parallel function calls, structured output, reasoning), ``/models[/{id}]``,
``/embeddings``, ``/tokens/count``, ``/balance``, ``/files``, ``/assistants``,
``/threads``, ``/batches``, ``/ai/check`` and ``/functions/convert``, under ``/api/v1`` and ``/v1``
alike; ``X-Session-ID`` keys an emulated prompt cache. It listens on loopback only,
can limit requests in flight per key and can inject failures (:class:`Fault`,
:func:`parse_fault`)::

    from gigachat_lite.emulator import Emulator, Fault

    with Emulator(faults=[Fault(path="chat/completions", status=429, times=1)]) as emu:
        ...  # point a client at emu.client_config() or emu.env()

Reading order, top down: ``emulator`` (the Emulator) -> ``server`` (sockets, threads)
-> ``handler`` (one HTTP exchange, faults) -> ``routes`` (OAuth, bearer, dispatch) ->
the topic modules (``chat_v1``, ``chat_v2``, ``catalog``, ``files``, ``users``,
``assistants``, ``threads``, ...) -> what they share (``chat_context``: model,
assistant and stored thread of a chat; ``tool_calls``, ``prompt_cache``,
``thread_store``, ``replies``, ``wire``); beside them ``faults``, ``state``, ``tls``.
"""

import importlib
from typing import TYPE_CHECKING, Any, List

if TYPE_CHECKING:
    from .emulator import DEFAULT_KEY, Emulator, RecordedRequest
    from .faults import Fault, parse_fault

__all__ = ["DEFAULT_KEY", "Emulator", "Fault", "RecordedRequest", "parse_fault"]

_LAZY = {"DEFAULT_KEY": "emulator", "Emulator": "emulator", "RecordedRequest": "emulator", "Fault": "faults",
         "parse_fault": "faults"}


def __getattr__(name: str) -> Any:
    # The pytest plugin (pytest_plugin.py) is registered in every pytest run on a
    # machine where gigachat_lite is installed, and importing it imports this
    # package: the server's modules load when a name is first asked for, not then.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))

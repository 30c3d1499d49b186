"""Malformed requests to the emulator's new endpoints are refused (4xx), never a 500.

Hypothesis builds bodies from the field names each endpoint reads, with any JSON
value in each: whatever a buggy client sends, the emulator answers as an API would.
"""

from typing import Any, Dict, Tuple

import pytest
import requests

from gigachat_lite.emulator import Emulator
from test_emulator_v2 import TIMEOUT, bearer

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5)
    | st.sampled_from(["user", "assistant", "tool", "GigaChat", "auto", "any", "get_weather"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["role", "content", "text", "name", "id", "result", "arguments", "function_call", "function_result",
         "functions", "specifications", "thread_id", "effort", "max_tokens", "mode", "type"]), inner, max_size=3),
    max_leaves=12,
)
MESSAGE_V1 = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "function", "system"]),
                                    "content": st.text(max_size=12)}, optional={"function_call": JSON, "attachments": JSON,
                                                                                "name": JSON})
MESSAGE_V2 = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "tool"]),
                                    "content": st.lists(JSON, max_size=3)}, optional={"tools_state_id": JSON})
USER_V1 = [{"role": "user", "content": "get_weather"}]
USER_V2 = [{"role": "user", "content": [{"text": "get_weather"}]}]
SPEC = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
# A valid body per endpoint ({thread} and {assistant} filled in), and the fields to spoil in it.
VALID: Dict[str, Tuple[Dict[str, Any], Tuple[str, ...]]] = {
    "/api/v1/assistants": ({"model": "GigaChat", "name": "n"},
                           ("model", "name", "description", "instructions", "file_ids", "metadata", "functions")),
    "/api/v1/assistants/modify": ({"assistant_id": "{assistant}"},
                                  ("assistant_id", "name", "file_ids", "metadata", "functions", "model")),
    "/api/v1/assistants/files/delete": ({"assistant_id": "{assistant}", "file_id": "f"}, ("assistant_id", "file_id")),
    "/api/v1/threads/messages": ({"thread_id": "{thread}", "messages": USER_V1},
                                 ("thread_id", "model", "assistant_id", "messages")),
    "/api/v1/threads/messages/run": ({"thread_id": "{thread}", "messages": USER_V1},
                                     ("thread_id", "model", "assistant_id", "messages", "temperature", "limit",
                                      "max_tokens", "flags", "function_call", "functions", "stream")),
    "/api/v1/threads/run": ({"thread_id": "{thread}"}, ("thread_id", "assistant_id", "limit", "functions", "stream",
                                                        "function_call")),
    "/api/v1/threads/messages/rerun": ({"thread_id": "{thread}"}, ("thread_id", "max_tokens", "stream", "functions")),
    "/api/v1/threads/retrieve": ({"threads_ids": ["{thread}"]}, ("threads_ids",)),
    "/api/v1/chat/completions": ({"model": "GigaChat", "messages": USER_V1, "functions": [SPEC]},
                                 ("model", "messages", "n", "reasoning_effort", "reasoning_max_tokens", "storage",
                                  "assistant_id", "functions", "function_call", "stream")),
    "/api/v2/chat/completions": ({"model": "GigaChat-3-Ultra", "messages": USER_V2,
                                  "tools": [{"functions": {"specifications": [SPEC]}}]},
                                 ("model", "messages", "model_options", "tools", "tool_config", "storage",
                                  "assistant_id", "disable_filter", "flags", "user_info", "tools_state_id")),
}


def spoiled(path: str) -> Any:
    """The valid body of ``path`` with one to three of its fields replaced by any JSON."""
    fields = VALID[path][1]
    messages = st.lists(MESSAGE_V2 if "/v2/" in path else MESSAGE_V1, min_size=1, max_size=3)
    values = {name: (messages | JSON) if name == "messages" else JSON for name in fields}
    return st.fixed_dictionaries({}, optional=values).filter(lambda d: 1 <= len(d) <= 3)


@pytest.fixture(scope="module")
def served():
    with Emulator() as emu:
        auth = bearer(emu)
        assistant = requests.post(emu.base_url + "/assistants", json={"model": "GigaChat", "name": "n"}, headers=auth,
                                  timeout=TIMEOUT).json()["assistant_id"]
        thread = requests.post(emu.base_url + "/threads/messages/run", json={"model": "GigaChat", "messages": USER_V1},
                               headers=auth, timeout=TIMEOUT).json()["thread_id"]
        yield emu, auth, {"{assistant}": assistant, "{thread}": thread}


def filled(value: Any, ids: Dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [filled(v, ids) for v in value]
    return {k: filled(v, ids) for k, v in value.items()} if isinstance(value, dict) else value


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(VALID))
def test_malformed_bodies_get_a_client_error(served, path):
    emu, auth, ids = served
    valid = filled(VALID[path][0], ids)
    response = requests.post(emu.url + path, json=valid, headers=auth, timeout=TIMEOUT)
    assert response.status_code in (200, 404), response.text  # 404: files/delete of a file never attached

    @hypothesis.settings(max_examples=80, deadline=None, derandomize=True,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(spoiled(path))
    def check(change: Dict[str, Any]) -> None:
        body = dict(valid, **change)
        response = requests.post(emu.url + path, json=body, headers=auth, timeout=TIMEOUT)
        assert response.status_code in (200, 400, 404, 422), (body, response.text)
        assert response.headers["Content-Type"].startswith(("application/json", "text/event-stream"))

    check()

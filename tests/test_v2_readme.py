"""The README's "GigaChat v2" examples run against the emulator, once the emulator serves v2,
and meanwhile against replies shaped like the recordings.

They are marked ``.. code-block:: python3`` (tests/test_readme.py runs the
``python`` ones) until the emulator's v2 lands; this test runs them as soon
as the emulator answers ``POST /api/v2/chat/completions``, and skips (saying
why) before that. When it lands, mark them ``python`` and drop this file.
They are compiled without this module's ``from __future__ import annotations``
(``dont_inherit``): a dataclass defined under it in ``exec`` code looks its
module up in ``sys.modules`` and fails, which no user script would.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import responses

from gigachat_lite import APIError, chat
from gigachat_lite.emulator import Emulator

README = pathlib.Path(__file__).resolve().parent.parent / "README.rst"


def v2_blocks() -> List[str]:
    text = README.read_text("utf-8")
    section = text.split("\nGigaChat v2\n-----------\n", 1)[1].split("\nCommand line\n------------\n", 1)[0]
    blocks = []
    lines = section.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == ".. code-block:: python3":
            body = []
            for following in lines[i + 2:]:
                if following and not following.startswith("    "):
                    break
                body.append(following[4:])
            blocks.append("\n".join(body).strip() + "\n")
    return blocks


BLOCKS = v2_blocks()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


def test_the_section_has_the_four_examples() -> None:
    joined = "\n".join(BLOCKS)
    assert len(BLOCKS) >= 5
    for needle in ("parse(", "reasoning_effort", "tools=[\"web_search\"]", "function_result("):
        assert needle in joined


@pytest.mark.parametrize("code", BLOCKS, ids=[f"v2-{i}" for i in range(len(BLOCKS))])
def test_v2_example_runs(code: str, emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    try:
        chat("ping", api_version="v2", stream=False, max_retries=0)
    except APIError as exc:
        pytest.skip(f"the emulator does not serve v2 yet ({exc.status_code})")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.rst [GigaChat v2]", "exec", dont_inherit=True), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip(), "the example printed nothing"


# -- meanwhile: the same examples against replies shaped like the recordings ---------------------

BASE = "https://gigachat.test/api/v1"


def _value(schema: Dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "object":
        return {key: _value(sub) for key, sub in (schema.get("properties") or {}).items()} or {
            key: "ok" for key in schema.get("required") or []}
    return {"string": "Москва", "integer": 13000000, "number": 1.5, "boolean": True, "array": []}.get(kind, "ok")


def _reply(body: Dict[str, Any]) -> Dict[str, Any]:
    """A v2 reply in the recorded shape (tests/data/cassettes/test_primary_*.yaml) for ``body``."""
    options = body.get("model_options") or {}
    tools = {name for tool in body.get("tools") or [] for name in tool}
    forced = (body.get("tool_config") or {}).get("function_name")
    answered = any(m["role"] == "tool" for m in body["messages"])
    parts: List[Dict[str, Any]] = []
    message: Dict[str, Any] = {"role": "assistant"}
    finish = "stop"
    if options.get("reasoning"):
        parts.append({"reasoning": "Рассуждаю."})
    fmt = options.get("response_format") or body.get("response_format") or {}  # v2, or v1's top-level one
    if fmt.get("type") == "json_schema":
        parts.append({"text": json.dumps(_value(fmt["schema"]), ensure_ascii=False)})
    elif fmt.get("type") == "regex":
        parts.append({"text": "ABC-1234"})
    elif "functions" in tools and forced and not answered:
        parts.append({"function_call": {"name": forced, "arguments": {"city": "Москва"}}})
        finish = "function_call"
    elif "image_generate" in tools:
        parts += [{"files": [{"id": "file-1", "mime": "image/jpeg", "target": "image"}]}, {"text": "Готово."}]
    elif "web_search" in tools:
        parts.append({"text": "Python 3.15 [sources=[1]]",
                      "inline_data": {"images": [], "sources": {"1": {"url": "https://python.org", "title": "Python"}}}})
    else:
        parts.append({"text": "Ответ."})
    if tools:
        message["tool_state_id"] = "state-1"
    message["content"] = parts
    usage = {"input_tokens": 10, "input_tokens_details": {"prompt_tokens": 10, "cached_tokens": 0},
             "output_tokens": 5, "total_tokens": 15}
    return {"model": "GigaChat-3", "created_at": 1, "messages": [message], "finish_reason": finish, "usage": usage}


def _answer(request: Any) -> Tuple[int, Dict[str, str], bytes]:
    body = json.loads(request.body)
    reply = _reply(body)
    if not body.get("stream"):
        return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()
    head = {k: reply[k] for k in ("model", "created_at")}
    events = [("response.message.delta", {**head, "messages": [{**reply["messages"][0], "content": [part]}]})
              for part in reply["messages"][0]["content"]]
    events.append(("response.message.done", {**head, "finish_reason": reply["finish_reason"], "usage": reply["usage"]}))
    raw = b"".join(b"event: %s\ndata: %s\n\n" % (name.encode(), json.dumps(data).encode()) for name, data in events)
    return 200, {"Content-Type": "text/event-stream"}, raw


@pytest.mark.parametrize("code", BLOCKS, ids=[f"v2-{i}" for i in range(len(BLOCKS))])
def test_v2_example_runs_on_recorded_shapes(code: str, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GIGACHAT_ACCESS_TOKEN", "test-token")
    monkeypatch.setenv("GIGACHAT_BASE_URL", BASE)
    monkeypatch.chdir(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, BASE.replace("/v1", "/v2") + "/chat/completions", callback=_answer)
        mock.add_callback(responses.POST, BASE + "/chat/completions", callback=lambda r: (
            200, {"Content-Type": "application/json"}, json.dumps({
                "choices": [{"message": {"role": "assistant", "content": _reply(json.loads(r.body))["messages"][0]
                                         ["content"][-1].get("text", "")}, "index": 0, "finish_reason": "stop"}],
                "created": 1, "model": "GigaChat", "object": "chat.completion",
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()))
        mock.add(responses.GET, BASE + "/files/file-1/content", body=b"\xff\xd8jpeg")
        exec(compile(code, "README.rst [GigaChat v2]", "exec", dont_inherit=True), {"__name__": "readme_example"})
        assert mock.calls, "the example sent nothing"
    assert capsys.readouterr().out.strip(), "the example printed nothing"


def test_blocks_are_found_by_marker_only() -> None:
    assert all(not re.search(r"^\.\. code-block:: python\s*$", b, re.M) for b in BLOCKS)

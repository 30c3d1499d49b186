"""First contact (issue 21): print() shows the reply, a 404 names what answered, unknown keywords are caught."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import gigachat_lite
from gigachat_lite import NotFoundError
from gigachat_lite.emulator import Emulator

pytestmark = pytest.mark.gigachat_emulator(shared=True)


def test_print_shows_the_reply_of_a_stream_and_of_a_whole_reply(gigachat_emulator: Emulator, capsys: Any) -> None:
    config = gigachat_emulator.client_config()
    print(gigachat_lite.chat("Привет", **config))
    print(gigachat_lite.chat("Привет", stream=False, **config))
    assert capsys.readouterr().out == "Echo: Привет\nEcho: Привет\n"
    stream = gigachat_lite.chat("Привет", **config)
    assert "finish_reason=None" in repr(stream)
    str(stream)
    assert "finish_reason='stop'" in repr(stream) and "request_id=" in repr(stream)


def test_a_404_blames_the_model_only_when_the_server_says_so(gigachat_emulator: Emulator) -> None:
    config = gigachat_emulator.client_config()
    with pytest.raises(NotFoundError) as caught:
        gigachat_lite.chat("hi", model="Nope", stream=False, **config)
    assert "No such model" in str(caught.value) and "check base_url" not in str(caught.value)
    wrong_base = {**config, "base_url": gigachat_emulator.url + "/api/v9"}
    with pytest.raises(NotFoundError) as caught:
        gigachat_lite.chat("hi", stream=False, **wrong_base)
    assert f"{gigachat_emulator.url}/api/v9/chat/completions answered 404 (check base_url)" in str(caught.value)
    wrong_auth = {**config, "auth_url": gigachat_emulator.url + "/oauth/v9"}
    with pytest.raises(NotFoundError) as caught:
        gigachat_lite.models(**wrong_auth)
    assert "/oauth/v9 answered 404 (check auth_url)" in str(caught.value)


@pytest.mark.slow
def test_the_command_line_names_the_url_not_the_model_on_a_wrong_base(gigachat_emulator: Emulator) -> None:
    env = {**gigachat_emulator.env(), "GIGACHAT_BASE_URL": gigachat_emulator.url + "/api/v9", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "gigachat_lite", "chat", "hi"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode != 0
    assert "answered 404 (check base_url)" in done.stderr and "models` lists" not in done.stderr


@pytest.mark.parametrize("keyword, message", [
    ("temprature", "did you mean temperature"),
    ("credentials", "'credentials' is not a gigachat_lite setting: it is called api_key"),
    ("verify_ssl_certs", "called verify"),
    ("additional_fields", "called extra_body"),
    ("timout", "did you mean timeout"),
])
def test_an_unknown_keyword_is_refused_before_any_request(gigachat_emulator: Emulator, keyword: str, message: str) -> None:
    sent = len(gigachat_emulator.requests)
    with pytest.raises(TypeError, match=message):
        gigachat_lite.chat("hi", **{**gigachat_emulator.client_config(), keyword: 1})
    assert len(gigachat_emulator.requests) == sent


def test_a_configuration_setting_given_to_a_session_call_says_where_it_goes(gigachat_emulator: Emulator) -> None:
    with gigachat_lite.Session(**gigachat_emulator.client_config()) as session:
        with pytest.raises(TypeError, match="timeout is a configuration setting"):
            session.chat("hi", timeout=5)  # type: ignore[call-overload]

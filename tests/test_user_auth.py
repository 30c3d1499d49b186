"""User and password auth (issue 21): POST {base_url}/token, Basic, with the key's refresh, single-flight and coordination.

Also the session-wide chat defaults the official SDK reads from the environment:
GIGACHAT_FLAGS and GIGACHAT_PROFANITY_CHECK.
"""

from __future__ import annotations

import json
import threading
from typing import Any, List

import pytest

import gigachat_lite
from gigachat_lite import AuthenticationError, MissingAuthError, Session
from gigachat_lite.emulator import Emulator

pytestmark = pytest.mark.gigachat_emulator(users={"alice": "wonderland-1"}, token_ttl=600)


def _config(emu: Emulator, **extra: Any) -> dict:
    return {"user": "alice", "password": "wonderland-1", "base_url": emu.url + "/v1", **extra}


def test_a_user_and_password_sign_in_and_chat(gigachat_emulator: Emulator) -> None:
    assert "".join(gigachat_lite.chat("hi", **_config(gigachat_emulator))) == "Echo: hi"
    assert gigachat_emulator.users.logins("alice") == 1
    assert gigachat_lite.chat("again", stream=False, **_config(gigachat_emulator)).text == "Echo: again"
    assert gigachat_emulator.users.logins("alice") == 1  # the token is cached like a key's


def test_concurrent_callers_share_one_login(gigachat_emulator: Emulator) -> None:
    errors: List[BaseException] = []

    def call() -> None:
        try:
            gigachat_lite.chat("hi", stream=False, **_config(gigachat_emulator))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and gigachat_emulator.users.logins("alice") == 1


def test_sessions_of_a_fleet_share_one_login_through_the_store(gigachat_emulator: Emulator, tmp_path: Any) -> None:
    for _ in range(3):
        with Session(**_config(gigachat_emulator, coordination=f"file://{tmp_path}")) as session:
            session.models()
        gigachat_lite.reset()  # a new process would start here: only the store remembers the token
    assert gigachat_emulator.users.logins("alice") == 1
    stored = " ".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert "wonderland-1" not in stored and "alice" not in stored  # the store keeps digests, never the password


def test_a_wrong_password_is_an_authentication_error_that_never_shows_it(gigachat_emulator: Emulator) -> None:
    with pytest.raises(AuthenticationError, match="user and password were refused") as caught:
        gigachat_lite.models(**_config(gigachat_emulator, password="not-the-password"))
    assert "not-the-password" not in str(caught.value) + repr(caught.value)
    assert "not-the-password" not in repr(Session(**_config(gigachat_emulator, password="not-the-password")).config)


def test_a_user_without_a_password_is_no_credential(gigachat_emulator: Emulator) -> None:
    with pytest.raises(MissingAuthError, match="user= and password="):
        gigachat_lite.models(user="alice", base_url=gigachat_emulator.base_url)


def test_the_environment_gives_the_user_and_the_chat_defaults(gigachat_emulator: Emulator, monkeypatch: Any) -> None:
    monkeypatch.setenv("GIGACHAT_USER", "alice")
    monkeypatch.setenv("GIGACHAT_PASSWORD", "wonderland-1")
    monkeypatch.setenv("GIGACHAT_BASE_URL", gigachat_emulator.url + "/v1")
    monkeypatch.setenv("GIGACHAT_FLAGS", "preprocess, no_cache")
    monkeypatch.setenv("GIGACHAT_PROFANITY_CHECK", "true")
    gigachat_lite.chat("hi", stream=False)
    v1 = json.loads(gigachat_emulator.requests[-1].body)
    assert v1["flags"] == ["preprocess", "no_cache"] and v1["profanity_check"] is True
    gigachat_lite.chat("hi", stream=False, api_version="v2", flags=["own"], profanity_check=False)
    v2 = json.loads(gigachat_emulator.requests[-1].body)
    assert v2["flags"] == ["own"] and v2["disable_filter"] is True and "profanity_check" not in v2

"""Conformance: the official ``gigachat`` SDK works unchanged against the emulator.

The SDK is a test-only dependency; without it this module is skipped.
"""

import os

import pytest

from gigachat_lite.emulator import Emulator, Fault

gigachat = pytest.importorskip("gigachat")
exceptions = pytest.importorskip("gigachat.exceptions")

# GigaChat-3-Ultra: the model of the v2 recordings, used by test_emulator_v2_sdk.py
MODELS = ["GigaChat", "GigaChat-Pro", "GigaChat-3-Ultra", ("Embeddings", "embedder")]
# Every test twice: over plain HTTP, and over TLS trusting the emulator's throwaway CA.
OVER_HTTP_AND_TLS = pytest.mark.parametrize(
    "gigachat_emulator", [dict(models=MODELS), dict(tls=True, models=MODELS)], ids=["http", "https"], indirect=True
)
# The SDK itself hands httpx a CA path string, which httpx 0.28 deprecates; not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning"), OVER_HTTP_AND_TLS]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    # pydantic-settings reads every GIGACHAT_* variable; a developer's real ones must not leak in.
    for name in list(os.environ):
        if name.startswith("GIGACHAT_"):
            monkeypatch.delenv(name)


def sdk_settings(emu: Emulator, **extra):
    """Keyword arguments pointing the SDK at ``emu`` (TLS trusting its throwaway CA)."""
    kwargs = dict(credentials=emu.api_key, base_url=emu.base_url, auth_url=emu.auth_url,
                  model="GigaChat", timeout=10)
    if emu.ca_bundle:
        kwargs.update(verify_ssl_certs=True, ca_bundle_file=emu.ca_bundle)
    kwargs.update(extra)
    return kwargs


def sdk(emu: Emulator, **extra):
    return gigachat.GigaChat(**sdk_settings(emu, **extra))


@pytest.mark.slow
def test_chat(emu):
    with sdk(emu) as client:
        response = client.chat("Привет")
    assert response.choices[0].message.content == "Echo: Привет"
    assert response.choices[0].message.role == "assistant"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "GigaChat:emulator"
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert response.x_headers["x-request-id"]
    assert emu.oauth_calls == 1


def test_stream(emu):
    emu.set_reply("Раз, два, три, четыре, пять")
    with sdk(emu) as client:
        chunks = list(client.stream("считай"))
    assert "".join(chunk.choices[0].delta.content for chunk in chunks) == "Раз, два, три, четыре, пять"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[0].usage is None
    assert emu.requests[-1].json["stream"] is True


def test_get_models_and_model(emu):
    with sdk(emu) as client:
        models = client.get_models()
        assert [m.id_ for m in models.data][:2] == ["GigaChat", "GigaChat-Pro"]
        assert client.get_model("GigaChat").id_ == "GigaChat"
        with pytest.raises(exceptions.NotFoundError):
            client.get_model("NonExistentModel")


@pytest.mark.slow
def test_tokens_count_and_embeddings(emu):
    with sdk(emu) as client:
        assert [t.tokens for t in client.tokens_count(["First text", "Second text"])] == [2, 2]
        assert len(client.embeddings(["a", "b"]).data) == 2


def test_environment_variables_configure_the_sdk(emu, monkeypatch):
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    with gigachat.GigaChat(model="GigaChat", timeout=10) as client:
        assert client.chat("env").choices[0].message.content == "Echo: env"


@pytest.mark.slow
def test_token_is_reused_and_refreshed_after_revocation(emu):
    with sdk(emu) as client:
        client.chat("one")
        client.chat("two")
        assert emu.oauth_calls == 1
        emu.revoke_tokens()
        assert client.chat("three").choices[0].message.content == "Echo: three"
    assert emu.oauth_calls == 2


def test_sdk_sees_injected_errors(emu):
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="1", times=1))
    with sdk(emu) as client:
        with pytest.raises(exceptions.RateLimitError):
            client.chat("hi")
        assert client.chat("hi").choices[0].message.content == "Echo: hi"
        with pytest.raises(exceptions.NotFoundError):
            client.chat({"model": "NonExistentModel", "messages": [{"role": "user", "content": "x"}]})


def test_bad_credentials_are_an_authentication_error(emu):
    with sdk(emu, credentials="d3Jvbmc6a2V5") as client:
        with pytest.raises(exceptions.AuthenticationError):
            client.chat("hi")

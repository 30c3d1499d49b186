"""``proxy=`` and ``HTTPS_PROXY``/``HTTP_PROXY`` are honoured, over TLS (CONNECT) and plain HTTP, with no bypass.

A relay in front of the emulator sees every connection made to it: each must
come from the proxy, none straight from the client.
"""

from __future__ import annotations


import pytest

from gigachat_lite import APIConnectionError, Session, chat
from gigachat_lite.emulator import Emulator

from reliability_support import Proxy, Relay, free_port


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests would bypass any proxy for 127.0.0.1 when NO_PROXY lists it.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _calls(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))


@pytest.mark.slow
@pytest.mark.gigachat_emulator(tls=True)
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_tls_goes_through_a_connect_tunnel_and_nothing_bypasses_it(emu: Emulator, how: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with Relay.before(emu) as relay, Proxy() as proxy:
        config = relay.config(emu)
        if how == "argument":
            config["proxy"] = proxy.url
        else:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with Session(**config) as s:
            for i in range(5):
                assert "".join(s.chat(f"p{i}")) == f"Echo: p{i}"
        assert proxy.tunnels >= 1 and proxy.targets[0] == f"CONNECT 127.0.0.1:{relay.port}"
        assert all(t.startswith("CONNECT ") for t in proxy.targets)
        # Every connection that reached the server is one the proxy opened: none came directly.
        assert relay.peers and {port for _, port in relay.peers} <= proxy.upstream_ports
        assert len(relay.peers) == proxy.tunnels
    assert _calls(emu) == 5 and emu.oauth_calls == 1


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_plain_http_goes_through_the_proxy_in_absolute_form(emu: Emulator, how: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with Relay.before(emu) as relay, Proxy() as proxy:
        config = relay.config(emu)
        if how == "argument":
            config["proxy"] = proxy.url
        else:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert "".join(chat("hi", **config)) == "Echo: hi"
        assert {port for _, port in relay.peers} <= proxy.upstream_ports and proxy.forwarded == len(relay.peers) >= 1
    assert len(emu.requests) == 2  # OAuth + chat, both absolute-form, i.e. sent to a proxy
    assert all(r.path.startswith(relay.url(emu.url) + "/") for r in emu.requests)


@pytest.mark.gigachat_emulator(tls=True)
def test_with_the_proxy_down_the_call_fails_and_names_the_proxy(emu: Emulator) -> None:
    config = dict(emu.client_config(), proxy=f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(APIConnectionError, match="proxy"):
        chat("hi", **config)
    assert emu.requests == []  # nothing went around it


@pytest.mark.gigachat_emulator(tls=True)
def test_a_refusing_proxy_is_an_api_connection_error_and_nothing_bypasses_it(emu: Emulator,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with Proxy(refuse=True) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with pytest.raises(APIConnectionError, match="proxy"):
            chat("hi", **emu.client_config())
        assert proxy.refused >= 1
    assert emu.requests == []


@pytest.mark.slow
@pytest.mark.gigachat_emulator(tls=True)
def test_the_argument_beats_the_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with Proxy(refuse=True) as bad, Proxy() as good:
        monkeypatch.setenv("HTTPS_PROXY", bad.url)
        assert "".join(chat("hi", **emu.client_config(), proxy=good.url)) == "Echo: hi"
        assert bad.targets == [] and good.tunnels >= 1

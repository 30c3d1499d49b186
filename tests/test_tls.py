"""The whole stack against the emulator over real TLS on 127.0.0.1.

``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` point at a bundle that does NOT
hold the emulator's CA, as on this machine and in CI: the bundle gigachat_lite
mounts must still be the one used (psf/requests#3829).
"""

from __future__ import annotations

import ssl
import threading
import warnings
from typing import List

import certifi
import pytest
import urllib3

pytest.importorskip("trustme")

from gigachat_lite import Session, TLSError, chat
from gigachat_lite.emulator import Emulator


pytestmark = pytest.mark.gigachat_emulator(shared=True, tls=True)


@pytest.fixture(autouse=True)
def foreign_env_bundle(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    emu.clear_faults()
    emu.token_ttl = 1800.0
    emu.delay = 0.0


def test_stream_over_tls_with_the_mounted_bundle(emu: Emulator) -> None:
    stream = chat("Привет", **emu.client_config())
    assert "".join(stream) == "Echo: Привет"
    assert stream.finish_reason == "stop" and stream.usage["total_tokens"] > 0


def test_plain_requests_session_fails_where_ours_succeeds(emu: Emulator) -> None:
    import requests

    plain = requests.Session()
    plain.verify = emu.ca_bundle
    with pytest.raises(requests.exceptions.SSLError):  # REQUESTS_CA_BUNDLE silently wins: the trap
        plain.get(emu.base_url + "/models")
    with Session(**emu.client_config()) as s:
        assert s.call("GET", "/models").status_code == 200


def test_certificate_failure_names_the_bundle(emu: Emulator) -> None:
    config = dict(emu.client_config(), ca_bundle=certifi.where(), max_retries=0)
    with pytest.raises(TLSError) as info:
        chat("hi", **config)
    assert certifi.where() in str(info.value) and "GIGACHAT_CA_BUNDLE_FILE" in str(info.value)
    assert emu.api_key not in str(info.value)


def test_verify_false_warns_and_works(emu: Emulator) -> None:
    config = dict(emu.client_config(), verify=False)
    del config["ca_bundle"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "".join(chat("hi", **config)) == "Echo: hi"
    assert any("verification is OFF" in str(w.message) for w in caught)


def test_env_verify_false(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGACHAT_VERIFY_SSL_CERTS", "false")
    config = dict(emu.client_config())
    del config["ca_bundle"]
    with pytest.warns(Warning, match="verification is OFF"):
        assert "".join(chat("hi", **config)) == "Echo: hi"


def test_default_bundle_is_used_when_no_ca_bundle_is_given(emu: Emulator) -> None:
    config = dict(emu.client_config(), max_retries=0)
    del config["ca_bundle"]
    with pytest.raises(TLSError) as info:  # the emulator's throwaway CA is not Sber's
        chat("hi", **config)
    assert "russian_trusted_root_ca.crt" in str(info.value)


@pytest.mark.slow
def test_32_threads_make_exactly_one_oauth_request(emu: Emulator) -> None:
    before = emu.oauth_calls
    gate = threading.Barrier(32)
    results: List[str] = []
    errors: List[BaseException] = []

    def worker() -> None:
        gate.wait()
        try:
            results.append("".join(chat("hi", **emu.client_config())))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == ["Echo: hi"] * 32
    assert emu.oauth_calls - before == 1


def test_keep_alive_reuses_one_connection_for_sequential_calls(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: List[object] = []
    connect = urllib3.connection.HTTPSConnection.connect

    def counting_connect(self: urllib3.connection.HTTPSConnection) -> None:
        opened.append(self)
        connect(self)

    monkeypatch.setattr(urllib3.connection.HTTPSConnection, "connect", counting_connect)
    with Session(**emu.client_config()) as s:
        for i in range(10):
            assert "".join(s.chat(f"n{i}")) == f"Echo: n{i}"
    assert len(opened) == 1  # OAuth and API share host:port here, so one pool and one connection


@pytest.mark.gigachat_emulator(tls=True, delay=0.05, piece_size=1)
def test_the_ca_bundle_is_parsed_once_not_per_connection(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib3 builds a context per connection and would parse the whole bundle
    # into each (85 MiB for 100 streams with the default bundle): one shared context.
    loads: List[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    connects: List[object] = []
    connect = urllib3.connection.HTTPSConnection.connect

    def counting_connect(self: urllib3.connection.HTTPSConnection) -> None:
        connects.append(self)
        connect(self)

    monkeypatch.setattr(urllib3.connection.HTTPSConnection, "connect", counting_connect)
    with Session(**emu.client_config()) as s:
        s.auth.current()  # the token first: the streams below then overlap on the API host alone
        start = threading.Barrier(6)

        def read() -> str:
            start.wait()
            return "".join(s.chat("hello"))

        threads = [threading.Thread(target=lambda: results.append(read())) for _ in range(6)]
        results: List[str] = []
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == ["Echo: hello"] * 6
    # The streams overlapped, so most needed a connection of their own (one may reuse
    # the token fetch's, to the same host here); before, each one parsed the bundle.
    assert len(connects) >= 3
    assert len(loads) <= 1, f"the CA bundle was parsed {len(loads)} times"

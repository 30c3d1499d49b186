"""Session.merge_environment_settings and prepare_request: our overrides of requests, and its proxy cache."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from requests.sessions import merge_setting

from gigachat_lite import Session
from gigachat_lite.emulator import Emulator

URL = "https://gigachat.test/api/v1/chat/completions"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Session:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return Session(api_key="k")


def test_mounted_bundle_beats_requests_ca_bundle(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert session.merge_environment_settings(URL, {}, None, None, None)["verify"] == session.verify
    explicit = session.merge_environment_settings(URL, {}, None, True, None)["verify"]
    assert explicit == "/etc/ssl/certs/ca-certificates.crt"  # verify=True per request keeps requests' meaning
    assert session.merge_environment_settings(URL, {}, None, False, None)["verify"] is False


def test_environment_proxy_changes_are_seen_despite_the_cache(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    assert session.merge_environment_settings(URL, {}, None, None, None)["proxies"] == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert session.merge_environment_settings(URL, {}, None, None, None)["proxies"]["https"] == "http://127.0.0.1:3128"
    monkeypatch.setenv("NO_PROXY", "gigachat.test")
    assert "https" not in session.merge_environment_settings(URL, {}, None, None, None)["proxies"]
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("HTTPS_PROXY")
    assert session.merge_environment_settings(URL, {}, None, None, None)["proxies"] == {}


def test_proxy_argument_beats_environment_and_per_request_beats_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1111")
    with Session(api_key="k", proxy="http://127.0.0.1:2222") as s:
        assert s.merge_environment_settings(URL, {}, None, None, None)["proxies"]["https"] == "http://127.0.0.1:2222"
        given = {"https": "http://127.0.0.1:3333"}
        assert s.merge_environment_settings(URL, given, None, None, None)["proxies"]["https"] == "http://127.0.0.1:3333"


def test_trust_env_false_reads_no_proxy_variables(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    session.trust_env = False
    assert session.merge_environment_settings(URL, {}, None, None, None)["proxies"] == {}


def test_params_of_the_request_and_the_session_still_reach_the_url() -> None:
    session = Session(access_token="t")  # preparing applies the auth: a token, never a fetch
    request = requests.Request("GET", URL)
    assert session.prepare_request(request).url == URL
    assert request.params == {}  # the caller's Request is left as it came
    assert session.prepare_request(requests.Request("GET", URL, params={"a": "1"})).url == URL + "?a=1"
    session.params = {"b": "2"}
    assert session.prepare_request(requests.Request("GET", URL)).url == URL + "?b=2"
    assert session.prepare_request(requests.Request("GET", URL, params={"a": "1"})).url == URL + "?b=2&a=1"


_PROXY = st.one_of(st.none(), st.sampled_from(["http://127.0.0.1:1", "http://127.0.0.1:2"]))
_ENV = st.fixed_dictionaries({name: _PROXY for name in ("HTTPS_PROXY", "http_proxy", "ALL_PROXY")}).map(
    lambda d: {k: v for k, v in d.items() if v}) | st.just({})


@pytest.mark.slow
@given(env=_ENV, no_proxy=st.sampled_from([None, "", "gigachat.test", "other.test,gigachat.test", "*"]),
       request_proxies=st.dictionaries(st.sampled_from(["http", "https", "all", "no_proxy"]), _PROXY, max_size=2),
       verify=st.sampled_from([None, True, False, "/some/bundle.pem"]), stream=st.sampled_from([None, True, False]),
       url=st.sampled_from([URL, "http://gigachat.test:8080/x", "https://127.0.0.1/api"]))
def test_the_merge_is_requests_own_but_for_the_mounted_bundle(env: Dict[str, str], no_proxy: Optional[str],
                                                              request_proxies: Dict[str, Optional[str]], verify: object,
                                                              stream: object, url: str) -> None:
    # The cache of environment proxies must not change requests' answer, whatever the variables say,
    # asked twice (the second answer comes from the cache).
    names = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    with pytest.MonkeyPatch.context() as patch:
        for name in names:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        if no_proxy is not None:
            patch.setenv("NO_PROXY", no_proxy)
        patch.setenv("REQUESTS_CA_BUNDLE", "/from/the/environment.pem")
        ours = Session(api_key="k")
        plain = requests.Session()
        plain.verify = ours.verify
        for _ in range(2):
            expected = plain.merge_environment_settings(url, dict(request_proxies), stream, verify, None)
            got = ours.merge_environment_settings(url, dict(request_proxies), stream, verify, None)
            if verify is None:  # requests would take REQUESTS_CA_BUNDLE over the session's verify (psf/requests#3829)
                assert expected["verify"] == "/from/the/environment.pem" and got["verify"] == ours.verify
                expected["verify"] = ours.verify
            assert got == expected


def test_a_subclass_sees_every_gigachat_call_through_requests_prepared_request_flow(emu: Emulator) -> None:
    seen: List[Any] = []

    class Audited(Session):
        def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
            request.headers = {**(request.headers or {}), "X-Audit": "yes"}
            return super().prepare_request(request)

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            seen.append((request.method, request.path_url, request.headers.get("X-Audit"), kwargs["stream"],
                         kwargs["timeout"]))
            return super().send(request, **kwargs)

    with Audited(timeout=7, **emu.client_config()) as session:
        assert "".join(session.chat("hi"))
        assert session.chat("hi", stream=False).text
        assert session.models()
    # The OAuth fetch is the token's own request; every GigaChat call passed through both overrides.
    calls = [call for call in seen if "oauth" not in call[1]]
    assert [(method, path.rsplit("/", 1)[-1]) for method, path, *_ in calls] == [
        ("POST", "completions"), ("POST", "completions"), ("GET", "models")]
    assert all(audit == "yes" and stream is True and timeout == (7.0, 7.0) for _, _, audit, stream, timeout in calls)

"""Token cache and TokenAuth, driven with no network."""

from __future__ import annotations

import json
import threading
import time
from typing import List

import pytest

import responses

from gigachat_lite import AuthenticationError, chat
from gigachat_lite.auth import Token, TokenAuth, TokenCache, parse_token_reply

from conftest import AUTH, BASE, KEY
from test_chat import CFG, SSE, stream_body


def test_expires_at_in_ms_and_in_seconds() -> None:
    assert parse_token_reply({"access_token": "t", "expires_at": 1_700_000_000_000}).expires_at == 1_700_000_000.0
    assert parse_token_reply({"access_token": "t", "expires_at": 1_700_000_000}).expires_at == 1_700_000_000.0


@pytest.mark.parametrize("payload", [{}, {"access_token": ""}, {"access_token": "t"}, {"access_token": "t", "expires_at": "x"}, []])
def test_unusable_token_replies_are_refused(payload: object) -> None:
    with pytest.raises(ValueError):
        parse_token_reply(payload)


def test_refresh_margin_and_its_cap_at_half_the_lifetime() -> None:
    long_lived = Token("t", expires_at=1000.0 + 1800, obtained_at=1000.0)
    assert long_lived.fresh(60, now=1000.0 + 1739)
    assert not long_lived.fresh(60, now=1000.0 + 1741)
    short = Token("t", expires_at=1000.0 + 10, obtained_at=1000.0)  # margin capped at 5 s
    assert short.fresh(60, now=1004.9) and not short.fresh(60, now=1005.1)


def test_repr_hides_the_token() -> None:
    assert "secret-value" not in repr(Token("secret-value", 1.0))


def test_concurrent_callers_collapse_into_one_fetch() -> None:
    cache = TokenCache()
    calls: List[int] = []
    entered = threading.Semaphore(0)

    def fetch() -> Token:
        calls.append(1)
        for _ in range(31):  # every other caller is inside get() by now...
            assert entered.acquire(timeout=30)
        time.sleep(0.2)  # ...and past its first look: waiting on the lock
        return Token("t", time.time() + 1800)

    got: List[str] = []

    def worker() -> None:
        entered.release()
        got.append(cache.get("k", fetch, 60).value)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and got == ["t"] * 32


def test_a_failed_fetch_is_shared_by_the_callers_that_waited_for_it() -> None:
    cache = TokenCache()
    calls: List[int] = []
    entered = threading.Semaphore(0)

    def fetch() -> Token:
        calls.append(1)
        if len(calls) == 1:
            for _ in range(7):  # every other caller is inside get() by now...
                assert entered.acquire(timeout=30)
            time.sleep(0.2)  # ...and past its first look: waiting on the lock, so it shares this failure
        raise AuthenticationError("refused", status_code=401)

    errors: List[BaseException] = []

    def worker() -> None:
        entered.release()
        try:
            cache.get("k", fetch, 60)
        except AuthenticationError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 8 and len(calls) == 1
    with pytest.raises(AuthenticationError):  # a later caller tries again
        cache.get("k", fetch, 60)
    assert len(calls) == 2


def test_keys_never_share_a_token() -> None:
    cache = TokenCache()
    a = cache.get(("url", "key-a", "S"), lambda: Token("token-a", time.time() + 1800), 60)
    b = cache.get(("url", "key-b", "S"), lambda: Token("token-b", time.time() + 1800), 60)
    assert (a.value, b.value) == ("token-a", "token-b")


def test_invalidate_drops_only_the_token_that_failed() -> None:
    cache = TokenCache()
    cache.get("k", lambda: Token("new", time.time() + 1800), 60)
    cache.invalidate("k", "old")  # a stale 401 from before someone refreshed
    assert cache.peek("k").value == "new"
    cache.invalidate("k", "new")
    assert cache.peek("k") is None


def test_token_auth_sets_bearer_header() -> None:
    import requests

    auth = TokenAuth(lambda: Token("abc", time.time() + 1800), cache_key="k", cache=TokenCache())
    prepared = requests.Request("POST", "https://x.test/").prepare()
    auth(prepared)
    assert prepared.headers["Authorization"] == "Bearer abc"
    assert auth.handle_401 in prepared.hooks["response"]


def test_static_token_registers_no_refresh_hook() -> None:
    import requests

    auth = TokenAuth(None, access_token="user", cache=TokenCache())
    prepared = requests.Request("GET", "https://x.test/").prepare()
    auth(prepared)
    assert prepared.headers["Authorization"] == "Bearer user" and prepared.hooks["response"] == []


# -- a refused token against the wire (responses): one refresh and one resend, at most ---------


@responses.activate(assert_all_requests_are_fired=True)
def test_401_with_cached_token_refreshes_and_resends_exactly_once() -> None:
    oauth = responses.post(AUTH, json={"access_token": "old", "expires_at": 4102444800000})
    responses.post(AUTH, json={"access_token": "new", "expires_at": 4102444800000})
    api = responses.post(f"{BASE}/chat/completions", json={"status": 401, "message": "Token has expired"}, status=401)
    responses.post(f"{BASE}/chat/completions", body=stream_body("ok"), headers=SSE)
    assert list(chat("hi", **CFG)) == ["ok"]
    sent = [c.request.headers["Authorization"] for c in responses.calls if c.request.url.endswith("/chat/completions")]
    assert sent == ["Bearer old", "Bearer new"]
    assert len([c for c in responses.calls if c.request.url == AUTH]) == 2
    assert oauth.call_count + api.call_count >= 2


@responses.activate(assert_all_requests_are_fired=True)
def test_second_401_raises_authentication_error_without_a_third_try() -> None:
    responses.post(AUTH, json={"access_token": "t1", "expires_at": 4102444800000})
    responses.post(AUTH, json={"access_token": "t2", "expires_at": 4102444800000})
    api = responses.post(f"{BASE}/chat/completions", json={"status": 401, "message": "Token has expired"}, status=401)
    with pytest.raises(AuthenticationError) as info:
        chat("hi", **CFG)
    assert api.call_count == 2
    assert info.value.status_code == 401
    assert "after a token refresh" in str(info.value)


@responses.activate(assert_all_requests_are_fired=True)
def test_user_access_token_is_used_as_is_and_a_401_is_final() -> None:
    seen = []

    def refuse(request):  # type: ignore[no-untyped-def]
        seen.append(request.headers["Authorization"])  # as sent (errors redact it afterwards)
        return 401, {}, json.dumps({"status": 401, "message": "Token has expired"})

    responses.add_callback(responses.POST, f"{BASE}/chat/completions", callback=refuse)
    with pytest.raises(AuthenticationError) as info:
        chat("hi", access_token="user-token", base_url=BASE, auth_url=AUTH, max_retries=0)
    assert seen == ["Bearer user-token"]
    assert "user-token" not in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 403])
@responses.activate(assert_all_requests_are_fired=True)
def test_oauth_refusal_is_authentication_error(status: int) -> None:
    responses.post(AUTH, json={"code": 6, "message": "credentials doesn't match db data"}, status=status)
    with pytest.raises(AuthenticationError) as info:
        chat("hi", **CFG)
    assert "credentials doesn't match db data" in str(info.value)
    assert KEY not in str(info.value)

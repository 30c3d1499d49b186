"""The emulator's per-key limits and counters: ``max_in_flight`` 429s and exact OAuth counts."""

import base64
import http.client
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

import pytest
import requests

from gigachat_lite.emulator import DEFAULT_KEY, Emulator

TIMEOUT = 10
USER = [{"role": "user", "content": "hi"}]
OTHER_KEY = base64.b64encode(b"second-client:second-secret").decode("ascii")


def oauth(emu: Emulator, key: str) -> requests.Response:
    headers = {"Authorization": "Basic " + key, "RqUID": str(uuid.uuid4())}
    return requests.post(emu.auth_url, headers=headers, data={"scope": "GIGACHAT_API_PERS"}, timeout=TIMEOUT)


def bearer(emu: Emulator, key: str) -> Dict[str, str]:
    return {"Authorization": "Bearer " + oauth(emu, key).json()["access_token"]}


def chat(emu: Emulator, auth: Dict[str, str], path: str = "/api/v1/chat/completions") -> requests.Response:
    body = {"model": "GigaChat", "messages": USER}
    if "v2" in path:
        body["messages"] = [{"role": "user", "content": [{"text": "hi"}]}]
    return requests.post(emu.url + path, json=body, headers=auth, timeout=TIMEOUT)


def open_stream(emu: Emulator, auth: Dict[str, str]) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Start a stream and read its headers only: the emulator then holds the slot."""
    conn = http.client.HTTPConnection("127.0.0.1", int(emu.url.rsplit(":", 1)[1]), timeout=TIMEOUT)
    body = json.dumps({"model": "GigaChat", "messages": USER, "stream": True})
    conn.request("POST", "/api/v1/chat/completions", body, {"Content-Type": "application/json", **auth})
    return conn, conn.getresponse()


def wait_for(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


    # 0.2 s between stream events: a stream stays in flight long enough to collide with.
pytestmark = pytest.mark.gigachat_emulator(keys=[DEFAULT_KEY, OTHER_KEY], max_in_flight=1, retry_after=2, delay=0.2, reply="a reply long enough for several stream events")


@pytest.mark.slow
def test_over_the_limit_is_429_with_retry_after(emu):
    auth = bearer(emu, emu.api_key)
    conn, stream = open_stream(emu, auth)
    assert wait_for(lambda: emu.ledger.in_flight(emu.api_key) == 1)
    refused = chat(emu, bearer(emu, emu.api_key))  # another token of the same key shares the limit
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json() == {"status": 429, "message": "Too Many Requests"}
    assert refused.content.endswith(b"}\n")  # GigaChat's error body, trailing newline and all
    assert b"data: [DONE]" in stream.read()  # the stream itself is untouched
    conn.close()
    assert wait_for(lambda: emu.ledger.in_flight(emu.api_key) == 0)
    assert chat(emu, auth).status_code == 200
    assert (emu.too_many_requests, emu.ledger.refused(emu.api_key), emu.ledger.refused(OTHER_KEY)) == (1, 1, 0)
    assert emu.ledger.peak(emu.api_key) == 1


def test_keys_have_their_own_limits(emu):
    conn, _ = open_stream(emu, bearer(emu, emu.api_key))
    assert wait_for(lambda: emu.ledger.in_flight(emu.api_key) == 1)
    assert chat(emu, bearer(emu, OTHER_KEY)).status_code == 200
    assert chat(emu, bearer(emu, OTHER_KEY), "/api/v2/chat/completions").status_code == 200
    assert chat(emu, bearer(emu, emu.api_key), "/api/v2/chat/completions").status_code == 429
    conn.close()


@pytest.mark.slow
def test_a_dropped_stream_frees_its_slot(emu):
    auth = bearer(emu, emu.api_key)
    conn, stream = open_stream(emu, auth)
    stream.read(10)
    conn.close()  # the client goes away mid-stream
    assert wait_for(lambda: emu.ledger.in_flight(emu.api_key) == 0)
    assert chat(emu, auth).status_code == 200


def test_invalid_tokens_and_oauth_take_no_slot(emu):
    conn, _ = open_stream(emu, bearer(emu, emu.api_key))
    assert wait_for(lambda: emu.ledger.in_flight(emu.api_key) == 1)
    assert chat(emu, {"Authorization": "Bearer nope"}).status_code == 401
    assert oauth(emu, emu.api_key).status_code == 200
    assert emu.too_many_requests == 0
    conn.close()


@pytest.mark.slow
@pytest.mark.gigachat_emulator(max_in_flight=2, delay=0.05, reply="several pieces of text here")
def test_concurrent_callers_never_exceed_the_limit(emu):
    auth = bearer(emu, emu.api_key)

    def stream_once(_: int) -> int:
        body = {"model": "GigaChat", "messages": USER, "stream": True}
        return requests.post(emu.base_url + "/chat/completions", json=body, headers=auth,
                             timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(stream_once, range(24)))
    assert set(codes) <= {200, 429} and codes.count(429) > 0 and codes.count(200) >= 2
    assert emu.ledger.peak(emu.api_key) == 2
    assert emu.too_many_requests == codes.count(429) == emu.ledger.refused(emu.api_key)
    # The client has each whole reply before the server's handler has counted it out.
    assert wait_for(lambda: emu.ledger.in_flight(emu.api_key) == 0)


@pytest.mark.gigachat_emulator(delay=0.05, reply="several pieces of text here")
def test_no_limit_by_default_still_counts(emu):
    auth = bearer(emu, emu.api_key)
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: chat(emu, auth).status_code, range(8)))
    assert codes == [200] * 8 and emu.too_many_requests == 0
    emu.max_in_flight = 1  # settable on a running emulator
    conn, _ = open_stream(emu, auth)
    assert wait_for(lambda: emu.ledger.in_flight(emu.api_key) == 1)
    assert chat(emu, auth).status_code == 429
    conn.close()


@pytest.mark.slow
@pytest.mark.gigachat_emulator(keys=[DEFAULT_KEY, OTHER_KEY])
def test_oauth_calls_are_exact_under_concurrency_and_per_key(emu):
    keys: List[str] = [emu.api_key, OTHER_KEY, "not-a-key"] * 20
    barrier = threading.Barrier(12)

    def call(key: str) -> int:
        try:
            barrier.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass
        return oauth(emu, key).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(call, keys))
    assert codes.count(200) == 40 and codes.count(401) == 20
    assert emu.oauth_calls == 60
    assert emu.ledger.oauth_calls(emu.api_key) == emu.ledger.oauth_calls(OTHER_KEY) == 20
    assert emu.ledger.oauth_calls("not-a-key") == 20


@pytest.mark.parametrize("value", [0, -1, True])
def test_bad_limit_is_refused(value):
    with pytest.raises(ValueError, match="max_in_flight"):
        Emulator(max_in_flight=value)

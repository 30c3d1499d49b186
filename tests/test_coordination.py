"""The coordination stores in one process: the setting, the policies, file modes.

Cross-process behaviour is in test_coordination_fleet.py; secrets and Redis
outages in test_coordination_outages.py. Redis tests run a real
redis-server (tests/redis_server.py); nothing here fakes it.
"""

from __future__ import annotations

import os
import pathlib
import stat
import threading
import time
from typing import Any, Iterator, List

import pytest

from gigachat_lite.auth import Token, TokenAuth
from gigachat_lite.coordination import (
    ConcurrencyLimiter, ConcurrencyLimitTimeout, CoolDown, Coordination, CoordinationError, MemoryStore,
    OAuthRateGuard, SharedTokenCache, Store, check_store_url, close_all, coordination_for, fleet_key, open_store,
    process_store,
)
from gigachat_lite.errors import GigaChatError, RateLimitError
from redis_server import RedisServer, redis_server  # noqa: F401  (a fixture, used by getfixturevalue)

KEY = "dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ="  # base64("test-client:test-secret"), not a real key
AUTH = "https://ngw.test:9443/api/v2/oauth"
PERS = (AUTH, KEY, "GIGACHAT_API_PERS")
B2B = (AUTH, KEY, "GIGACHAT_API_B2B")


def later(seconds: float) -> Token:
    return Token("tok-" + str(time.time()), time.time() + seconds)


@pytest.fixture(params=["memory", "file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "file":
        yield open_store("file://" + str(tmp_path / "coordination"))
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        server.client().flushdb()
        opened = open_store(server.url)
        yield opened
        opened.close()


# -- the setting -------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "ftp://host/x", "file://relative/path", "file:///tmp/x?mode=1", "redis://", "redis://host:port/0",
    "redis://host:6379/zero", "memory://something", "sqlite:///tmp/db",
])
def test_a_bad_url_raises_valueerror_naming_the_setting(url: str) -> None:
    for check in (open_store, check_store_url):
        with pytest.raises(ValueError, match=r"coordination \(GIGACHAT_COORDINATION\)"):
            check(url)


def test_the_url_check_opens_nothing_and_a_file_url_may_be_quoted(tmp_path: pathlib.Path) -> None:
    assert check_store_url("redis://127.0.0.1:1/0") == "redis://127.0.0.1:1/0"  # nothing listens there
    assert check_store_url(None) is None and check_store_url("") is None
    store = open_store("file://" + str(tmp_path).replace("/", "%2F", 0) + "/my%20folder")
    assert (tmp_path / "my folder").is_dir() and store.url.endswith("/my folder")


def test_a_bad_url_message_hides_the_redis_password() -> None:
    with pytest.raises(ValueError) as caught:
        open_store("redis://user:hunter2@host:6379/zero")
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0?password=hunter2", "rediss://:hunter2@127.0.0.1:1/0?password=hunter2"])
def test_a_redis_password_in_the_query_is_hidden_too(url: str) -> None:
    # redis-py takes ?password= as the password, as it takes user:password@. Nothing listens on port 1.
    with pytest.warns(RuntimeWarning) as warned:
        store = open_store(url, fallback=True)  # warns that Redis is down, and coordinates in-process meanwhile
    assert "hunter2" not in store.url and "hunter2" not in repr(store) and "password=***" in store.url
    assert warned and not [w for w in warned if "hunter2" in str(w.message)]
    for attempt in (lambda: open_store(url), lambda: open_store(url.replace("/0", "/zero"))):
        with pytest.raises((CoordinationError, ValueError)) as caught:
            attempt()
        assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_an_unknown_option_in_a_redis_url_is_a_valueerror_naming_the_setting() -> None:
    # redis-py would raise its own TypeError at the first command.
    with pytest.raises(ValueError, match=r"coordination: invalid Redis URL redis://127\.0\.0\.1:1/0\?Password=\*\*\*: .*'Password'") as caught:
        open_store("redis://127.0.0.1:1/0?Password=hunter2")
    assert "hunter2" not in str(caught.value)


def test_a_non_string_setting_is_a_typeerror() -> None:
    with pytest.raises(TypeError, match="coordination"):
        open_store(6379)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", [None, "", "memory://"])
def test_no_setting_or_memory_is_the_one_process_store(url: Any) -> None:
    assert open_store(url) is process_store()
    coordination = coordination_for(url)
    assert coordination.store is process_store() and coordination_for(None) is coordination
    coordination.limiter.acquire(PERS, 1)
    close_all()  # forgets the shared objects and empties the in-process store
    assert coordination_for(url) is not coordination and coordination_for(url).limiter.in_flight(PERS) == 0


def test_the_typed_errors_belong_to_the_library_tree() -> None:
    assert issubclass(CoordinationError, GigaChatError)
    assert issubclass(ConcurrencyLimitTimeout, GigaChatError)


def test_the_default_limit_comes_from_the_scope() -> None:
    limiter = ConcurrencyLimiter(MemoryStore())
    assert limiter.limit_for(PERS) == 1
    assert limiter.limit_for(B2B) == 10
    assert limiter.limit_for((AUTH, KEY, "GIGACHAT_API_CORP")) == 10
    assert ConcurrencyLimiter(MemoryStore(), limit=3).limit_for(PERS) == 3


def test_the_fleet_key_depends_on_url_key_and_scope_and_shows_no_key() -> None:
    names = {fleet_key(k).name("tok") for k in [PERS, B2B, (AUTH + "x", KEY, "GIGACHAT_API_PERS"), (AUTH, KEY + "x", "GIGACHAT_API_PERS")]}
    assert len(names) == 4
    assert all(KEY not in name for name in names)
    assert KEY not in repr(fleet_key(PERS))


# -- the policies, on every backend ----------------------------------------------------------

@pytest.mark.slow
def test_a_limit_of_one_holds_between_threads(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, ttl=5.0)
    inside, peak, lock = [0], [0], threading.Lock()

    def run() -> None:
        for _ in range(5):
            with limiter.acquire(PERS, timeout=30):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.002)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert peak[0] == 1 and limiter.in_flight(PERS) == 0


@pytest.mark.slow
def test_acquire_times_out_with_the_typed_error_and_release_is_idempotent(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, limit=2, ttl=5.0)
    first, second = limiter.acquire(B2B, 1), limiter.acquire(B2B, 1)
    started = time.monotonic()
    with pytest.raises(ConcurrencyLimitTimeout, match=r"concurrency slot for GIGACHAT_API_B2B \(limit 2\)") as caught:
        limiter.acquire(B2B, timeout=0.3)
    assert time.monotonic() - started >= 0.3 and caught.value.limit == 2  # it waited its timeout (a lower bound only)
    assert KEY not in str(caught.value)
    first.release()
    first.release()  # a second release gives nothing back twice
    assert limiter.in_flight(B2B) == 1 and not first.held and second.held
    limiter.acquire(B2B, timeout=0.5).release()
    second.release()
    assert limiter.in_flight(B2B) == 0


@pytest.mark.slow
def test_a_held_lease_outlives_its_ttl_while_its_holder_lives(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, ttl=1.0)
    lease = limiter.acquire(PERS, 1)
    time.sleep(2.5)  # 2.5 TTLs: only the heartbeat keeps it
    assert lease.held and lease.renew() and limiter.in_flight(PERS) == 1
    with pytest.raises(ConcurrencyLimitTimeout):
        limiter.acquire(PERS, timeout=0.2)
    del lease  # garbage collection releases it too
    limiter.acquire(PERS, timeout=0.2).release()


@pytest.mark.slow
def test_a_short_lease_taken_while_the_heartbeat_sleeps_is_still_renewed_in_time(store: Store) -> None:
    # The heartbeat is woken by a new lease only when that lease falls due before it would wake.
    long_lease = ConcurrencyLimiter(store, ttl=30.0).acquire(B2B, 1)  # the heartbeat now naps 0.5 s at a time
    time.sleep(0.05)
    limiter = ConcurrencyLimiter(store, ttl=0.3)  # due in 0.1 s, expired in 0.3 s: before the heartbeat wakes
    lease = limiter.acquire(PERS, 1)
    with pytest.raises(ConcurrencyLimitTimeout):  # a waiter would take an expired lease's slot
        limiter.acquire(PERS, timeout=1.2)
    assert lease.held and limiter.in_flight(PERS) == 1
    lease.release()
    long_lease.release()


@pytest.mark.slow
def test_the_token_cache_fetches_once_and_drops_only_the_refused_token(store: Store) -> None:
    cache, fetched = SharedTokenCache(store), []

    def fetch() -> Token:
        fetched.append(1)
        time.sleep(0.05)
        return later(60)

    threads = [threading.Thread(target=cache.get, args=(PERS, fetch, 5)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first = cache.get(PERS, fetch, 5)
    assert len(fetched) == 1
    other = SharedTokenCache(store)  # another process's view: the store, no local copy
    assert other.peek(PERS) is not None and other.peek(PERS).value == first.value  # type: ignore[union-attr]
    other.invalidate(PERS, "some-older-token")  # a stale 401 keeps the current token
    assert SharedTokenCache(store).get(PERS, fetch, 5).value == first.value and len(fetched) == 1
    other.invalidate(PERS, first.value)
    assert SharedTokenCache(store).get(PERS, fetch, 5).value != first.value and len(fetched) == 2


def test_token_auth_takes_the_shared_cache(store: Store) -> None:
    auth = TokenAuth(lambda: Token("shared-tok", time.time() + 60), cache_key=PERS, cache=SharedTokenCache(store))  # type: ignore[arg-type]
    assert auth.current().value == "shared-tok"
    assert SharedTokenCache(store).peek(PERS).value == "shared-tok"  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_cool_down_is_shared_and_the_longer_one_wins(store: Store) -> None:
    cool = CoolDown(store)
    cool.cool_down(PERS, 0.6)
    cool.cool_down(PERS, 0.1)
    started = time.monotonic()
    slept = CoolDown(store).wait_cooldown(PERS, time.monotonic() + 5)
    assert time.monotonic() - started >= 0.4 and slept > 0.3  # the longer cool-down (a lower bound only)
    assert CoolDown(store).wait_cooldown(PERS) == 0.0
    cool.cool_down(PERS, 30)
    with pytest.raises(RateLimitError) as caught:  # at once, not after waiting to the deadline
        cool.wait_cooldown(PERS, time.monotonic() + 0.5)
    assert caught.value.retry_after is not None and caught.value.retry_after > 25


@pytest.mark.slow
def test_the_oauth_guard_keeps_any_window_under_the_rate(store: Store) -> None:
    guard = OAuthRateGuard(store, rate=4, window=0.5, name="oauth.rate.test")
    stamps = []
    for _ in range(10):
        guard.wait(time.monotonic() + 5)
        stamps.append(time.monotonic())
    # 5 calls never fit in 0.5 s (the slack is for this thread being scheduled late after a call)
    assert all(stamps[i + 4] - stamps[i] >= 0.35 for i in range(len(stamps) - 4))
    with pytest.raises(ConcurrencyLimitTimeout, match="OAuth rate budget"):
        for _ in range(5):
            guard.wait(time.monotonic() + 0.05)


# -- the file backend: modes ------------------------------------------------------------------

def test_the_folder_is_0700_and_every_file_0600_whatever_the_umask(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "deep" / "coordination"
    old = os.umask(0)
    try:
        coordination = Coordination(open_store("file://" + str(folder)))
        coordination.tokens.get(PERS, lambda: later(60), 5)
        coordination.limiter.acquire(PERS, 1).release()
        coordination.cooldown.cool_down(PERS, 5)
        coordination.oauth_guard.wait()
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert len(files) >= 6
    assert {oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {"0o600"}


# -- first come, first served (issue 24) ------------------------------------------------------

def eventually(condition: Any, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_slots_go_to_waiting_threads_in_arrival_order(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, ttl=10.0)
    held = limiter.acquire(PERS, 1)
    order: List[int] = []
    threads = []

    def wait_in_line(number: int) -> None:
        with limiter.acquire(PERS, timeout=30):
            order.append(number)
            time.sleep(0.002)

    for number in range(6):
        thread = threading.Thread(target=wait_in_line, args=(number,))
        thread.start()
        threads.append(thread)
        # The next one starts only once this one is queued: arrival order is known.
        assert eventually(lambda: limiter.waiting(PERS) == number + 1), limiter.waiting(PERS)
    held.release()
    for thread in threads:
        thread.join(30)
    assert order == list(range(6))  # polling would have served them in any order
    assert limiter.in_flight(PERS) == 0 and limiter.waiting(PERS) == 0


@pytest.mark.slow
def test_a_waiter_sleeps_until_its_turn_with_a_bounded_number_of_store_calls(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = ConcurrencyLimiter(store, ttl=30.0)  # nobody renews within the test: only waiting counts
    held = limiter.acquire(PERS, 1)
    calls: List[str] = []
    for name in ("lease_acquire", "lease_queue", "lease_wait", "lease_leave"):
        method = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _m=method, _n=name: calls.append(_n) or _m(*a))
    got: List[Any] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire(PERS, timeout=20)))
    waiter.start()
    assert eventually(lambda: limiter.waiting(PERS) == 1)
    time.sleep(1.0)  # a poller would call the store every few milliseconds meanwhile
    held.release()
    waiter.join(20)
    assert got and got[0].held
    # One call to queue, one to sleep until served (a spurious wake-up may add one).
    assert calls.count("lease_queue") + calls.count("lease_wait") + calls.count("lease_acquire") <= 3, calls
    got[0].release()


@pytest.mark.slow
def test_a_waiter_that_gives_up_leaves_the_queue_to_the_next(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, ttl=10.0)
    held = limiter.acquire(PERS, 1)
    outcomes: List[Any] = []

    def wait(timeout: float) -> None:
        try:
            outcomes.append(limiter.acquire(PERS, timeout=timeout))
        except ConcurrencyLimitTimeout as exc:
            outcomes.append(exc)

    impatient = threading.Thread(target=wait, args=(0.5,))
    impatient.start()
    assert eventually(lambda: limiter.waiting(PERS) == 1)
    patient = threading.Thread(target=wait, args=(30,))
    patient.start()
    assert eventually(lambda: limiter.waiting(PERS) == 2)
    impatient.join(30)
    assert isinstance(outcomes[0], ConcurrencyLimitTimeout) and limiter.waiting(PERS) == 1
    held.release()
    patient.join(30)
    assert outcomes[1].held and limiter.waiting(PERS) == 0
    outcomes[1].release()


# -- the file store's clock (issue 20, item 10) ------------------------------------------------

def step_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The machine's wall clock jumps by ``seconds`` (NTP, an operator, a VM resumed)."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + seconds)


@pytest.mark.slow
def test_a_clock_set_back_an_hour_does_not_stretch_a_file_store_pause(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("file://" + str(tmp_path / "coordination"))
    CoolDown(store).cool_down(PERS, 2)
    step_clock(monkeypatch, -3600)
    left = CoolDown(store).remaining(PERS)
    assert 0 < left <= 2  # was 3602 s: a 2 s pause turned into an hour
    started = time.monotonic()
    CoolDown(store).wait_cooldown(PERS, time.monotonic() + 10)
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_dead_holders_slot_frees_within_its_ttl_though_the_clock_went_back(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("file://" + str(tmp_path / "coordination"))
    assert store.lease_acquire("slots.PERS.dead", "dead-holder", 1, 1.0)  # nobody renews it
    step_clock(monkeypatch, -3600)
    assert not store.lease_acquire("slots.PERS.dead", "next", 1, 1.0)
    assert eventually(lambda: store.lease_acquire("slots.PERS.dead", "next", 1, 1.0), 10)


def test_a_clock_set_forward_frees_neither_a_held_slot_nor_a_token(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("file://" + str(tmp_path / "coordination"))
    limiter = ConcurrencyLimiter(store, ttl=10.0)
    held = limiter.acquire(PERS, 1)
    store.set("tok.PERS.forward", "token", 60)
    step_clock(monkeypatch, 3600)
    assert limiter.in_flight(PERS) == 1 and store.get("tok.PERS.forward") == "token"
    with pytest.raises(ConcurrencyLimitTimeout):
        limiter.acquire(PERS, timeout=0.2)
    held.release()


def test_an_entry_written_before_a_reboot_is_gone(tmp_path: pathlib.Path) -> None:
    from gigachat_lite.coordination import FileStore

    boot_clock = [10.0**6]  # the last boot ran 11 days
    store = FileStore(str(tmp_path / "coordination"), clock=lambda: boot_clock[0])
    store.set("tok.PERS.boot", "token", 3600)
    store.extend("cool.PERS.boot", 3600)
    assert store.lease_acquire("slots.PERS.boot", "old-holder", 1, 3600)
    boot_clock[0] = 5.0  # rebooted: the clock starts again from zero
    assert store.get("tok.PERS.boot") is None and store.remaining("cool.PERS.boot") == 0.0
    assert store.lease_count("slots.PERS.boot") == 0 and store.lease_acquire("slots.PERS.boot", "new-holder", 1, 10)


def test_a_garbled_slot_file_keeps_what_can_be_read(tmp_path: pathlib.Path) -> None:
    from gigachat_lite.coordination import FileStore

    folder = tmp_path / "coordination"
    store = FileStore(str(folder))
    now = store.clock()
    (folder / "slots.PERS.garbled.json").write_text(
        '{"leases": {"good": [%r, %r], "bad": "x", "worse": [1, 2, 3]}, "queue": [[1, 2], "x", ["w", 1, 2, 0]]}'
        % (now, now + 60))
    assert store.lease_count("slots.PERS.garbled") == 1 and store.lease_waiting("slots.PERS.garbled") == 0
    assert not store.lease_acquire("slots.PERS.garbled", "next", 1, 10) and store.lease_acquire("slots.PERS.garbled", "next", 2, 10)
    (folder / "slots.PERS.garbled.json").write_text("{not json")
    assert store.lease_count("slots.PERS.garbled") == 0 and store.lease_acquire("slots.PERS.garbled", "next", 1, 10)


@pytest.mark.parametrize("garbage", [
    '{"leases": {"x": [0, 1e400]}}', '{"queue": [["x", 0, 1e400, 1e400]]}', '{"leases": {"x": [0, Infinity]}}',
    '{"queue": [["x", 0, NaN, 1]]}', '{"leases": {}, "queue": ' + "[" * 100000 + "]" * 100000 + "}",
])
def test_a_slot_file_with_numbers_past_floats_or_nested_past_the_parser_counts_as_empty(
    tmp_path: pathlib.Path, garbage: str
) -> None:
    from gigachat_lite.coordination import FileStore

    folder = tmp_path / "coordination"
    store = FileStore(str(folder))
    (folder / "slots.PERS.garbled.json").write_text(garbage)
    assert store.lease_count("slots.PERS.garbled") == 0 and store.lease_waiting("slots.PERS.garbled") == 0
    assert store.lease_acquire("slots.PERS.garbled", "next", 1, 10)  # no entry that never expires holds the slot
    store.lease_release("slots.PERS.garbled", "next")


def test_a_renewal_racing_a_release_leaves_no_slot_taken(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = ConcurrencyLimiter(store, ttl=30.0)
    lease = limiter.acquire(PERS, 1)
    renew = store.lease_renew
    arrived = threading.Event()

    def late_renew(*args: Any) -> bool:
        arrived.wait(5)  # the heartbeat's renewal reaches the store only after the release
        return renew(*args)

    monkeypatch.setattr(store, "lease_renew", late_renew)
    heartbeat = threading.Thread(target=lease.renew)
    heartbeat.start()
    time.sleep(0.05)
    lease.release()
    arrived.set()
    heartbeat.join(10)
    # The renewal found the lease gone and a slot free: without the give-back it would hold the
    # personal key's only slot for a whole TTL, for a call that has ended.
    assert limiter.in_flight(PERS) == 0
    limiter.acquire(PERS, timeout=1).release()


class _Outage(MemoryStore):
    """A store whose renewals fail while ``down`` is set (the store unreachable), counting them."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.renewals = 0

    def lease_renew(self, name: str, holder: str, ttl: float, limit: int = 0) -> bool:
        self.renewals += 1
        if self.down:
            raise CoordinationError("the store is down")
        return super().lease_renew(name, holder, ttl, limit)


def test_the_heartbeat_tries_a_store_that_is_down_once_a_second_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    store = _Outage()
    lease = ConcurrencyLimiter(store, ttl=3.0).acquire(("https://a.test/oauth", "outage", "GIGACHAT_API_PERS"), timeout=1)
    try:
        with caplog.at_level("INFO", logger="gigachat_lite.coordination"):
            store.down = True
            time.sleep(2.5)  # renewals fall due every second; failed ones are tried again after half a second
            tried = store.renewals
            store.down = False
            deadline = time.monotonic() + 5
            while store.renewals == tried and time.monotonic() < deadline:
                time.sleep(0.05)
        assert 1 <= tried <= 8, tried  # it spun: tens of thousands in 2.5 s
        warnings = [r for r in caplog.records if "could not renew" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
        assert any("renewed a concurrency slot again" in r.getMessage() for r in caplog.records)
        assert lease.held
    finally:
        lease.release()

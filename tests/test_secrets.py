"""No secret anywhere: the key, every token the emulator issued, a proxy password.

With DEBUG logging on for every logger (urllib3 included), the fault matrix,
the bad-input table, async streams and the gpt4free provider all run; then
every log record (with its traceback), every repr, every exception message and
formatted traceback (chained causes included) and every file in the cache
folder is searched. ``run_scenarios`` and ``find_leaks`` are reused by
``scripts/reliability.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
import os
import pathlib
import traceback
from typing import Iterator, List, Tuple

import pytest

from gigachat_lite import GigaChat, Session, aio, config as config_module
from gigachat_lite.emulator import Emulator, Fault

import test_bad_input
import test_fault_matrix
from reliability_support import Proxy

PROXY_USER, PROXY_PASSWORD = "proxyuser", "proxy-pa55word-secret"
FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


def recording_emulator() -> Tuple[Emulator, List[str]]:
    """The fault matrix's TLS emulator, remembering every token it issues."""
    emu = test_fault_matrix.make_emulator()
    issued: List[str] = []
    original = emu.issue_token

    def issue_token() -> Tuple[str, int]:
        token, expires = original()
        issued.append(token)
        return token, expires

    emu.issue_token = issue_token  # type: ignore[method-assign]
    return emu, issued


def secrets_of(emu: Emulator, issued: List[str]) -> List[Tuple[str, str]]:
    client_secret = base64.b64decode(emu.api_key).decode().split(":", 1)[1]
    return ([("key", emu.api_key), ("client secret", client_secret), ("proxy password", PROXY_PASSWORD)]
            + [(f"token #{i}", t) for i, t in enumerate(issued)])


def _error_texts(label: str, exc: BaseException) -> List[Tuple[str, str]]:
    formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return [(f"{label}: str", str(exc)), (f"{label}: repr", repr(exc)), (f"{label}: traceback", formatted)]


def run_scenarios(emu: Emulator) -> List[Tuple[str, str]]:
    """Run every path, failing ones included; return (where, text) for each repr, message and traceback."""
    texts: List[Tuple[str, str]] = []
    for row in test_fault_matrix.ROWS:
        outcome = test_fault_matrix.run_row(row, emu)
        if outcome.error is not None:
            texts += _error_texts(f"fault {row.name}", outcome.error)
    for entry, case in test_bad_input.all_cases():
        try:
            test_bad_input.call_entry(entry, case, emu)
        except BaseException as exc:
            texts += _error_texts(f"bad input {entry} {case.name}", exc)

    cfg = emu.client_config()
    with Proxy(refuse=True) as proxy:
        url = proxy.url.replace("http://", f"http://{PROXY_USER}:{PROXY_PASSWORD}@")
        with Session(**cfg, proxy=url, max_retries=0) as s:
            texts += [("Session repr (proxy)", repr(s)), ("Config repr (proxy)", repr(s.config))]
            try:
                s.chat("hi")
            except BaseException as exc:
                texts += _error_texts("refusing proxy with a password", exc)
    try:
        config_module.Config.resolve(api_key=emu.api_key, proxy=f"ftp://{PROXY_USER}:{PROXY_PASSWORD}@h:1")
    except BaseException as exc:
        texts += _error_texts("bad proxy URL with a password", exc)

    with Session(**cfg) as s:
        stream = s.chat("hi")
        texts.append(("ChatStream repr (new)", repr(stream)))
        "".join(stream)
        reply = s.chat("hi", stream=False)
        texts += [("Session repr", repr(s)), ("Config repr", repr(s.config)), ("Token repr", repr(s.token)),
                  ("Token str", str(s.token)), ("ChatStream repr", repr(stream)), ("ChatReply repr", repr(reply)),
                  ("auth repr", repr(s.auth)), ("headers", repr({k: v for k, v in s.headers.items()}))]
    with Session(**{k: v for k, v in cfg.items() if k != "ca_bundle"}) as s:  # writes the default CA bundle
        texts.append(("Session repr (default bundle)", repr(s)))
    with Session(**cfg, access_token=emu.issue_token()[0]) as s:
        texts += [("Config repr (access token)", repr(s.config)), ("Token repr (access token)", repr(s.token))]

    async def streams() -> None:
        stream = aio.chat("hi", **cfg)
        texts.append(("AsyncStream repr (new)", repr(stream)))
        async for _ in stream:
            pass
        texts.append(("AsyncStream repr (done)", repr(stream)))
        emu.add_fault(Fault(path="chat/completions", stream_error_after=1, status=401, times=1))
        try:
            async for _ in aio.chat("hi", **cfg):
                pass
        except BaseException as exc:
            texts.extend(_error_texts("async in-stream error", exc))
        rest = dict(cfg)
        key = rest.pop("api_key")
        async for _ in GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": "hi"}], api_key=key, **rest):
            pass
        emu.revoke_tokens()
        emu.add_fault(Fault(path="chat/completions", unauthorized=True, times=2))
        try:
            "".join(GigaChat.create_completion("GigaChat", [{"role": "user", "content": "hi"}], api_key=key, **rest))
        except BaseException as exc:
            texts.extend(_error_texts("provider persistent 401", exc))
        emu.clear_faults()

    contextvars.copy_context().run(asyncio.run, streams())
    return texts


def cache_files() -> List[Tuple[str, str]]:
    folder = os.environ.get("GIGACHAT_LITE_CACHE_DIR")
    found = []
    if folder and os.path.isdir(folder):
        for path in pathlib.Path(folder).rglob("*"):
            if path.is_file():
                found.append((f"file {path}", path.read_bytes().decode("latin-1")))
    return found


def find_leaks(texts: List[Tuple[str, str]], secrets: List[Tuple[str, str]]) -> List[str]:
    return [f"{name} in {where}" for where, text in texts for name, secret in secrets if secret and secret in text]


def log_texts(records: List[logging.LogRecord]) -> List[Tuple[str, str]]:
    return [(f"log {r.name}", FORMAT.format(r)) for r in records]


@pytest.fixture()
def recorded() -> Iterator[Tuple[Emulator, List[str]]]:
    emu, issued = recording_emulator()
    with emu:
        yield emu, issued


@pytest.mark.slow
def test_no_secret_in_logs_reprs_errors_tracebacks_or_files(recorded: Tuple[Emulator, List[str]],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    emu, issued = recorded
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "gigachat_lite", "gigachat_lite.emulator", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    texts = run_scenarios(emu)
    texts += log_texts(caplog.records) + cache_files()
    secrets = secrets_of(emu, issued)
    # The search is real: enough tokens, records and errors to have found something.
    assert len(issued) >= 30 and len(caplog.records) > 200 and len(texts) > 500
    assert any("urllib3" in where for where, _ in texts) and any("bundle" in where or "file" in where for where, _ in texts)
    assert find_leaks(texts, secrets) == []


def test_the_search_would_find_a_leak() -> None:
    """The control: a secret put into a text is found."""
    assert find_leaks([("somewhere", "Bearer abc.def")], [("token", "abc.def")]) == ["token in somewhere"]

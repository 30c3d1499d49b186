"""The ``gigachat-lite`` command, run as a real subprocess against an in-process emulator.

Each run gets a built environment: no ``GIGACHAT_*`` or proxy variable leaks in
from the developer's shell, only what the test sets. Everything listens on
127.0.0.1.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional

import pytest

from gigachat_lite.emulator import Emulator, Fault

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="signals and pseudo-terminals are POSIX")

WRONG_KEY = "d3JvbmctY2xpZW50Ondyb25nLXNlY3JldC0xMjM0NQ=="  # base64("wrong-client:wrong-secret-12345")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("cli-cache"))


def cli_env(cache_dir: str, emulator: Optional[Emulator] = None, **extra: str) -> Dict[str, str]:
    """A clean environment for the CLI: the parent's minus GIGACHAT_* and proxies, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GIGACHAT_") and name.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    if os.environ.get("PYTHONPATH"):  # the package may not be installed: run it from the checkout
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(
        PYTHONIOENCODING="utf-8",
        GIGACHAT_LITE_CACHE_DIR=cache_dir,  # the CA bundle is written here, not in ~/.cache
        XDG_DATA_HOME=os.path.join(cache_dir, "data"),  # the prompt history, not in ~/.local/share
        NO_PROXY="127.0.0.1,localhost",
        TERM="dumb",
    )
    if emulator is not None:
        env.update(emulator.env())
    env.update(extra)
    return env


def run_cli(*args: str, env: Dict[str, str], input: Optional[str] = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gigachat_lite", *args],
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def sigint_default() -> None:
    """``preexec_fn`` for a CLI process that is sent Ctrl-C: SIGINT handled as usual.

    A shell that started the tests in the background (``pytest &``, nohup) may ignore
    SIGINT, and an ignored signal stays ignored across exec: Python would then never
    raise KeyboardInterrupt, and every Ctrl-C test would fail for how it was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen_cli(*args: str, env: Dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gigachat_lite", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_default if sys.platform != "win32" else None,
    )


def chat_requests(emulator: Emulator) -> List[dict]:
    return [r.json for r in emulator.requests if r.path.endswith("/chat/completions")]


def assert_one_error_line(stderr: str, *secrets: str) -> str:
    """stderr is exactly one ``gigachat-lite: error:`` line, with no traceback and no secret."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gigachat-lite: error: "), stderr
    for secret in secrets:
        assert secret not in stderr
    return lines[0]


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]




# -- chat, one shot --------------------------------------------------------------------


@pytest.mark.slow
def test_chat_argument_streams_the_reply(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "Привет", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Привет\n", "")
    (body,) = chat_requests(emu)
    assert body["stream"] is True
    assert body["model"] == "GigaChat"
    assert body["messages"] == [{"role": "user", "content": "Привет"}]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["--api-version", "GIGACHAT_API_VERSION"])
def test_chat_speaks_the_v2_contract_when_asked(emu: Emulator, cache_dir: str, how: str) -> None:
    env = cli_env(cache_dir, emu)
    args = ["chat", "Привет"]
    if how == "--api-version":
        args += ["--api-version", "v2"]
    else:
        env["GIGACHAT_API_VERSION"] = "v2"
    result = run_cli(*args, env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Привет\n", "")
    (request,) = [r for r in emu.requests if r.path.endswith("/chat/completions")]
    assert request.path == "/api/v2/chat/completions"
    assert request.json["messages"] == [{"role": "user", "content": [{"text": "Привет"}]}]


@pytest.mark.slow
def test_a_bad_api_version_names_the_flag(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "hi", "--api-version", "v3", env=cli_env(cache_dir, emu))
    assert result.returncode == 2 and "--api-version" in result.stderr and not emu.requests


@pytest.mark.slow
def test_chat_words_are_joined_and_options_reach_the_body(emu: Emulator, cache_dir: str) -> None:
    result = run_cli(
        "chat", "как", "дела", "--model", "GigaChat-Pro", "--system", "Будь краток",
        "--temperature", "0.5", "--max-tokens", "100", env=cli_env(cache_dir, emu),
    )
    assert (result.returncode, result.stdout) == (0, "Echo: как дела\n")
    (body,) = chat_requests(emu)
    assert body["model"] == "GigaChat-Pro"
    assert body["temperature"] == 0.5
    assert body["max_tokens"] == 100
    assert body["messages"] == [
        {"role": "system", "content": "Будь краток"},
        {"role": "user", "content": "как дела"},
    ]


@pytest.mark.slow
@pytest.mark.parametrize("args", [[], ["--no-stream"], ["--api-version", "v2"]], ids=["stream", "whole", "v2"])
def test_a_reply_cut_by_max_tokens_says_so_on_stderr(emu: Emulator, cache_dir: str, args: List[str]) -> None:
    env = cli_env(cache_dir, emu)
    result = run_cli("chat", "--max-tokens", "1", *args, "Привет мир", env=env)
    # One token is 8 characters here: stdout is the reply alone, the note one line on stderr.
    assert (result.returncode, result.stdout) == (0, "Echo: Пр\n")
    assert result.stderr == "gigachat-lite: warning: the reply was cut at --max-tokens 1 (finish_reason length)\n"
    result = run_cli("chat", "--json", "--max-tokens", "1", *args, "Привет мир", env=env)
    assert (result.returncode, result.stderr) == (0, "")  # the JSON says it: "finish_reason": "length"
    assert json.loads(result.stdout.splitlines()[-1])["finish_reason"] == "length"
    result = run_cli("chat", "--max-tokens", "5", *args, "Привет мир", env=env)  # room enough: no note
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Привет мир\n", "")


@pytest.mark.slow
def test_chat_prompt_from_piped_stdin(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", env=cli_env(cache_dir, emu), input="Привет из stdin\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Привет из stdin\n", "")


@pytest.mark.slow
def test_chat_empty_stdin_is_a_usage_error(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", env=cli_env(cache_dir, emu), input="  \n")
    assert result.returncode == 2
    assert assert_one_error_line(result.stderr) == "gigachat-lite: error: the prompt is empty"
    assert chat_requests(emu) == []


@pytest.mark.slow
def test_chat_stdin_that_is_not_text_is_a_usage_error(emu: Emulator, cache_dir: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gigachat_lite", "chat"], env=cli_env(cache_dir, emu),
        input=b"\xff\xfe not utf-8", capture_output=True, timeout=20,
    )
    assert result.returncode == 2
    assert assert_one_error_line(result.stderr.decode()) == "gigachat-lite: error: stdin is not utf-8 text (byte 0)"


@pytest.mark.slow
def test_chat_no_stream(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "--no-stream", "Привет", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Привет\n", "")
    (body,) = chat_requests(emu)
    assert "stream" not in body


@pytest.mark.slow
def test_chat_json_lines(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "--json", "Привет мир", env=cli_env(cache_dir, emu))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # piece_size 8: "Echo: Привет мир" (16 characters) arrives in two chunks
    assert lines[:-1] == [{"content": "Echo: Пр"}, {"content": "ивет мир"}]
    assert lines[-1] == {
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4, "precached_prompt_tokens": 0},
        "model": "GigaChat:emulator",
    }


@pytest.mark.slow
def test_chat_json_no_stream_is_one_content_line(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "--json", "--no-stream", "Привет", env=cli_env(cache_dir, emu))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"content": "Echo: Привет"}
    assert lines[1]["finish_reason"] == "stop"
    assert len(lines) == 2


@pytest.mark.slow
def test_chat_credentials_file(emu: Emulator, cache_dir: str, tmp_path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(emu.api_key + "\n", encoding="utf-8")
    env = cli_env(cache_dir, emu)
    del env["GIGACHAT_CREDENTIALS"]
    result = run_cli("chat", "--credentials-file", str(key_file), "hi", env=env)
    assert (result.returncode, result.stdout) == (0, "Echo: hi\n")


@pytest.mark.slow
def test_credentials_file_wins_over_the_environment(emu: Emulator, cache_dir: str, tmp_path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(WRONG_KEY, encoding="utf-8")
    result = run_cli("chat", "--credentials-file", str(key_file), "hi", env=cli_env(cache_dir, emu))
    assert result.returncode == 3
    assert_one_error_line(result.stderr, WRONG_KEY, emu.api_key)
    assert result.stdout == ""


# -- models ----------------------------------------------------------------------------


@pytest.mark.slow
def test_models_lists_ids(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("models", env=cli_env(cache_dir, emu))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [model_id for model_id, _ in emu.model_list()]


@pytest.mark.slow
def test_models_json(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("models", "--json", env=cli_env(cache_dir, emu))
    first = json.loads(result.stdout.splitlines()[0])
    assert first == {"id": "GigaChat", "object": "model", "owned_by": "salutedevices", "type": "chat"}


# -- demo, version, help ----------------------------------------------------------------


@pytest.mark.slow
def test_demo_needs_no_configuration_at_all(cache_dir: str, refusing_port: int) -> None:
    # A proxy that does not answer: the demo's loopback traffic must not go through it.
    proxy = f"http://127.0.0.1:{refusing_port}"
    env = cli_env(cache_dir, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    env.pop("NO_PROXY")
    assert not any(name.startswith("GIGACHAT_") and name != "GIGACHAT_LITE_CACHE_DIR" for name in env)
    result = run_cli("demo", "--delay", "0", "Привет", env=env)
    assert (result.returncode, result.stdout) == (0, "Echo: Привет\n"), result.stderr
    assert "finish_reason=stop" in result.stderr
    assert "local GigaChat emulator" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_demo_ignores_the_gigachat_variables(cache_dir: str, refusing_port: int, tmp_path) -> None:
    # Set for the real service, or set wrong: the demo runs against its own emulator and needs none.
    bad = dict(
        GIGACHAT_TIMEOUT="abc", GIGACHAT_SCOPE="NOPE", GIGACHAT_VERIFY_SSL_CERTS="maybe", GIGACHAT_MAX_RETRIES="-1",
        GIGACHAT_CA_BUNDLE_FILE=str(tmp_path / "missing.pem"), GIGACHAT_MODEL="Nope", GIGACHAT_API_VERSION="v9",
        GIGACHAT_COORDINATION="nope://", GIGACHAT_FIRST_BYTE_TIMEOUT="abc", GIGACHAT_CREDENTIALS="bad",
        GIGACHAT_BASE_URL=f"http://127.0.0.1:{refusing_port}/api/v1",
    )
    result = run_cli("demo", "--delay", "0", "Привет", env=cli_env(cache_dir, **bad))
    assert (result.returncode, result.stdout) == (0, "Echo: Привет\n"), result.stderr
    assert "finish_reason=stop" in result.stderr and "error" not in result.stderr


@pytest.mark.slow
def test_demo_default_prompt(cache_dir: str) -> None:
    result = run_cli("demo", env=cli_env(cache_dir))
    assert (result.returncode, result.stdout) == (0, "Echo: Привет! Что ты умеешь?\n")


@pytest.mark.slow
def test_version_and_help(cache_dir: str) -> None:
    from gigachat_lite import __version__

    result = run_cli("--version", env=cli_env(cache_dir))
    assert (result.returncode, result.stdout) == (0, f"gigachat-lite {__version__}\n")
    result = run_cli("--help", env=cli_env(cache_dir))
    assert result.returncode == 0
    assert "exit codes:" in result.stdout and "130  interrupted" in result.stdout


@pytest.mark.slow
def test_no_command_is_a_usage_error(cache_dir: str) -> None:
    result = run_cli(env=cli_env(cache_dir))
    assert result.returncode == 2
    assert_one_error_line(result.stderr)


@pytest.mark.slow
def test_importing_the_cli_stays_light(cache_dir: str) -> None:
    code = (
        "import sys, gigachat_lite.cli; "
        "print(sorted(m for m in ('readline', 'gigachat_lite.emulator', 'http.server', 'shlex') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=cli_env(cache_dir), capture_output=True, text=True, timeout=20)
    assert result.stdout == "[]\n", result.stderr


# -- errors and exit codes ---------------------------------------------------------------


@pytest.mark.slow
def test_missing_key_exits_3(cache_dir: str) -> None:
    result = run_cli("chat", "hi", env=cli_env(cache_dir))
    assert (result.returncode, result.stdout) == (3, "")
    assert "GIGACHAT_CREDENTIALS" in assert_one_error_line(result.stderr)


@pytest.mark.slow
def test_wrong_key_exits_3_without_showing_it(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "hi", env=cli_env(cache_dir, emu, GIGACHAT_CREDENTIALS=WRONG_KEY))
    assert (result.returncode, result.stdout) == (3, "")
    line = assert_one_error_line(result.stderr, WRONG_KEY)
    assert "OAuth refused the authorization key" in line


@pytest.mark.slow
def test_unreachable_base_url_exits_4(emu: Emulator, cache_dir: str, refusing_port: int) -> None:
    env = cli_env(cache_dir, emu, GIGACHAT_BASE_URL=f"http://127.0.0.1:{refusing_port}/api/v1", GIGACHAT_MAX_RETRIES="0")
    result = run_cli("chat", "hi", env=env)
    assert (result.returncode, result.stdout) == (4, ""), result.stderr
    line = assert_one_error_line(result.stderr, emu.api_key)
    # One plain sentence, not urllib3's "HTTPConnection(host=...): Failed to establish ... [Errno 111]" (issue 13).
    assert line == f"gigachat-lite: error: cannot connect to 127.0.0.1:{refusing_port}: connection refused", line
    assert emu.oauth_calls == 1  # the key was good: it failed at the API, not at OAuth


@pytest.mark.slow
def test_unknown_model_exits_1(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "--model", "NoSuchModel", "hi", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout) == (1, "")
    line = assert_one_error_line(result.stderr, emu.api_key)
    assert "404: No such model" in line and "NoSuchModel" in line


@pytest.mark.slow
def test_broken_stream_exits_1(emu: Emulator, cache_dir: str) -> None:
    emu.set_reply("x" * 40)
    emu.add_fault(Fault(path="chat/completions", cut_after=2))
    result = run_cli("chat", "hi", env=cli_env(cache_dir, emu))
    assert result.returncode == 1
    assert result.stdout == "x" * 16 + "\n"  # what arrived intact, then a newline before the error
    assert "the stream was cut" in assert_one_error_line(result.stderr, emu.api_key)


@pytest.mark.slow
def test_stalled_stream_is_a_network_error(emu: Emulator, cache_dir: str) -> None:
    # StreamTimeoutError is both a StreamError and a TransportError: a stall is the network's, 4.
    emu.set_reply("x" * 40)
    emu.add_fault(Fault(path="chat/completions", stall=5, after=2))
    result = run_cli("chat", "--timeout", "0.5", "hi", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout) == (4, "x" * 16 + "\n")
    assert "stalled" in assert_one_error_line(result.stderr, emu.api_key)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--timeout", "abc"], "timeout must be a number of seconds, got 'abc'"),
        (["--timeout", "-1"], "timeout must be a positive number of seconds"),
        (["--temperature", "0"], "temperature must be > 0"),
        (["--temperature", "warm"], "argument -t/--temperature: invalid float value: 'warm'"),
        (["--base-url", "ftp://example"], "--base-url must be an http(s) URL"),
        (["--scope", "NOPE"], "argument --scope: invalid choice: 'NOPE'"),
    ],
)
@pytest.mark.slow
def test_bad_input_exits_2(emu: Emulator, cache_dir: str, args: List[str], fragment: str) -> None:
    result = run_cli("chat", *args, "hi", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout) == (2, "")
    assert fragment in assert_one_error_line(result.stderr, emu.api_key)
    assert chat_requests(emu) == []


@pytest.mark.slow
@pytest.mark.parametrize("option", ["--api-key", "--credentials", "--key"])
def test_a_key_on_the_command_line_is_refused_and_not_echoed(emu: Emulator, cache_dir: str, option: str) -> None:
    secret = "c2VjcmV0LWtleS1vbi10aGUtY29tbWFuZC1saW5l"
    for args in ([option, secret, "hi"], [f"{option}={secret}", "hi"]):
        result = run_cli("chat", *args, env=cli_env(cache_dir, emu))
        assert (result.returncode, result.stdout) == (2, "")
        assert "GIGACHAT_CREDENTIALS" in assert_one_error_line(result.stderr, secret)


@pytest.mark.slow
def test_unreadable_credentials_file_exits_2(cache_dir: str, tmp_path) -> None:
    missing = tmp_path / "nope"
    result = run_cli("models", "--credentials-file", str(missing), env=cli_env(cache_dir))
    assert result.returncode == 2
    assert assert_one_error_line(result.stderr) == f"gigachat-lite: error: cannot read the credentials file {missing}: No such file or directory"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = run_cli("models", "--credentials-file", str(empty), env=cli_env(cache_dir))
    assert (result.returncode, result.stderr) == (2, f"gigachat-lite: error: the credentials file {empty} is empty\n")


@pytest.mark.slow
def test_models_errors_share_the_exit_codes(emu: Emulator, cache_dir: str) -> None:
    assert run_cli("models", env=cli_env(cache_dir)).returncode == 3
    assert run_cli("models", env=cli_env(cache_dir, emu, GIGACHAT_CREDENTIALS=WRONG_KEY)).returncode == 3
    emu.add_fault(Fault(path="models", status=503))
    result = run_cli("models", env=cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0"))
    assert result.returncode == 1
    assert "503" in assert_one_error_line(result.stderr, emu.api_key)
    emu.clear_faults()
    emu.add_fault(Fault(path="models", content_type="text/html"))  # a captive portal, say
    result = run_cli("models", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout) == (1, "")
    assert "not JSON" in assert_one_error_line(result.stderr, emu.api_key)


# -- signals ---------------------------------------------------------------------------


def _read_until(proc: subprocess.Popen, done, timeout: float = 10) -> bytes:
    """Read the child's stdout (unbuffered) until ``done(data)``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    while not done(data):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {data!r}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            piece = os.read(proc.stdout.fileno(), 4096)
            assert piece, f"stdout ended early; got {data!r}, rc {proc.poll()}"
            data += piece
    return data


def _read_lines(proc: subprocess.Popen, count: int) -> bytes:
    return _read_until(proc, lambda data: data.count(b"\n") >= count)


@pytest.mark.slow
@posix_only
@pytest.mark.gigachat_emulator(reply="y" * 400, delay=0.2)  # 50 events, 10 s: far longer than the test
def test_ctrl_c_mid_stream_exits_130_quietly(emu: Emulator, cache_dir: str) -> None:
    proc = popen_cli("chat", "hi", env=cli_env(cache_dir, emu))
    try:
        first = _read_until(proc, lambda data: len(data) >= 8)
        assert first.startswith(b"y" * 8)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert b"Traceback" not in err
    assert err.decode() == "gigachat-lite: interrupted\n"
    text = (first + out).decode()
    assert text.endswith("\n") and set(text.strip()) == {"y"} and len(text.strip()) < 400


@pytest.mark.slow
@posix_only
def test_serve_prints_exports_and_stops_on_sigint(cache_dir: str) -> None:
    proc = popen_cli("serve", "--piece-size", "4", env=cli_env(cache_dir))
    try:
        data = _read_lines(proc, 3)
        lines = data.decode().splitlines()
        assert [line.split("=")[0] for line in lines] == [
            "export GIGACHAT_CREDENTIALS", "export GIGACHAT_BASE_URL", "export GIGACHAT_AUTH_URL",
        ]
        exported = dict(line[len("export "):].split("=", 1) for line in lines)
        assert exported["GIGACHAT_BASE_URL"].startswith("http://127.0.0.1:")
        # The printed settings really point a client at the server.
        result = run_cli("chat", "Привет", env=cli_env(cache_dir, **exported))
        assert (result.returncode, result.stdout) == (0, "Echo: Привет\n")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out == b""
    assert b"Traceback" not in err and err.decode().endswith("gigachat-lite: emulator stopped\n")


@pytest.mark.slow
@posix_only
def test_serve_tls_exports_the_ca_bundle(cache_dir: str) -> None:
    pytest.importorskip("trustme")
    proc = popen_cli("serve", "--tls", env=cli_env(cache_dir))
    try:
        data = _read_lines(proc, 4)
        exported = dict(line[len("export "):].split("=", 1) for line in data.decode().splitlines())
        assert exported["GIGACHAT_BASE_URL"].startswith("https://127.0.0.1:")
        ca_file = exported["GIGACHAT_CA_BUNDLE_FILE"]
        assert os.path.isfile(ca_file)
        result = run_cli("chat", "Привет", env=cli_env(cache_dir, **exported))
        assert (result.returncode, result.stdout) == (0, "Echo: Привет\n"), result.stderr
        # Without the CA the client refuses the certificate: a TLS error, exit code 4.
        del exported["GIGACHAT_CA_BUNDLE_FILE"]
        result = run_cli("chat", "Привет", env=cli_env(cache_dir, GIGACHAT_MAX_RETRIES="0", **exported))
        assert result.returncode == 4
        assert "TLS failed" in assert_one_error_line(result.stderr, exported["GIGACHAT_CREDENTIALS"])
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=5)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert not os.path.exists(ca_file)  # the throwaway CA goes with the server


@pytest.mark.slow
@posix_only
def test_serve_stops_on_sigterm(cache_dir: str) -> None:
    proc = popen_cli("serve", env=cli_env(cache_dir))
    try:
        _read_lines(proc, 1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
    assert proc.returncode == 0 and b"Traceback" not in err


@pytest.mark.slow
def test_serve_with_faults_and_bad_settings(cache_dir: str) -> None:
    result = run_cli("serve", "--fault", "chat:nonsense", env=cli_env(cache_dir))
    assert result.returncode == 2
    assert "unknown part 'nonsense'" in assert_one_error_line(result.stderr)
    result = run_cli("serve", "--host", "0.0.0.0", env=cli_env(cache_dir))
    assert result.returncode == 2
    assert "loopback" in assert_one_error_line(result.stderr)


@pytest.mark.slow
def test_serve_refuses_a_key_or_ca_bundle_without_certfile(cache_dir: str, tmp_path) -> None:
    # Before, it served plain HTTP as if they were not given (so the run never ended: the timeout fails it).
    key, ca = tmp_path / "k.pem", tmp_path / "c.pem"
    key.write_text("key"), ca.write_text("ca")
    for args, named in ((["--keyfile", str(key), "--ca-bundle", str(ca)], "--keyfile and --ca-bundle need --certfile"),
                        (["--keyfile", str(key)], "--keyfile needs --certfile"),
                        (["--ca-bundle", str(ca)], "--ca-bundle needs --certfile")):
        result = run_cli("serve", *args, env=cli_env(cache_dir), timeout=10)
        assert (result.returncode, result.stdout) == (2, "")
        assert named in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_serve_on_a_taken_port_exits_4(cache_dir: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("serve", "--port", str(taken.getsockname()[1]), env=cli_env(cache_dir))
    assert result.returncode == 4
    assert "cannot listen on 127.0.0.1" in assert_one_error_line(result.stderr)


# -- interactive -------------------------------------------------------------------------


@pytest.fixture
def pexpect():
    return pytest.importorskip("pexpect")


@pytest.mark.slow
@posix_only
def test_interactive_conversation(emu: Emulator, cache_dir: str, pexpect) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "gigachat_lite", "chat", "--system", "Будь краток"],
        env=cli_env(cache_dir, emu), encoding="utf-8", timeout=10, preexec_fn=sigint_default,
    )
    try:
        child.expect_exact("chatting with GigaChat")
        child.expect_exact("> ")
        child.sendline("Привет")
        child.expect_exact("Echo: Привет")
        child.expect_exact("> ")
        child.sendline("второй")
        child.expect_exact("Echo: второй")
        child.expect_exact("> ")
        # History is kept: the second turn carried the first one.
        assert chat_requests(emu)[-1]["messages"] == [
            {"role": "system", "content": "Будь краток"},
            {"role": "user", "content": "Привет"},
            {"role": "assistant", "content": "Echo: Привет"},
            {"role": "user", "content": "второй"},
        ]
        child.sendline("/reset")
        child.expect_exact("(conversation cleared)")
        child.sendline("/model GigaChat-Pro")
        child.expect_exact("(model set to GigaChat-Pro)")
        child.sendline("третий")
        child.expect_exact("Echo: третий")
        child.expect_exact("> ")
        last = chat_requests(emu)[-1]
        assert last["model"] == "GigaChat-Pro"
        assert last["messages"] == [
            {"role": "system", "content": "Будь краток"},
            {"role": "user", "content": "третий"},
        ]
        # /model checks the live list: an unknown one is refused at once, the model stays.
        child.sendline("/model Nope")
        child.expect_exact("(no model 'Nope'; available: GigaChat, GigaChat-2")
        child.expect_exact("still GigaChat-Pro)")
        # An API error is reported and the conversation goes on.
        emu.add_fault(Fault(path="chat/completions", status=404, times=1))
        child.sendline("x")
        child.expect_exact("gigachat-lite: error: 404: ")
        child.expect_exact("> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert len(chat_requests(emu)) == 4


@pytest.mark.slow
@posix_only
def test_interactive_ctrl_d_leaves_with_0(emu: Emulator, cache_dir: str, pexpect) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "gigachat_lite", "chat"], env=cli_env(cache_dir, emu), encoding="utf-8", timeout=10,
                          preexec_fn=sigint_default)
    try:
        child.expect_exact("> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


@pytest.mark.slow
@posix_only
@pytest.mark.gigachat_emulator(delay=0.2)
def test_interactive_ctrl_c_stops_the_reply_not_the_conversation(emu: Emulator, cache_dir: str, pexpect) -> None:
    emu.set_reply(lambda body: "z" * 400 if body["messages"][-1]["content"] == "long" else "short")
    child = pexpect.spawn(sys.executable, ["-m", "gigachat_lite", "chat"], env=cli_env(cache_dir, emu), encoding="utf-8", timeout=10,
                          preexec_fn=sigint_default)
    try:
        child.expect_exact("> ")
        child.sendline("long")
        child.expect_exact("zzzzzzzz")
        child.sendintr()
        child.expect_exact("(reply interrupted)")
        child.expect_exact("> ")
        child.sendline("again")
        child.expect_exact("short")
        child.expect_exact("> ")
        # The interrupted turn was forgotten: the next request did not carry it.
        assert [m["content"] for m in chat_requests(emu)[-1]["messages"]] == ["again"]
        child.sendintr()  # at the prompt: leave
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 130
    assert "Traceback" not in (child.before or "")


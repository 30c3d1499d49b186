"""The command line's errors and help: CLI words, --json errors, the 429 wait, -v, --debug,
per-command exit codes, "did you mean", examples and shell completion."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List

import pytest

from gigachat_lite.cli import main
from gigachat_lite.cli.exitcodes import EXIT_CODES
from gigachat_lite.emulator import Emulator, Fault

from test_cli import assert_one_error_line, cache_dir, cli_env, refusing_port, run_cli  # noqa: F401  (fixtures)

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.rst")


def json_error(stdout: str) -> Dict[str, Any]:
    (line,) = stdout.splitlines()
    obj = json.loads(line)
    assert set(obj) == {"error"} and set(obj["error"]) == {"type", "message", "status", "request_id"}, obj
    return dict(obj["error"])


# -- rate limits -------------------------------------------------------------------------


@pytest.mark.slow
def test_429_says_how_long_to_wait(emu: Emulator, cache_dir: str) -> None:
    # 60 s is over the 30 s the client sleeps on by itself: it comes back at once as RateLimitError.
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="60"))
    result = run_cli("chat", "hi", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout) == (1, "")
    line = assert_one_error_line(result.stderr, emu.api_key)
    assert line.startswith("gigachat-lite: error: 429: ")
    assert "; wait 60 s before trying again (request id " in line


@pytest.mark.slow
def test_429_without_retry_after_says_so(emu: Emulator, cache_dir: str) -> None:
    emu.add_fault(Fault(path="chat/completions", status=429))
    result = run_cli("chat", "hi", env=cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0"))
    assert result.returncode == 1
    assert "the server did not say how long to wait" in assert_one_error_line(result.stderr)


@pytest.mark.slow
def test_429_as_json(emu: Emulator, cache_dir: str) -> None:
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="45"))
    result = run_cli("chat", "--json", "hi", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stderr) == (1, "")
    error = json_error(result.stdout)
    assert (error["type"], error["status"]) == ("RateLimitError", 429)
    assert error["request_id"] and f"; wait 45 s before trying again (request id {error['request_id']})" in error["message"]


# -- --json errors -------------------------------------------------------------------------


@pytest.mark.slow
def test_json_errors_keep_the_exit_codes(emu: Emulator, cache_dir: str, refusing_port: int) -> None:
    cases = [
        (["chat", "--json", "hi"], cli_env(cache_dir), 3, "MissingAuthError"),
        (["chat", "--json", "--temperature", "0", "hi"], cli_env(cache_dir, emu), 2, "UsageError"),
        (["chat", "--json", "--modle", "x", "hi"], cli_env(cache_dir, emu), 2, "UsageError"),
        (["chat", "--json", "--model", "Nope", "hi"], cli_env(cache_dir, emu), 1, "NotFoundError"),
        (["models", "--json"], cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0",
                                       GIGACHAT_BASE_URL=f"http://127.0.0.1:{refusing_port}/api/v1"), 4, "APIConnectionError"),
    ]
    for args, env, code, kind in cases:
        result = run_cli(*args, env=env)
        assert (result.returncode, result.stderr) == (code, ""), (args, result.stderr)
        error = json_error(result.stdout)
        assert error["type"] == kind, (args, error)
        assert emu.api_key not in result.stdout
    assert error["message"] == f"cannot connect to 127.0.0.1:{refusing_port}: connection refused"


@pytest.mark.slow
def test_json_on_a_stdout_that_is_not_utf8_is_ascii(emu: Emulator, cache_dir: str) -> None:
    env = cli_env(cache_dir, emu, PYTHONIOENCODING="ascii")
    result = run_cli("chat", "--json", "Привет", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "".join(line.get("content", "") for line in lines) == "Echo: Привет"
    assert lines[-1]["finish_reason"] == "stop"
    result = run_cli("models", "--json", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    assert all(json.loads(line)["id"] for line in result.stdout.splitlines())
    result = run_cli("chat", "--json", "--scope", "Ж", "hi", env=env)
    assert (result.returncode, result.stderr) == (2, "")
    error = json_error(result.stdout)
    assert error["type"] == "UsageError" and "invalid choice: 'Ж'" in error["message"]


def run_into_closed_pipe(*args: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    """The CLI with stdout a pipe whose reading end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "gigachat_lite", *args], env=env, stdin=subprocess.DEVNULL,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, encoding="utf-8", timeout=20)
    finally:
        os.close(write_end)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGPIPE and its exit code are POSIX")
def test_a_json_error_into_a_closed_pipe_exits_141(cache_dir: str) -> None:
    result = run_into_closed_pipe("chat", "--json", "--scope", "bad", "hi", env=cli_env(cache_dir))
    assert (result.returncode, result.stderr) == (141, "")


def run_with_closed(fd: int, *args: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    """The CLI started with file descriptor ``fd`` closed, as ``<&-`` or ``>&-`` in a shell do."""
    return subprocess.run([sys.executable, "-m", "gigachat_lite", *args], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=20, preexec_fn=lambda: os.close(fd))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="closing a standard descriptor for the child is POSIX")
def test_a_closed_stdin_or_stdout_is_a_clean_error(emu: Emulator, cache_dir: str) -> None:
    env = cli_env(cache_dir, emu)
    for args in (["chat"], ["chat", "-"]):
        result = run_with_closed(0, *args, env=env)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert "stdin is closed" in assert_one_error_line(result.stderr)
    result = run_with_closed(0, "chat", "--json", env=env)
    assert (result.returncode, result.stderr) == (2, "")
    assert "stdin is closed" in json_error(result.stdout)["message"]
    result = run_with_closed(0, "chat", "hi", env=env)  # a prompt given: stdin is not needed
    assert (result.returncode, result.stdout.strip()) == (0, "Echo: hi"), result.stderr
    for args in (["chat", "hi"], ["chat", "--json", "hi"]):
        result = run_with_closed(1, *args, env=env)
        assert result.returncode == 141
        assert "standard output is closed" in assert_one_error_line(result.stderr)


@pytest.mark.slow
def test_json_api_error_carries_status_and_request_id(emu: Emulator, cache_dir: str) -> None:
    result = run_cli("chat", "--json", "--model", "Nope", "hi", env=cli_env(cache_dir, emu))
    error = json_error(result.stdout)
    assert error["status"] == 404
    assert error["request_id"] and error["request_id"] in error["message"]


# -- errors in the command line's words --------------------------------------------------------


@pytest.mark.parametrize(
    "args, env, expected",
    [
        (["--timeout", "abc"], {}, "--timeout must be a number of seconds, got 'abc'"),
        ([], {"GIGACHAT_TIMEOUT": "abc"}, "GIGACHAT_TIMEOUT must be a number of seconds, got 'abc'"),
        (["--ca-bundle", "/nonexistent/ca.pem"], {}, "--ca-bundle: no such file: /nonexistent/ca.pem"),
        ([], {"GIGACHAT_CA_BUNDLE_FILE": "/nonexistent/ca.pem"}, "GIGACHAT_CA_BUNDLE_FILE: no such file: /nonexistent/ca.pem"),
        (["--base-url", "nope"], {}, "--base-url must be an http(s) URL with a host, got 'nope'"),
        (["--temperature", "0"], {}, "--temperature must be > 0"),
        (["--max-tokens", "0"], {}, "--max-tokens must be"),
        (["-m", ""], {}, "--model is empty"),
        (["--base-url", ""], {}, "--base-url is empty"),
    ],
)
@pytest.mark.slow
def test_errors_name_the_flag_or_variable(emu: Emulator, cache_dir: str, args: List[str], env: Dict[str, str], expected: str) -> None:
    result = run_cli("chat", *args, "hi", env=cli_env(cache_dir, emu, **env))
    assert (result.returncode, result.stdout) == (2, "")
    line = assert_one_error_line(result.stderr, emu.api_key)
    assert line.startswith(f"gigachat-lite: error: {expected}"), line
    assert not re.search(r"\b(base_url|ca_bundle|max_tokens|api_key)\b|\w=", line), line


@pytest.mark.slow
def test_every_variable_is_named_by_itself_not_its_keyword(cache_dir: str, refusing_port: int) -> None:
    bad = {
        "FIRST_BYTE_TIMEOUT": "abc", "MAX_REPLY_SIZE": "abc", "MAX_EVENT_SIZE": "abc", "PROFANITY_CHECK": "maybe",
        "DEADLINE": "abc", "MAX_COOL_DOWN": "abc", "COORDINATION_FALLBACK": "maybe",
        "SESSION_ID": "a\x01b", "CLIENT_ID": "a\x01b", "TRACE_ID": "a\x01b",
    }
    for name, value in bad.items():
        env = cli_env(cache_dir, GIGACHAT_CREDENTIALS="a2V5OnNlY3JldA==", GIGACHAT_MAX_RETRIES="0",
                      GIGACHAT_BASE_URL=f"http://127.0.0.1:{refusing_port}/api/v1",
                      GIGACHAT_AUTH_URL=f"http://127.0.0.1:{refusing_port}/oauth", **{f"GIGACHAT_{name}": value})
        result = run_cli("chat", "hi", env=env)
        assert result.returncode == 2, (name, result.stderr)
        assert assert_one_error_line(result.stderr).startswith(f"gigachat-lite: error: GIGACHAT_{name} "), name


@pytest.mark.slow
def test_missing_key_names_variables_and_flag_not_keywords(cache_dir: str) -> None:
    result = run_cli("chat", "hi", env=cli_env(cache_dir))
    line = assert_one_error_line(result.stderr)
    assert "GIGACHAT_CREDENTIALS" in line and "--credentials-file" in line and "api_key=" not in line


@pytest.mark.slow
@pytest.mark.gigachat_emulator(tls=True)
def test_tls_failure_names_the_flag(emu: Emulator, cache_dir: str) -> None:
    env = cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0")
    del env["GIGACHAT_CA_BUNDLE_FILE"]
    result = run_cli("chat", "hi", env=env)
    assert result.returncode == 4
    line = assert_one_error_line(result.stderr, emu.api_key)
    assert "TLS failed" in line and "--ca-bundle or GIGACHAT_CA_BUNDLE_FILE" in line and "ca_bundle=" not in line


@pytest.mark.slow
def test_serve_tls_without_trustme_names_the_flags_and_the_extra(cache_dir: str) -> None:
    code = "import sys; sys.modules['trustme'] = None; from gigachat_lite.cli import main; sys.exit(main(['serve', '--tls']))"
    result = subprocess.run([sys.executable, "-c", code], env=cli_env(cache_dir), capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    line = assert_one_error_line(result.stderr)
    assert "--certfile" in line and "--keyfile" in line and "gigachat_lite[emulator]" in line and "certfile=" not in line


# -- -v and --debug -------------------------------------------------------------------------------


@pytest.mark.slow
def test_verbose_shows_request_ids_retries_and_timings_but_no_secret(emu: Emulator, cache_dir: str) -> None:
    emu.add_fault(Fault(path="chat/completions", status=503, times=1))
    result = run_cli("chat", "-v", "hi", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout) == (0, "Echo: hi\n")
    err = result.stderr
    assert "requesting an access token" in err
    assert re.search(r"retrying in \d+\.\d s after 503", err), err
    assert re.search(r"POST /chat/completions -> 200 \(request id [0-9a-f-]{8,}\)", err), err
    assert re.search(r"first chunk after \d+\.\d\d s, complete after \d+\.\d\d s", err), err
    assert emu.api_key not in err and "Bearer" not in err and "Basic" not in err
    assert not any(emu.token_valid(word.strip("(),'\"")) for word in err.split())  # no access token either


@pytest.mark.slow
def test_quiet_without_verbose(emu: Emulator, cache_dir: str) -> None:
    emu.add_fault(Fault(path="chat/completions", status=503, times=1))
    result = run_cli("chat", "hi", env=cli_env(cache_dir, emu))
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: hi\n", "")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["flag", "variable"])
def test_debug_shows_the_traceback(emu: Emulator, cache_dir: str, refusing_port: int, how: str) -> None:
    env = cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0", GIGACHAT_BASE_URL=f"http://127.0.0.1:{refusing_port}/api/v1")
    args = ["chat", "hi"] + (["--debug"] if how == "flag" else [])
    if how == "variable":
        env["GIGACHAT_LITE_DEBUG"] = "1"
    result = run_cli(*args, env=env)
    assert result.returncode == 4
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConnectionRefusedError" in result.stderr
    assert result.stderr.splitlines()[-1] == f"gigachat-lite: error: cannot connect to 127.0.0.1:{refusing_port}: connection refused"
    assert emu.api_key not in result.stderr


# -- help ---------------------------------------------------------------------------------------


def exit_codes_in(help_text: str) -> List[int]:
    block = help_text.split("exit codes:\n", 1)[1].split("\n\n", 1)[0]
    return [int(line.split()[0]) for line in block.splitlines()]


@pytest.mark.slow
def test_each_command_lists_its_own_exit_codes_and_examples(cache_dir: str) -> None:
    expected = {"chat": [0, 1, 2, 3, 4, 130, 141], "models": [0, 1, 2, 3, 4, 130, 141], "serve": [0, 2, 4, 130],
                "demo": [0, 1, 2, 130], "completion": [0, 2, 130, 141]}
    for command, codes in expected.items():
        result = run_cli(command, "--help", env=cli_env(cache_dir))
        assert result.returncode == 0
        assert exit_codes_in(result.stdout) == codes, command
        assert "examples:\n  gigachat-lite " + command in result.stdout
    top = run_cli("--help", env=cli_env(cache_dir)).stdout
    assert exit_codes_in(top) == [row.code for row in EXIT_CODES]
    assert "options above" not in top


def test_the_readme_exit_code_table_is_the_code_table() -> None:
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    rows = re.findall(r"^(\d+)\s{2,}(.+)$", text.split("Exit codes:", 1)[1].split("\n\n\n", 1)[0], re.M)
    assert [(int(code), meaning) for code, meaning in rows] == [(row.code, row.meaning) for row in EXIT_CODES]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, expected",
    [
        (["chat", "--modle", "X", "hi"], "unknown option --modle (did you mean --model?)"),
        (["chat", "--no-strem", "hi"], "unknown option --no-strem (did you mean --no-stream?)"),
        (["serve", "--prot", "1"], "unknown option --prot (did you mean --port?)"),
        (["chta", "hi"], "did you mean 'chat'?"),
        (["chat", "--scope", "GIGACHAT_API_PRS", "hi"], "did you mean 'GIGACHAT_API_PERS'?"),
    ],
)
def test_did_you_mean(cache_dir: str, args: List[str], expected: str) -> None:
    result = run_cli(*args, env=cli_env(cache_dir))
    assert result.returncode == 2
    assert expected in assert_one_error_line(result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_go_before_or_after_the_command(emu: Emulator, cache_dir: str, refusing_port: int, where: str) -> None:
    def placed(option: str, command: str, *rest: str) -> List[str]:
        return [option, command, *rest] if where == "before" else [command, option, *rest]

    env = cli_env(cache_dir, emu)
    for verbose in ("-v", "--verbose"):
        result = run_cli(*placed(verbose, "chat", "hi"), env=env)
        assert (result.returncode, result.stdout) == (0, "Echo: hi\n"), result.stderr  # before: 2, "unknown option -v"
        assert "requesting an access token" in result.stderr
    result = run_cli(*placed("-v", "models"), env=env)
    assert result.returncode == 0 and "GET /models -> 200" in result.stderr
    broken = cli_env(cache_dir, emu, GIGACHAT_MAX_RETRIES="0", GIGACHAT_BASE_URL=f"http://127.0.0.1:{refusing_port}/api/v1")
    result = run_cli(*placed("--debug", "chat", "hi"), env=broken)
    assert result.returncode == 4 and "Traceback (most recent call last)" in result.stderr
    from gigachat_lite import __version__

    result = run_cli(*placed("--version", "models"), env=env)
    assert (result.returncode, result.stdout) == (0, f"gigachat-lite {__version__}\n")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--no-stream", "chat", "hi"], "--no-stream is an option of chat: put it after the command (gigachat-lite chat --no-stream ...;"),
        (["--model", "GigaChat-Pro", "chat", "hi"], "--model is an option of chat: put it after the command"),
        (["--json", "models"], "--json is an option of chat and models: put it after the command (gigachat-lite models --json ...;"),
        (["--modle", "X", "chat", "hi"], "unknown option --modle (did you mean --model?)"),
        (["--credentials=c2VjcmV0", "chat", "hi"], "unknown option --credentials"),
    ],
)
@pytest.mark.slow
def test_a_commands_option_before_the_command_says_where_it_goes(cache_dir: str, args: List[str], expected: str) -> None:
    result = run_cli(*args, env=cli_env(cache_dir))
    assert result.returncode == 2
    if "--json" in args:  # the error is then JSON on stdout, as every --json error
        line = json_error(result.stdout)["message"]
    else:
        line = assert_one_error_line(result.stderr, "c2VjcmV0")
    assert expected in line and "invalid choice" not in line


# Caught but not offered (argparse would echo a key given this way): in no help, no completion.
HIDDEN_OPTIONS = ("--api-key", "--credentials", "--key")


def offered_options(script: str) -> Dict[str, List[str]]:
    """The options the bash completion script offers: at the top (key "") and after each command."""
    offered: Dict[str, List[str]] = {}
    command = ""
    for line in script.splitlines():
        match = re.match(r"\s+(\w+)\)$", line)
        if match:
            command = match.group(1)
        words = re.search(r'compgen -W "([^"]*)" -- "\$cur"\)\);;', line)
        if words:
            offered[command if not line.lstrip().startswith('"")') else ""] = words.group(1).split()
    return offered


@pytest.mark.slow
def test_no_suggestion_is_the_option_typed(capsys: pytest.CaptureFixture) -> None:
    # Every option of every command, put before the command: the message says where it goes,
    # never "unknown option X (did you mean X?)".
    assert main(["completion", "bash"]) == 0
    offered = offered_options(capsys.readouterr().out)
    top = set(offered.pop("")) | {"-h", "-v"}  # the short forms are not offered, but are global
    assert {"chat", "models", "--verbose"} <= top and "chat" in offered and "--model" in offered["chat"]
    tried = 0
    for command, options in offered.items():
        for option in options + [o for o in HIDDEN_OPTIONS if command in ("chat", "models")]:
            if option in top:
                continue
            assert main([option, command]) == 2
            err = "".join(capsys.readouterr())  # stderr, or stdout for --json
            assert f"did you mean {option}?" not in err, err
            if option not in HIDDEN_OPTIONS:
                assert f"{option} is an option of " in err and command in err, err
            tried += 1
    assert tried > 30


@pytest.mark.slow
def test_a_mistyped_key_option_does_not_echo_the_key(cache_dir: str) -> None:
    secret = "c2VjcmV0LWtleS1vbi10aGUtY29tbWFuZC1saW5l"
    for args in (["models", "--apikey", secret], ["models", f"--apikey={secret}"]):
        result = run_cli(*args, env=cli_env(cache_dir))
        assert result.returncode == 2
        line = assert_one_error_line(result.stderr, secret)
        assert "unknown option --apikey" in line


@pytest.mark.slow
def test_an_ambiguous_or_valueless_option_does_not_echo_its_value(cache_dir: str) -> None:
    # argparse quotes the whole word: "ambiguous option: --cred=KEY could match ...".
    secret = "c2VjcmV0LWtleS1vbi10aGUtY29tbWFuZC1saW5l"
    cases = [
        (f"--cred={secret}", "ambiguous option: --cred could match --credentials-file"),
        (f"--api={secret}", "ambiguous option: --api could match --api-version"),
        (f"--no-stream={secret}", "argument --no-stream: takes no value"),
    ]
    for option, expected in cases:
        result = run_cli("chat", option, "hi", env=cli_env(cache_dir))
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert expected in assert_one_error_line(result.stderr, secret)
        result = run_cli("chat", "--json", option, "hi", env=cli_env(cache_dir))
        assert (result.returncode, result.stderr) == (2, "")
        assert secret not in result.stdout
        error = json_error(result.stdout)
        assert error["type"] == "UsageError" and expected in error["message"]


# -- completion ----------------------------------------------------------------------------------


def complete(cache_dir: str, words: List[str]) -> List[str]:
    """What bash offers after ``words`` (the last one being completed), with the generated script."""
    script = run_cli("completion", "bash", env=cli_env(cache_dir)).stdout
    quoted = " ".join("'" + word.replace("'", "'\\''") + "'" for word in words)
    program = f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _gigachat_lite; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="the completion script is run by bash")
def test_bash_completion(cache_dir: str) -> None:
    assert complete(cache_dir, ["gigachat-lite", "c"]) == ["chat", "completion"]
    assert complete(cache_dir, ["gigachat-lite", "chat", "--mo"]) == ["--model"]
    assert complete(cache_dir, ["gigachat-lite", "chat", "--scope", "GIGACHAT_API_"]) == [
        "GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP"]
    assert complete(cache_dir, ["gigachat-lite", "serve", "--t"]) == ["--tls", "--token-ttl"]
    assert complete(cache_dir, ["gigachat-lite", "completion", ""]) == ["bash", "zsh"]
    assert "--api-key" not in complete(cache_dir, ["gigachat-lite", "chat", "--"])


@pytest.mark.slow
def test_zsh_completion_loads_the_same_function(cache_dir: str) -> None:
    result = run_cli("completion", "zsh", env=cli_env(cache_dir))
    assert result.returncode == 0
    assert "bashcompinit" in result.stdout and "complete -o default -F _gigachat_lite gigachat-lite" in result.stdout
    assert run_cli("completion", "fish", env=cli_env(cache_dir)).returncode == 2

"""The command line on a terminal (through a pseudo-terminal, with pexpect) and in pipes.

Multi-line input, the spinner (on a terminal only, never in a pipe or with
--json), the prompt history file, /usage and /save. The emulator runs in this
process; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from typing import Any, List

import pytest

from gigachat_lite.emulator import Emulator, Fault

from test_cli import cache_dir, chat_requests, cli_env, posix_only, run_cli, sigint_default  # noqa: F401  (fixtures)

pexpect = pytest.importorskip("pexpect")
pytestmark = [posix_only, pytest.mark.slow]  # a pty and a process each

SPINNER_FRAMES = ("| ", "/ ", "- ", "\\ ")


def spawn(*args: str, env: dict, timeout: float = 10) -> Any:
    return pexpect.spawn(sys.executable, ["-m", "gigachat_lite", *args], env=env, encoding="utf-8", timeout=timeout,
                         preexec_fn=sigint_default)


@pytest.fixture
def child_env(emu: Emulator, tmp_path) -> dict:
    """An environment with the emulator and a history folder of this test's own."""
    return cli_env(str(tmp_path), emu)


def finish(child: Any) -> str:
    """Leave the conversation with /exit; return everything it printed since the last expect."""
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    rest = child.before
    child.close()
    assert child.exitstatus == 0, rest
    return str(rest)


def user_messages(emulator: Emulator) -> List[str]:
    return [m["content"] for body in chat_requests(emulator) for m in body["messages"][-1:]]


# -- multi-line input ------------------------------------------------------------------


def test_a_pasted_block_is_one_message(emu: Emulator, child_env: dict) -> None:
    child = spawn("chat", env=child_env)
    child.expect_exact("a paste is one message")  # the banner says how
    child.expect_exact("> ")
    child.send("первая строка\nвторая строка\nтретья строка\n")  # one write, as a terminal pastes
    child.expect_exact("третья строка")
    child.expect_exact("> ")
    finish(child)
    assert user_messages(emu) == ["первая строка\nвторая строка\nтретья строка"]


def test_typed_lines_are_separate_messages(emu: Emulator, child_env: dict) -> None:
    # The other side of paste detection: Enter typed by a person sends at once.
    child = spawn("chat", env=child_env)
    for text in ("один", "два"):
        child.expect_exact("> ")
        child.sendline(text)
        child.expect_exact(f"Echo: {text}")
    child.expect_exact("> ")
    finish(child)
    assert user_messages(emu) == ["один", "два"]


def test_backslash_and_triple_quotes_continue_a_message(emu: Emulator, child_env: dict) -> None:
    child = spawn("chat", env=child_env)
    child.expect_exact("> ")
    child.sendline("строка один \\")
    child.expect_exact("... ")
    child.sendline("строка два")
    child.expect_exact("Echo: строка один")
    child.expect_exact("> ")
    child.sendline('"""')
    child.expect_exact("... ")
    child.sendline("def f():")
    child.expect_exact("... ")
    child.sendline("    return 1")
    child.expect_exact("... ")
    child.sendline('"""')
    child.expect_exact("Echo: def f():")
    child.expect_exact("> ")
    child.sendline('"""')  # Ctrl-C inside a block drops the block, not the conversation
    child.expect_exact("... ")
    child.sendline("передумал")
    child.expect_exact("... ")
    child.sendintr()
    child.expect_exact("(message dropped)")
    child.expect_exact("> ")
    finish(child)
    assert user_messages(emu) == ["строка один \nстрока два", "def f():\n    return 1"]


# -- the spinner -------------------------------------------------------------------------


def test_spinner_says_what_it_waits_for_on_a_terminal(emu: Emulator, child_env: dict) -> None:
    emu.add_fault(Fault(path="chat/completions", stall=1.0, times=1))  # no reply for a second
    child = spawn("chat", "Привет", env=child_env)
    child.expect_exact("connecting...")
    child.expect_exact("Echo: Привет")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_spinner_waits_for_the_first_token(emu: Emulator, child_env: dict) -> None:
    emu.add_fault(Fault(path="chat/completions", stall=1.0, after=0, times=1))  # headers, then a pause
    child = spawn("chat", "Привет", env=child_env)
    child.expect_exact("waiting for the first token...")
    child.expect_exact("Echo: Привет")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_spinner_shows_a_retry_and_its_reason(emu: Emulator, child_env: dict) -> None:
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="1", times=1))
    child = spawn("chat", "Привет", env=child_env)
    child.expect_exact("retrying in 1 s after 429...")
    child.expect_exact("Echo: Привет")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_no_spinner_with_json_on_a_terminal(emu: Emulator, child_env: dict) -> None:
    emu.add_fault(Fault(path="chat/completions", stall=1.0, times=1))
    child = spawn("chat", "--json", "Привет", env=child_env)
    child.expect(pexpect.EOF)
    child.close()
    text = str(child.before)
    assert child.exitstatus == 0
    assert "connecting" not in text and not any(frame in text for frame in SPINNER_FRAMES)
    assert [json.loads(line) for line in text.splitlines()][0] == {"content": "Echo: Пр"}


def test_no_spinner_in_a_pipe(emu: Emulator, child_env: dict) -> None:
    emu.add_fault(Fault(path="chat/completions", stall=1.0, times=1))
    emu.add_fault(Fault(path="models", stall=1.0, times=1))
    result = run_cli("chat", "Привет", env=child_env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Привет\n", "")
    result = run_cli("models", env=child_env)
    assert result.returncode == 0 and result.stderr == ""


# -- the conversation's commands and history -------------------------------------------------


def test_usage_and_save(emu: Emulator, child_env: dict, tmp_path) -> None:
    child = spawn("chat", "--system", "Будь краток", env=child_env)
    child.expect_exact("> ")
    child.sendline("/usage")
    child.expect_exact("(no reply yet)")
    child.sendline("Привет")
    child.expect_exact("Echo: Привет")
    child.expect_exact("> ")
    child.sendline("/usage")
    child.expect_exact("(last reply: 3 prompt + 2 completion = 5 tokens; this conversation: 3 prompt + 2 completion = 5 tokens)")
    child.sendline("ещё")
    child.expect_exact("Echo: ещё")
    child.expect_exact("> ")
    child.sendline("/usage")
    child.expect(r"\(last reply: (\d+) prompt \+ (\d+) completion = \d+ tokens; this conversation: (\d+) prompt \+ (\d+) completion")
    last_prompt, last_completion, total_prompt, total_completion = (int(n) for n in child.match.groups())
    assert (total_prompt, total_completion) == (3 + last_prompt, 2 + last_completion)
    child.sendline("/reset")
    transcript = tmp_path / "talk.json"
    child.sendline("Привет")
    child.expect_exact("Echo: Привет")
    child.sendline(f"/save {transcript}")
    child.expect_exact("(saved 3 messages to")
    text_file = tmp_path / "talk.txt"
    child.sendline(f"/save {text_file}")
    child.expect_exact("(saved 3 messages to")
    child.expect_exact("> ")
    finish(child)
    assert json.loads(transcript.read_text("utf-8")) == [
        {"role": "system", "content": "Будь краток"},
        {"role": "user", "content": "Привет"},
        {"role": "assistant", "content": "Echo: Привет"},
    ]
    assert stat.S_IMODE(transcript.stat().st_mode) == 0o600
    assert text_file.read_text("utf-8") == "[system]\nБудь краток\n\n[user]\nПривет\n\n[assistant]\nEcho: Привет\n\n"


def test_text_the_terminal_encoding_cannot_read_loses_that_message_only(emu: Emulator, child_env: dict) -> None:
    child = spawn("chat", env=dict(child_env, PYTHONIOENCODING="ascii"))
    child.expect_exact("> ")
    child.sendline("Привет")  # UTF-8 bytes to a program that reads ASCII
    child.expect_exact("the text is not valid Unicode (check the terminal's encoding)")
    child.expect_exact("> ")
    child.sendline("hi")
    child.expect_exact("Echo: hi")
    child.expect_exact("> ")
    finish(child)
    assert user_messages(emu) == ["hi"]


def test_save_with_api_version_v2_writes_the_reply_text(emu: Emulator, child_env: dict, tmp_path) -> None:
    child = spawn("chat", "--api-version", "v2", env=child_env)
    child.expect_exact("> ")
    child.sendline("один")
    child.expect_exact("Echo: один")
    child.expect_exact("> ")
    text_file = tmp_path / "talk.txt"
    child.sendline(f"/save {text_file}")
    child.expect_exact("(saved 2 messages to")
    child.expect_exact("> ")
    finish(child)
    assert text_file.read_text("utf-8") == "[user]\nодин\n\n[assistant]\nEcho: один\n\n"


def history_file(env: dict) -> str:
    return os.path.join(env["XDG_DATA_HOME"], "gigachat_lite", "history.jsonl")


def test_history_is_kept_private_and_without_the_key(emu: Emulator, child_env: dict) -> None:
    path = history_file(child_env)
    os.makedirs(os.path.dirname(path), mode=0o700)
    with open(path, "w", encoding="utf-8") as handle:  # left by an older version, readable by all
        handle.write('"старое"\n')
    os.chmod(path, 0o644)
    child = spawn("chat", env=child_env)
    child.expect_exact("> ")
    child.send("строка 1\nстрока 2\n")
    child.expect_exact("> ")
    child.send("строка 1\nстрока 2\n")  # the same again: one entry
    child.expect_exact("> ")
    child.sendline(f"my key is {emu.api_key}")  # pasted by mistake: sent, but never written down
    child.expect_exact("> ")
    finish(child)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path, encoding="utf-8") as handle:
        content = handle.read()
    assert [json.loads(line) for line in content.splitlines()] == ["старое", "строка 1\nстрока 2"]
    assert emu.api_key not in content


def test_history_is_recalled_in_the_next_session(emu: Emulator, child_env: dict) -> None:
    child = spawn("chat", env=child_env)
    child.expect_exact("> ")
    child.sendline("запомни меня")
    child.expect_exact("> ")
    finish(child)
    child = spawn("chat", env=child_env)
    child.expect_exact("> ")
    child.send("\x1b[A\r")  # up arrow, Enter: the last message of the previous session
    child.expect_exact("Echo: запомни меня")
    child.expect_exact("> ")
    finish(child)
    assert user_messages(emu) == ["запомни меня", "запомни меня"]


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_history_can_be_turned_off(emu: Emulator, child_env: dict, how: str) -> None:
    args = ["chat", "--no-history"] if how == "flag" else ["chat"]
    if how == "variable":
        child_env["GIGACHAT_LITE_HISTORY"] = "0"
    child = spawn(*args, env=child_env)
    child.expect_exact("> ")
    child.sendline("не записывай")
    child.expect_exact("> ")
    finish(child)
    assert not os.path.exists(history_file(child_env))
    assert user_messages(emu) == ["не записывай"]


def test_history_follows_xdg_data_home(emu: Emulator, child_env: dict, tmp_path) -> None:
    child_env["XDG_DATA_HOME"] = str(tmp_path / "elsewhere")
    child = spawn("chat", env=child_env)
    child.expect_exact("> ")
    child.sendline("где я")
    child.expect_exact("> ")
    finish(child)
    assert os.path.isfile(tmp_path / "elsewhere" / "gigachat_lite" / "history.jsonl")

"""The command line against a hostile server and a hostile history folder (issue 20, items 14 and 15).

On a terminal (a pseudo-terminal, through pexpect) the server's text (streamed
chunks, whole replies, errors, model ids, -v lines, the conversation) must not
reach the terminal as commands: every control character is shown as an escape
(``\\x1b``), dimmed when the terminal has styles; ``--raw`` and pipes keep the
bytes. A history folder left open to everyone is tightened, and what was
planted in it (a symlink, a hard link, a FIFO, another user's file) is refused,
never followed or written. Everything listens on 127.0.0.1. The tests run as
root here, so they check modes and contents, never that an access is denied.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import subprocess
import sys
from typing import Any, Dict, List
from unittest import mock

import pytest

from gigachat_lite.cli import main
from gigachat_lite.emulator import Emulator, Fault

import hostile_servers as h
from test_cli import cache_dir, cli_env, posix_only, sigint_default  # noqa: F401  (fixtures)

pexpect = pytest.importorskip("pexpect")
pytestmark = posix_only

# A reply of 8-character events (the emulator's piece_size): an ESC, a CR of CR LF
# and a lone CR each end an event, so a sequence is split between two chunks.
EVENTS = [
    "clip:  \x1b",  # OSC 52: set the clipboard
    "]52;c;cH",
    "duZWQ=\x07 ",
    "title\x1b]0",  # OSC 0: the window title
    ";pwned\x07 ",
    "\x1b[2J\x1b[3J",  # clear the screen and the scrollback
    "crlf...\r",
    "\nlone..\r",  # CR LF passes; a lone CR would overwrite the line
    "over\x9b31m",  # C1 CSI: an 8-bit ESC [
    " \x7f\x08\x08\x00end",
]
HOSTILE = "".join(EVENTS)
# What the terminal must show: every control character as Python writes it, CR LF as a line break.
SHOWN = (
    "clip:  \\x1b]52;c;cHduZWQ=\\x07 title\\x1b]0;pwned\\x07 \\x1b[2J\\x1b[3Jcrlf...\n"
    "lone..\\rover\\x9b31m \\x7f\\x08\\x08\\x00end\n"
)
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
DIM, UNDIM = "\x1b[2m", "\x1b[22m"


def spawn(*args: str, env: dict, timeout: float = 10) -> Any:
    return pexpect.spawn(sys.executable, ["-m", "gigachat_lite", *args], env=env, encoding="utf-8", timeout=timeout,
                         preexec_fn=sigint_default)


def terminal_output(*args: str, env: dict) -> tuple:
    """Run the command on a pseudo-terminal; its exit code and everything it showed, line ends as "\\n"."""
    child = spawn(*args, env=env)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, lines_of(str(child.before))


def lines_of(shown: str) -> str:
    # The terminal turns every "\n" into "\r\n", and so a CR LF of the reply into "\r\r\n".
    return shown.replace("\r\r\n", "\n").replace("\r\n", "\n")


def pipe_output(*args: str, env: dict) -> subprocess.CompletedProcess:
    """Run the command with pipes, as bytes: text mode would translate the CRs under test."""
    return subprocess.run([sys.executable, "-m", "gigachat_lite", *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=20)


@pytest.fixture
def env(emu: Emulator, tmp_path) -> dict:
    return cli_env(str(tmp_path), emu)


# -- item 14: the server's text on a terminal ------------------------------------------------------


def test_the_events_split_sequences_as_intended() -> None:
    assert all(len(event) == 8 for event in EVENTS)
    assert [event[-1] for event in EVENTS[:1] + EVENTS[6:8]] == ["\x1b", "\r", "\r"]


class TerminalStream(io.StringIO):
    """A stdout that says it is a terminal, for running ``main()`` in this process."""

    def isatty(self) -> bool:
        return True


def every_split(emulator: Emulator) -> Dict[str, int]:
    """``chat`` run in this process with a terminal stdout, :data:`HOSTILE` cut into events of every size.

    Returns how many sizes were tried, how many showed anything but :data:`SHOWN`
    and how many control characters reached the "terminal" (CR LF and LF aside);
    the figures of docs/reliability.rst.
    """
    expected = SHOWN.replace("crlf...\n", "crlf...\r\n")  # no terminal here to turn "\n" into "\r\n"
    emulator.set_reply(HOSTILE)
    wrong = leaked = 0
    settings = dict(emulator.env(), NO_PROXY="127.0.0.1,localhost", TERM="dumb")  # no dim style to strip
    size_before = emulator.piece_size
    with mock.patch.dict(os.environ, settings), contextlib.redirect_stderr(io.StringIO()):
        for size in range(1, len(HOSTILE) + 1):
            emulator.piece_size = size
            out = TerminalStream()
            with contextlib.redirect_stdout(out):
                code = main(["chat", "hi"])
            wrong += code != 0 or out.getvalue() != expected
            leaked += len(CONTROLS.findall(out.getvalue().replace("\r\n", "").replace("\n", "")))
    emulator.piece_size = size_before
    return {"splits": len(HOSTILE), "wrong": wrong, "leaked": leaked}


@pytest.mark.slow
def test_every_split_of_a_hostile_reply_shows_the_same(emu: Emulator) -> None:
    assert every_split(emu) == {"splits": len(HOSTILE), "wrong": 0, "leaked": 0}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "whole"])
def test_a_reply_cannot_command_the_terminal(emu: Emulator, env: dict, mode: List[str]) -> None:
    emu.set_reply(HOSTILE)
    code, out = terminal_output("chat", *mode, "hi", env=env)
    assert code == 0
    assert out == SHOWN
    assert not CONTROLS.search(out.replace("\n", ""))


@pytest.mark.slow
def test_escapes_are_dimmed_where_the_terminal_has_styles(emu: Emulator, env: dict) -> None:
    emu.set_reply(HOSTILE)
    code, out = terminal_output("chat", "hi", env=dict(env, TERM="xterm"))
    assert code == 0
    assert out.startswith(f"clip:  {DIM}\\x1b{UNDIM}]52;c;cHduZWQ={DIM}\\x07{UNDIM} title")
    assert f"{DIM}\\x7f\\x08\\x08\\x00{UNDIM}end" in out  # a run of controls is one dim stretch
    assert out.replace(DIM, "").replace(UNDIM, "") == SHOWN  # the dim style is the only sequence written
    code, out = terminal_output("chat", "hi", env=dict(env, TERM="xterm", NO_COLOR="1"))
    assert out == SHOWN


@pytest.mark.slow
def test_raw_and_pipes_keep_the_bytes(emu: Emulator, env: dict) -> None:
    emu.set_reply(HOSTILE)
    code, out = terminal_output("chat", "--raw", "hi", env=env)
    assert code == 0
    assert "clip:  \x1b]52;c;cHduZWQ=\x07 title\x1b]0;pwned\x07 \x1b[2J\x1b[3J" in out
    for args in (["chat", "hi"], ["chat", "--no-stream", "hi"], ["chat", "--raw", "hi"]):
        result = pipe_output(*args, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (0, HOSTILE.encode() + b"\n", b""), args
    result = pipe_output("chat", "--json", "hi", env=env)
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert "".join(line.get("content", "") for line in lines) == HOSTILE
    assert b"\xc2\x9b" not in result.stdout  # C1 is escaped in JSON too (\u009b): same data, inert on a terminal


@pytest.mark.slow
def test_an_error_message_cannot_command_the_terminal(emu: Emulator, env: dict) -> None:
    emu.add_fault(Fault(path="chat/completions", status=400, message="bad\x1b]0;pwned\x07 request\x1b[2J\x9b"))
    code, out = terminal_output("chat", "hi", env=env)
    assert code == 1
    assert "gigachat-lite: error: 400: bad\\x1b]0;pwned\\x07 request\\x1b[2J\\x9b" in out
    assert not CONTROLS.search(out.replace("\n", ""))
    code, out = terminal_output("chat", "--debug", "hi", env=env)  # the traceback quotes it too
    assert "Traceback" in out and not CONTROLS.search(out.replace("\n", ""))


EVIL_MODEL = "Evil\x1b]0;pwned\x07\x9b2J"


@pytest.mark.slow
@pytest.mark.gigachat_emulator(models=["GigaChat", EVIL_MODEL])
def test_model_ids_cannot_command_the_terminal(emu: Emulator, env: dict) -> None:
    code, out = terminal_output("models", env=env)
    assert (code, out) == (0, "GigaChat\nEvil\\x1b]0;pwned\\x07\\x9b2J\n")
    code, out = terminal_output("models", "--raw", env=env)
    assert (code, out) == (0, f"GigaChat\n{EVIL_MODEL}\n")
    result = pipe_output("models", env=env)
    assert result.stdout == f"GigaChat\n{EVIL_MODEL}\n".encode()
    result = pipe_output("models", "--json", env=env)
    assert [json.loads(line)["id"] for line in result.stdout.decode().splitlines()] == ["GigaChat", EVIL_MODEL]
    assert b"\x1b" not in result.stdout and b"\xc2\x9b" not in result.stdout


@pytest.mark.slow
@pytest.mark.gigachat_emulator(models=["GigaChat", EVIL_MODEL])
def test_the_conversation_shows_the_server_harmlessly(emu: Emulator, env: dict) -> None:
    emu.set_reply(HOSTILE)
    child = spawn("chat", env=env)
    child.logfile_read = shown = io.StringIO()
    child.expect_exact("> ")
    child.sendline("hi")
    child.expect_exact("end")
    child.expect_exact("> ")
    child.sendline("/model Nope")  # lists the server's model ids
    child.expect_exact("still GigaChat)")
    child.expect_exact("> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    out = lines_of(shown.getvalue())
    assert SHOWN in out
    assert "available: GigaChat, Evil\\x1b]0;pwned\\x07\\x9b2J;" in out
    assert not CONTROLS.search(out.replace("\n", ""))


def _verbose_handler(conn: Any, request: h.Request) -> bool:
    """A stream whose request id is a terminal command and whose text holds a lone surrogate (JSON \\ud800)."""
    events = [{"choices": [{"delta": {"role": "assistant", "content": "a\ud800b"}, "index": 0}]},
              {"choices": [{"delta": {}, "index": 0, "finish_reason": "stop\x1b]0;pwned\x07"}],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}]
    body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"
    conn.sendall(h.response(200, body, {"Content-Type": "text/event-stream", "X-Request-ID": "id\x1b]0;pwned\x07\x9b2J"}))
    return True


@pytest.mark.slow
def test_status_lines_and_lone_surrogates(tmp_path) -> None:
    with h.RawServer(_verbose_handler) as server:
        env = cli_env(str(tmp_path), GIGACHAT_BASE_URL=server.base_url, GIGACHAT_ACCESS_TOKEN=h.TOKEN, GIGACHAT_MAX_RETRIES="0")
        code, out = terminal_output("chat", "-v", "hi", env=env)
        assert code == 0, out
        assert "request id id\\x1b]0;pwned\\x07\\x9b2J" in out  # the -v lines quote the server's header
        assert "finish_reason=stop\\x1b]0;pwned\\x07" in out
        assert "a\\ud800b\n" in out  # no encoding writes a lone surrogate: shown as its escape
        assert not CONTROLS.search(out.replace("\n", ""))
        result = pipe_output("chat", "hi", env=env)
        # In a pipe too it cannot be written as UTF-8: its escape, and the command still succeeds.
        assert (result.returncode, result.stdout) == (0, b"a\\ud800b\n"), result.stderr


# -- item 15: the history folder -------------------------------------------------------------------


def history_folder(env: dict) -> str:
    folder = os.path.join(env["XDG_DATA_HOME"], "gigachat_lite")
    os.makedirs(folder)
    os.chmod(folder, 0o777)  # left open to everyone (makedirs' mode goes through the umask)
    return folder


def converse(env: dict, *messages: str) -> str:
    """Send ``messages`` in a conversation, leave; return everything it showed."""
    child = spawn("chat", env=env)
    child.logfile_read = shown = io.StringIO()
    for message in messages:
        child.expect_exact("> ")
        child.sendline(message)
        child.expect_exact(f"Echo: {message}")
    child.expect_exact("> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, shown.getvalue()
    return lines_of(shown.getvalue())


def mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.slow
def test_an_open_folder_is_tightened_and_a_planted_symlink_not_followed(env: dict, tmp_path) -> None:
    folder = history_folder(env)
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch\n", "utf-8")
    os.symlink(victim, os.path.join(folder, "history.jsonl"))
    out = converse(env, "секрет", "ещё")
    assert victim.read_text("utf-8") == "do not touch\n"  # before: the conversation was appended
    assert mode(folder) == 0o700  # before: 0777
    assert f"gigachat-lite: warning: history folder {folder} was open to others (mode 0777); now 0700\n" in out
    assert "history.jsonl is a symbolic link, not followed; no history is kept this session\n" in out
    assert out.count("symbolic link") == 1  # said once, not at every message
    assert os.path.islink(os.path.join(folder, "history.jsonl"))  # refused, not removed


@pytest.mark.slow
def test_a_planted_hard_link_is_neither_written_nor_emptied(env: dict, tmp_path) -> None:
    folder = history_folder(env)
    victim = tmp_path / "victim.jsonl"
    # Long enough that the history would be trimmed (rewritten) on loading.
    victim.write_text("".join(json.dumps(f"line {n}") + "\n" for n in range(2500)), "utf-8")
    before = victim.read_bytes()
    os.link(victim, os.path.join(folder, "history.jsonl"))
    out = converse(env, "секрет")
    assert victim.read_bytes() == before
    assert "history.jsonl has 1 other hard link(s); no history is kept this session" in out


@pytest.mark.slow
def test_a_planted_fifo_does_not_hang_the_prompt(env: dict) -> None:
    folder = history_folder(env)
    os.mkfifo(os.path.join(folder, "history.jsonl"))
    out = converse(env, "привет")  # before: open() waited for a writer forever
    assert "history.jsonl is not a regular file; no history is kept this session" in out


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making another user's file needs root")
@pytest.mark.parametrize("whose", ["file", "folder"])
def test_another_users_history_is_not_used(env: dict, whose: str) -> None:
    folder = history_folder(env)
    path = os.path.join(folder, "history.jsonl")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('"чужое"\n')
    os.chmod(path, 0o666)
    os.chown(path if whose == "file" else folder, 65534, 65534)  # nobody
    out = converse(env, "секрет")
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == '"чужое"\n'
    assert "belongs to another user (uid 65534); no history is kept this session" in out
    assert mode(folder) == (0o700 if whose == "file" else 0o777)  # another user's folder is not ours to change


@pytest.mark.slow
def test_the_history_works_in_a_tightened_folder(env: dict) -> None:
    folder = history_folder(env)
    converse(env, "первое")
    out = converse(env, "второе")
    assert "warning" not in out  # tightened once, nothing left to say
    with open(os.path.join(folder, "history.jsonl"), encoding="utf-8") as handle:
        assert [json.loads(line) for line in handle] == ["первое", "второе"]
    assert (mode(folder), mode(os.path.join(folder, "history.jsonl"))) == (0o700, 0o600)

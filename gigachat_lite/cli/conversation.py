"""The interactive conversation: history kept between turns, slash commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from .connect import model_ids
from .exitcodes import EXIT_OK, UsageError
from .history import History, history_path
from .library import AuthenticationError, GigaChatError, Session
from .lines import MULTILINE_HELP, LineReader
from .output import PROG, Output, note, report
from .reply import send
from .status import Status

__all__ = ["converse", "COMMANDS_HELP"]

COMMANDS_HELP = f"""\
/reset        forget the conversation (the --system prompt stays)
/model NAME   use another model from the next message (/model alone shows it)
/usage        tokens of the last reply and of the whole conversation
/save FILE    write the conversation to FILE (.json: the messages as JSON)
/exit         leave (also /quit, or Ctrl-D)
//text        send a message that starts with '/'
{MULTILINE_HELP}
Ctrl-C stops a reply that is coming in; at the prompt it leaves."""


_NOT_UNICODE = "the text is not valid Unicode (check the terminal's encoding)"


def valid_text(text: str) -> str:
    try:
        # Undecodable bytes (argv, stdin or the terminal in a C locale) arrive as lone
        # surrogates, which would only fail later, deep in the JSON encoder.
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(_NOT_UNICODE) from None
    return text


def _plain(content: Any) -> str:
    """A message's text for the plain transcript: v2's content is a list of parts ({"text": ...})."""
    if isinstance(content, list):
        return "".join(str(part["text"]) for part in content if isinstance(part, dict) and part.get("text"))
    return str(content or "")


class Conversation:
    def __init__(self, session: Session, args: argparse.Namespace, status: Status) -> None:
        self.session = session
        self.args = args
        self.status = status
        self.model: str = session.config.model
        self.system = [{"role": "system", "content": args.system}] if args.system else []
        self.messages: List[Dict[str, Any]] = list(self.system)
        self.last_usage: Optional[Dict[str, Any]] = None
        self.total: Dict[str, int] = {}
        self._known_models: Optional[List[str]] = None

    # -- slash commands ------------------------------------------------------------------

    def command(self, text: str) -> bool:
        """Run a slash command; ``False`` means leave."""
        name, _, rest = text.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/reset":
            self.messages = list(self.system)
            note("(conversation cleared)")
        elif name == "/model":
            self.switch_model(rest)
        elif name == "/usage":
            self.show_usage()
        elif name == "/save":
            self.save(rest)
        elif name == "/help":
            note(COMMANDS_HELP)
        else:
            note(f"(unknown command {name}; /help lists them)")
        return True

    def switch_model(self, name: str) -> None:
        if not name:
            note(f"(model: {self.model})")
            return
        try:
            valid_text(name)
            if self._known_models is None:  # asked once per conversation
                self.status.waiting("fetching the model list")
                try:
                    self._known_models = list(model_ids(self.session))
                finally:
                    self.status.done()
        except (UsageError, GigaChatError) as exc:
            report(exc)
            return
        if name not in self._known_models:
            note(f"(no model {name!r}; available: {', '.join(self._known_models)}; still {self.model})")
            return
        self.model = name
        note(f"(model set to {name})")

    def show_usage(self) -> None:
        if self.last_usage is None:
            note("(no reply yet)")
            return
        def tokens(usage: Dict[str, Any]) -> str:
            return (f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion"
                    f" = {usage.get('total_tokens', 0)} tokens")
        note(f"(last reply: {tokens(self.last_usage)}; this conversation: {tokens(self.total)})")

    def save(self, path: str) -> None:
        if not path:
            note("(usage: /save FILE)")
            return
        path = os.path.expanduser(path)
        if path.endswith(".json"):
            data = json.dumps(self.messages, ensure_ascii=False, indent=2) + "\n"
        else:
            data = "".join(f"[{m['role']}]\n{_plain(m.get('content'))}\n\n" for m in self.messages)
        try:
            # 0600: a transcript is as private as the conversation was.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
        except OSError as exc:
            report(UsageError(f"cannot write {path}: {exc.strerror or exc}"))
            return
        note(f"(saved {len(self.messages)} messages to {path})")

    # -- turns ---------------------------------------------------------------------------

    def turn(self, text: str, out: Output) -> None:
        turn = self.messages + [{"role": "user", "content": valid_text(text)}]
        reply = send(self.session, turn, model=self.model, args=self.args, out=out, status=self.status)
        self.messages = turn + [reply.assistant_message()]
        self.last_usage = dict(reply.usage or {})
        for name, value in self.last_usage.items():
            if isinstance(value, int):
                self.total[name] = self.total.get(name, 0) + value


def converse(session: Session, args: argparse.Namespace, out: Output, status: Status) -> int:
    """A conversation on a terminal, until /exit or Ctrl-D."""
    path = None if args.no_history else history_path()
    config = session.config
    history = History(path, secrets=(config.api_key, config.access_token)) if path else None
    reader = LineReader(history)
    chat = Conversation(session, args, status)
    note(f"{PROG}: chatting with {chat.model}; /help for commands, Ctrl-D to leave\n  {MULTILINE_HELP}")
    while True:
        for warning in history.take_warnings() if history is not None else ():
            note(f"{PROG}: warning: {warning}")
        try:
            text = reader.read()
        except KeyboardInterrupt:
            sys.stdout.write("\n")  # leave the "> ^C" line before the exit note
            raise
        except UnicodeDecodeError:  # typed in an encoding other than the terminal's (PYTHONIOENCODING=ascii)
            report(UsageError(_NOT_UNICODE))  # that message is lost; the conversation goes on
            continue
        if text is None:
            sys.stdout.write("\n")
            return EXIT_OK
        text = text.strip()
        if not text:
            continue
        if text.startswith("/") and not text.startswith("//"):
            if not chat.command(text):
                return EXIT_OK
            continue
        try:
            chat.turn(text[1:] if text.startswith("//") else text, out)
        except KeyboardInterrupt:
            # Stop this reply, keep the conversation: the turn is forgotten as if unsent.
            out.end_line()
            note("(reply interrupted)")
        except AuthenticationError:
            raise  # the key will not get better by retrying: leave with exit code 3
        except (UsageError, GigaChatError) as exc:
            out.end_line()
            report(exc)

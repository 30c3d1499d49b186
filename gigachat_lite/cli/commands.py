"""``chat`` and ``models``: the commands that talk to GigaChat."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .connect import list_models, open_session
from .conversation import converse, valid_text
from .exitcodes import EXIT_OK, UsageError
from .output import Output, write, write_json
from .reply import send
from .status import Status
from .terminal import Screen

__all__ = ["chat", "models"]


def _prompt_from(words: Sequence[str]) -> Optional[str]:
    """The one-shot prompt, or ``None`` for an interactive conversation."""
    if words and list(words) != ["-"]:
        text = " ".join(words)
    elif sys.stdin is None:  # started with stdin closed (<&-)
        raise UsageError("stdin is closed: give the prompt as an argument")
    elif words or not sys.stdin.isatty():
        # Only without an argument: reading an inherited stdin that never closes
        # (cron, CI) would hang a command that already has its prompt.
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError as exc:
            raise UsageError(f"stdin is not {exc.encoding} text (byte {exc.start})") from None
    else:
        return None
    text = valid_text(text).strip()
    if not text:
        raise UsageError("the prompt is empty")
    return text


def chat(args: argparse.Namespace, status: Status) -> int:
    out = Output(sys.stdout, json_lines=args.json, raw=args.raw)
    session = open_session(args)  # config errors first: before reading stdin or going interactive
    try:
        prompt = _prompt_from(args.prompt)
        if prompt is None:
            return converse(session, args, out, status)
        messages = ([{"role": "system", "content": args.system}] if args.system else []) + [{"role": "user", "content": prompt}]
        try:
            send(session, messages, model=session.config.model, args=args, out=out, status=status)
        finally:
            out.end_line()
        return EXIT_OK
    finally:
        session.close()


def models(args: argparse.Namespace, status: Status) -> int:
    session = open_session(args)
    status.waiting("fetching the model list")
    try:
        found = list_models(session)
    finally:
        status.done()
        session.close()
    screen = Screen(sys.stdout, raw=args.raw)  # the ids are the server's text
    for model in found:
        if args.json:
            write_json(sys.stdout, model)
        else:
            write(sys.stdout, screen.text(str(model.get("id", ""))) + "\n")
    sys.stdout.flush()
    return EXIT_OK

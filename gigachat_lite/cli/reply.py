"""One chat turn: send it, say what we wait for, print the reply as it arrives."""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List

from .connect import in_cli_words
from .exitcodes import UsageError
from .library import NotFoundError, Session
from .output import PROG, Output
from .status import Status

__all__ = ["send", "body_params"]


def body_params(args: argparse.Namespace) -> Dict[str, Any]:
    return {"temperature": args.temperature, "max_tokens": args.max_tokens}


def send(
    session: Session,
    messages: List[Dict[str, Any]],
    *,
    model: str,
    args: argparse.Namespace,
    out: Output,
    status: Status,
) -> Any:
    """Send a chat and print it; return the ChatStream or ChatReply (read to the end)."""
    stream = not args.no_stream
    started = time.monotonic()
    first = None
    status.waiting("connecting" if stream else "waiting for the reply")
    try:
        try:
            reply = session.chat(messages, model=model, stream=stream, **body_params(args))
        except (ValueError, TypeError) as exc:  # checked before any request
            raise UsageError(in_cli_words(str(exc), args)) from None
        except NotFoundError as exc:
            if "no such model" in exc.message.lower():  # GigaChat's words; any other 404 names its URL already
                exc.args = (f"{exc} (model {model!r}; `{PROG} models` lists the available ones)",)
            raise
        if stream:
            status.waiting("waiting for the first token")
            with reply:  # closes the connection however we leave: Ctrl-C, a closed pipe, an error
                for chunk in reply:
                    if first is None:
                        first = time.monotonic() - started
                        status.done()
                    out.chunk(chunk)
        else:
            status.done()
            out.chunk(reply.text)
    finally:
        status.done()
    out.finish(reply)
    if reply.finish_reason == "length" and not args.json:  # --json carries finish_reason itself
        limit = f"--max-tokens {args.max_tokens}" if args.max_tokens is not None else "the model's length limit"
        status.line(f"warning: the reply was cut at {limit} (finish_reason length)")
    if status.verbose:
        timing = f"first chunk after {first:.2f} s, " if first is not None else ""
        status.line(
            f"reply {reply.request_id or '(no request id)'}: {timing}complete after "
            f"{time.monotonic() - started:.2f} s, finish_reason={reply.finish_reason}, usage={reply.usage}"
        )
    return reply

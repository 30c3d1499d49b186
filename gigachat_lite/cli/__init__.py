"""The ``gigachat-lite`` command (also ``python -m gigachat_lite``).

Commands::

    gigachat-lite chat ["prompt"]   stream a reply; no prompt and a terminal: a conversation
    gigachat-lite models            list the model ids the key can use
    gigachat-lite batch IN -o OUT   run a JSONL file of requests, resumable; --remote: /batches
    gigachat-lite serve             run the local emulator in the foreground
    gigachat-lite demo ["prompt"]   a whole round trip against an in-process emulator
    gigachat-lite completion SHELL  a bash or zsh completion script

The modules, top-down: ``parser`` (the declaration and its help), ``exitcodes``
(the table, written once), ``commands`` (chat, models) -> ``conversation``
(the interactive loop, with ``lines`` and ``history``) -> ``reply`` (one turn,
with ``status``: spinner and -v), ``batch``, ``serve`` (serve, demo), ``completion``;
below them ``connect`` (options -> Session), ``messages`` (errors in the
command line's words), ``output`` with ``terminal`` (the server's text with its
control characters made visible on a terminal), and ``library``, the one place
the rest of gigachat_lite is imported from.

Errors are one line on stderr, ``gigachat-lite: error: ...`` (with ``--json``,
an ``{"error": {...}}`` object on stdout), never a key or token; ``--debug`` or
``GIGACHAT_LITE_DEBUG=1`` adds the traceback. The exit codes are in
:mod:`.exitcodes` and in every command's ``--help``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Callable, Dict, Optional, Sequence

from . import batch, commands, completion, serve
from .connect import list_models
from .exitcodes import EXIT_API, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, exit_code
from .library import GigaChatError
from .output import PROG, format_warning, note, report
from .parser import build_parser, check_leftovers, check_order
from .status import Status

__all__ = ["main", "build_parser", "list_models"]

Handler = Callable[[argparse.Namespace, Status], int]
HANDLERS: Dict[str, Handler] = {
    "chat": commands.chat,
    "models": commands.models,
    "batch": batch.batch,
    "serve": serve.serve,
    "demo": serve.demo,
    "completion": completion.completion,
}


def _debug_variable() -> bool:
    return os.environ.get("GIGACHAT_LITE_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def _quiet_stdout() -> None:
    # Python flushes stdout again at exit; with the pipe gone that would print an error.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit code (the console script exits with it)."""
    warnings.formatwarning = format_warning
    argv = list(sys.argv[1:] if argv is None else argv)
    # Until the options are parsed, a plain look: a usage error must already be JSON with --json.
    as_json = "--json" in argv
    debug = "--debug" in argv or _debug_variable()
    status: Optional[Status] = None
    if sys.stdout is None:  # started with stdout closed (>&-): nowhere for a reply, a JSON error or help
        if sys.stderr is not None:
            note(f"{PROG}: error: standard output is closed")
        return EXIT_BROKEN_PIPE
    try:
        parser = build_parser()
        check_order(parser, argv)
        args, extras = parser.parse_known_args(argv)
        check_leftovers(parser, args.command, extras)
        as_json = bool(getattr(args, "json", False))
        debug = args.debug or _debug_variable()
        status = Status(spinner=_stderr_is_terminal() and not as_json, verbose=args.verbose, prog=PROG)
        status.listen()
        args.parser = parser
        return HANDLERS[args.command](args, status)
    except SystemExit as exc:  # argparse: --help, --version
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        if status is not None:
            status.done()
        note(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except (UsageError, GigaChatError) as exc:
        if status is not None:
            status.done()
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        try:
            report(exc, as_json=as_json, debug=debug)
        except BrokenPipeError:  # --json: the error goes to a stdout already closed
            _quiet_stdout()
            return EXIT_BROKEN_PIPE
        return exit_code(exc)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback to report it
        if status is not None:
            status.done()
        try:
            if debug:
                report(exc, as_json=as_json, debug=True)
            else:
                report(f"unexpected {type(exc).__name__}: {exc} (--debug or GIGACHAT_LITE_DEBUG=1 shows the traceback)",
                       as_json=as_json, kind=type(exc).__name__)
        except BrokenPipeError:
            _quiet_stdout()
            return EXIT_BROKEN_PIPE
        return EXIT_API
    finally:
        if status is not None:
            status.close()

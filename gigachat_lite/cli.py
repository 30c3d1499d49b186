"""The ``gigachat-lite`` command (also ``python -m gigachat_lite``).

Commands::

    gigachat-lite chat ["prompt"]   stream a reply; no prompt and a terminal: a conversation
    gigachat-lite models            list the model ids the key can use
    gigachat-lite serve             run the local emulator in the foreground
    gigachat-lite demo ["prompt"]   a whole round trip against an in-process emulator

The authorization key comes from ``GIGACHAT_CREDENTIALS`` (or ``GIGACHAT_API_KEY``)
or from ``--credentials-file``, never from an argument: arguments show in process
lists and shell history.

Exit codes:

====  ==========================================================================
0     success
1     the API answered with an error, or a stream broke (``APIError``, ``StreamError``)
2     bad usage or input: options, configuration values, an empty prompt
3     authentication: no key configured, or the key or token was refused
4     network: connection refused, DNS, proxy, TLS, timeout (``TransportError``,
      including a stream that stalled past the timeout)
130   interrupted (Ctrl-C)
141   standard output was closed early (e.g. piped into ``head``)
====  ==========================================================================

Errors are one line on stderr, ``gigachat-lite: error: ...``, never a traceback
and never a key or token. An unexpected exception (a bug) is reported the same
way with exit code 1; ``GIGACHAT_LITE_DEBUG=1`` shows its traceback instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any, Callable, Dict, List, Mapping, NoReturn, Optional, Sequence, TextIO

from .version import __version__
from .errors import (
    APIError,
    AuthenticationError,
    GigaChatError,
    MissingAuthError,
    NotFoundError,
    StreamError,
    TransportError,
)

__all__ = ["main", "build_parser", "list_models"]

PROG = "gigachat-lite"

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NETWORK = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the API answered with an error, or a stream broke
  2    bad usage or input (options, configuration values, empty prompt)
  3    authentication: no key configured, or the key or token was refused
  4    network: connection refused, DNS, proxy, TLS, timeout
  130  interrupted (Ctrl-C)
  141  standard output was closed early (e.g. piped into head)
"""

ENVIRONMENT_HELP = """\
environment:
  GIGACHAT_CREDENTIALS     the authorization key (also GIGACHAT_API_KEY); it is
                           never taken as an argument, which would show in
                           process lists: use this or --credentials-file
  GIGACHAT_ACCESS_TOKEN    a ready access token instead of a key
  GIGACHAT_BASE_URL, GIGACHAT_AUTH_URL, GIGACHAT_SCOPE, GIGACHAT_MODEL,
  GIGACHAT_CA_BUNDLE_FILE, GIGACHAT_TIMEOUT, GIGACHAT_MAX_RETRIES,
  GIGACHAT_VERIFY_SSL_CERTS  defaults for the options above
"""

DEMO_PROMPT = "Привет! Что ты умеешь?"

INTERACTIVE_HELP = """\
/reset        forget the conversation (the --system prompt stays)
/model NAME   use another model from the next message (/model alone shows it)
/exit         leave (also /quit, or Ctrl-D)
//text        send a message that starts with '/'
Ctrl-C stops a reply that is coming in; at the prompt it leaves."""


class UsageError(Exception):
    """Bad input found after argument parsing: exit code 2."""


class _Stop(Exception):
    """SIGTERM, turned into an exception so ``serve`` unwinds and stops the emulator."""


# Secrets read from a --credentials-file: scrubbed from any error text as a
# second line of defence (the library already keeps them out of its messages).
_FILE_SECRETS: List[str] = []


# -- output ---------------------------------------------------------------------------


class Output:
    """Writes reply text (or JSON lines) to stdout, flushed per chunk.

    Remembers whether the cursor is mid-line, so that an error, an interruption
    or the next prompt starts on a line of its own.
    """

    def __init__(self, stream: TextIO, json_lines: bool = False) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self.partial = False

    def chunk(self, text: str) -> None:
        """One piece of the reply, visible at once."""
        if self.json_lines:
            self._json({"content": text})
            return
        if text:
            # Set first: Ctrl-C can land once the bytes are out but before write() returns.
            self.partial = not text.endswith("\n")
            self.stream.write(text)
            self.stream.flush()

    def finish(self, result: Any) -> None:
        """End of a reply: a newline, or the final JSON line with the reply's metadata."""
        if self.json_lines:
            self._json({"finish_reason": result.finish_reason, "usage": result.usage, "model": result.model})
        else:
            self.end_line()

    def end_line(self) -> None:
        """Close a partly written line (idempotent)."""
        if self.partial:
            self.partial = False
            self.stream.write("\n")
            self.stream.flush()

    def _json(self, obj: Mapping[str, Any]) -> None:
        import json

        self.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stream.flush()


def _note(message: str) -> None:
    """A status line for people (stderr, so stdout stays the reply alone)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _redact(text: str) -> str:
    secrets = list(_FILE_SECRETS)
    for name in ("GIGACHAT_CREDENTIALS", "GIGACHAT_API_KEY", "GIGACHAT_ACCESS_TOKEN"):
        value = (os.environ.get(name) or "").strip()
        if value:
            secrets.append(value)
    for secret in secrets:
        if len(secret) >= 8:  # a short value would blank out innocent words
            text = text.replace(secret, "***")
    return text


def _error_line(error: Any) -> str:
    text = str(error) or type(error).__name__
    return f"{PROG}: error: " + _redact(" ".join(text.split()))  # one line, whatever the message holds


def _report(error: Any) -> None:
    sys.stderr.write(_error_line(error) + "\n")
    sys.stderr.flush()


def _format_warning(message: Any, category: Any, filename: str, lineno: int, line: Optional[str] = None) -> str:
    # The library warns about verify=False; a file:line prefix means nothing to a shell user.
    return f"{PROG}: warning: {_redact(' '.join(str(message).split()))}\n"


# -- argument parsing ------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{_error_line(message)} (see {self.prog} --help)\n")


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value!r}")
    return number


def _positive(value: str) -> float:
    number = _non_negative(value)
    if number == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {number}")
    return number


def _existing_file(value: str) -> str:
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return value


def _fault(spec: str) -> Any:
    # Imported here: the emulator is only needed by `serve`.
    from .emulator.faults import parse_fault

    try:
        return parse_fault(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _config_options() -> _Parser:
    """Options shared by the commands that talk to GigaChat."""
    from .config import SCOPES

    parent = _Parser(add_help=False)
    group = parent.add_argument_group("connection (defaults from GIGACHAT_* variables, see below)")
    group.add_argument("--credentials-file", metavar="PATH", help="read the authorization key from this file")
    group.add_argument("--base-url", metavar="URL", help="API base URL (GIGACHAT_BASE_URL)")
    group.add_argument("--auth-url", metavar="URL", help="OAuth URL (GIGACHAT_AUTH_URL)")
    group.add_argument(
        "--scope", choices=SCOPES, metavar="SCOPE",
        help=f"key scope: {', '.join(SCOPES)} (GIGACHAT_SCOPE, default {SCOPES[0]})",
    )
    group.add_argument("--ca-bundle", metavar="PATH", help="CA bundle to verify the servers with (GIGACHAT_CA_BUNDLE_FILE)")
    group.add_argument("--proxy", metavar="URL", help="HTTP(S) or SOCKS proxy URL")
    # Kept as text: Config validates it and names the setting in the message.
    group.add_argument("--timeout", metavar="SECONDS", help="connect and read timeout (GIGACHAT_TIMEOUT, default 30)")
    # Not offered, but caught: argparse would otherwise echo the key back in
    # its "unrecognized arguments" message.
    for name in ("--api-key", "--credentials", "--key"):
        parent.add_argument(name, dest="key_argument", nargs="?", const="", default=None, help=argparse.SUPPRESS)
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (exposed for tests and for documentation tools)."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="A small client for Sber's GigaChat API, and a local emulator of it.",
        epilog=EXIT_CODES_HELP + "\n" + ENVIRONMENT_HELP + "\nFirst time? Try: gigachat-lite demo",
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    config = _config_options()

    chat = commands.add_parser(
        "chat",
        parents=[config],
        formatter_class=raw,
        help="ask GigaChat; stream the reply",
        description=(
            "Stream GigaChat's reply to PROMPT. Without PROMPT the prompt is read from a\n"
            "piped stdin; with a terminal, an interactive conversation starts (/help lists\n"
            "its commands). PROMPT '-' reads stdin explicitly."
        ),
        epilog=EXIT_CODES_HELP + "\n" + ENVIRONMENT_HELP,
    )
    chat.add_argument("prompt", nargs="*", help="the message (several words are joined with spaces)")
    chat.add_argument("-m", "--model", help="model id (GIGACHAT_MODEL, default GigaChat); see `gigachat-lite models`")
    chat.add_argument("-s", "--system", metavar="TEXT", help="system prompt")
    chat.add_argument("-t", "--temperature", type=float, help="sampling temperature (> 0)")
    chat.add_argument("--max-tokens", type=int, metavar="N", help="limit the reply's length in tokens")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole reply instead of streaming it")
    chat.add_argument(
        "--json", action="store_true",
        help='print one JSON object per line: {"content": ...} per chunk, then {"finish_reason", "usage", "model"}',
    )
    chat.set_defaults(handler=_cmd_chat)

    models = commands.add_parser(
        "models", parents=[config], formatter_class=raw, help="list the available model ids",
        description="List the model ids available to the key, one per line.",
        epilog=EXIT_CODES_HELP + "\n" + ENVIRONMENT_HELP,
    )
    models.add_argument("--json", action="store_true", help="print each model object as a JSON line")
    models.set_defaults(handler=_cmd_models)

    serve = commands.add_parser(
        "serve",
        formatter_class=raw,
        help="run the local GigaChat emulator in the foreground",
        description=(
            "Run the local GigaChat emulator until Ctrl-C. The `export` lines printed on\n"
            "stdout point gigachat_lite and the official SDK at it, e.g.:\n\n"
            "  gigachat-lite serve --port 8765 > emulator.env &\n"
            "  sleep 1; . ./emulator.env\n"
            "  gigachat-lite chat 'Привет'\n"
            "  kill %1    # SIGTERM stops it as cleanly as Ctrl-C"
        ),
        epilog="fault SPEC examples: chat:429:retry_after=2:times=3, oauth:reset:times=1,\n"
        "chat:cut=3, chat:stall=5:after=2, models:503, chat:error=1, any:html\n\n" + EXIT_CODES_HELP,
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=0, help="port (default 0: a free one, shown in the output)")
    serve.add_argument("--tls", action="store_true", help="serve HTTPS with a throwaway CA (needs the trustme package)")
    serve.add_argument("--certfile", type=_existing_file, metavar="PATH", help="serve HTTPS with this certificate chain")
    serve.add_argument("--keyfile", type=_existing_file, metavar="PATH", help="private key of --certfile")
    serve.add_argument(
        "--ca-bundle", type=_existing_file, metavar="PATH",
        help="with --certfile: the CA clients should trust (printed as GIGACHAT_CA_BUNDLE_FILE)",
    )
    serve.add_argument("--token-ttl", type=_positive, default=1800.0, metavar="S", help="access token lifetime (default 1800)")
    serve.add_argument("--delay", type=_non_negative, default=0.0, metavar="S", help="pause between stream events (default 0)")
    serve.add_argument("--piece-size", type=int, default=8, metavar="N", help="characters per stream event (default 8)")
    serve.add_argument(
        "--fault", type=_fault, action="append", default=[], metavar="SPEC",
        help="inject a failure, e.g. chat:429:times=1 (repeatable)",
    )
    serve.set_defaults(handler=_cmd_serve)

    demo = commands.add_parser(
        "demo",
        formatter_class=raw,
        help="chat with an in-process emulator: no key, no network",
        description=(
            "Start the emulator in this process and stream a chat through the whole\n"
            "client (OAuth, access token, SSE, chunks). Needs no key and no network."
        ),
    )
    demo.add_argument("prompt", nargs="*", help=f"the message (default: {DEMO_PROMPT!r})")
    demo.add_argument("--delay", type=_non_negative, default=0.05, metavar="S", help="pause between stream events (default 0.05)")
    demo.set_defaults(handler=_cmd_demo)
    return parser


# -- configuration ---------------------------------------------------------------------


def _read_credentials_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read the credentials file {path}: {reason}") from None
    if not key:
        raise UsageError(f"the credentials file {path} is empty")
    _FILE_SECRETS.append(key)
    return key


def open_session(args: argparse.Namespace) -> Any:
    """A :class:`~gigachat_lite.Session` from the options, falling back to ``GIGACHAT_*``.

    Raises:
        UsageError: a malformed setting (the library's ValueError/TypeError).
        MissingAuthError: no key and no token anywhere.
    """
    from .config import Config
    from .session import Session

    if args.key_argument is not None:
        raise UsageError(
            "the key is not taken on the command line (it would show in process lists): "
            "set GIGACHAT_CREDENTIALS or use --credentials-file PATH"
        )
    api_key = _read_credentials_file(args.credentials_file) if args.credentials_file else None
    try:
        config = Config.resolve(
            api_key=api_key, scope=args.scope, base_url=args.base_url, auth_url=args.auth_url,
            model=getattr(args, "model", None), ca_bundle=args.ca_bundle, proxy=args.proxy, timeout=args.timeout,
        )
    except MissingAuthError:
        # The library's message speaks of api_key=; a shell user needs the variable.
        raise MissingAuthError(
            "no GigaChat credentials: set GIGACHAT_CREDENTIALS (or GIGACHAT_ACCESS_TOKEN), "
            "or use --credentials-file PATH"
        ) from None
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    return Session(config=config)


# -- chat ------------------------------------------------------------------------------


def _prompt_from(words: Sequence[str]) -> Optional[str]:
    """The one-shot prompt, or ``None`` for an interactive conversation."""
    if words and list(words) != ["-"]:
        text = " ".join(words)
    elif words or not sys.stdin.isatty():
        # Only without an argument: reading an inherited stdin that never closes
        # (cron, CI) would hang a command that already has its prompt.
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError as exc:
            raise UsageError(f"stdin is not {exc.encoding} text (byte {exc.start})") from None
    else:
        return None
    text = _valid_text(text).strip()
    if not text:
        raise UsageError("the prompt is empty")
    return text


def _valid_text(text: str) -> str:
    try:
        # Undecodable bytes (argv, stdin or the terminal in a C locale) arrive as lone
        # surrogates, which would only fail later, deep in the JSON encoder.
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the text is not valid Unicode (check the terminal's encoding)") from None
    return text


def _prepare(messages: List[Dict[str, Any]], model: str, stream: bool, params: Mapping[str, Any]) -> Dict[str, Any]:
    from .payloads import prepare_chat

    try:
        return prepare_chat(messages, model=model, stream=stream, update_interval=None, params=params)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _send(session: Any, body: Dict[str, Any], out: Output) -> Any:
    """Send a prepared chat and print it as it arrives; return the ChatStream or ChatReply."""
    from .stream import ChatStream

    try:
        reply = session.send_chat(body)
    except NotFoundError as exc:
        exc.args = (f"{exc} (model {body.get('model')!r}; `{PROG} models` lists the available ones)",)
        raise
    if isinstance(reply, ChatStream):
        with reply:  # closes the connection however we leave: Ctrl-C, a closed pipe, an error
            for chunk in reply:
                out.chunk(chunk)
    else:
        out.chunk(reply.text)
    out.finish(reply)
    return reply


def _system_messages(system: Optional[str]) -> List[Dict[str, Any]]:
    return [{"role": "system", "content": system}] if system else []


def _params(args: argparse.Namespace) -> Dict[str, Any]:
    return {"temperature": args.temperature, "max_tokens": args.max_tokens}


def _cmd_chat(args: argparse.Namespace) -> int:
    out = Output(sys.stdout, json_lines=args.json)
    session = open_session(args)  # config errors first: before reading stdin or going interactive
    try:
        prompt = _prompt_from(args.prompt)
        if prompt is None:
            return _interactive(session, args, out)
        messages = _system_messages(args.system) + [{"role": "user", "content": prompt}]
        body = _prepare(messages, session.config.model, not args.no_stream, _params(args))
        try:
            _send(session, body, out)
        finally:
            out.end_line()
        return EXIT_OK
    finally:
        session.close()


def _enable_line_editing() -> None:
    # Imported for its side effect on input(): editing and in-session history.
    # It is absent on Windows and some minimal builds; plain input() still works.
    # No history file is written on purpose: prompts may hold private text.
    try:
        import readline  # noqa: F401
    except ImportError:
        pass


def _interactive(session: Any, args: argparse.Namespace, out: Output) -> int:
    """A conversation on a terminal: history kept between turns, slash commands."""
    _enable_line_editing()
    model: str = session.config.model
    system = _system_messages(args.system)
    history = list(system)
    params = _params(args)
    _note(f"{PROG}: chatting with {model}; /help for commands, Ctrl-D to leave")
    while True:
        try:
            line = input("> ")
        except EOFError:
            sys.stdout.write("\n")
            return EXIT_OK
        except KeyboardInterrupt:
            sys.stdout.write("\n")  # leave the "> ^C" line before the exit note
            raise
        text = line.strip()
        if not text:
            continue
        if text.startswith("/") and not text.startswith("//"):
            command, _, rest = text.partition(" ")
            rest = rest.strip()
            if command in ("/exit", "/quit"):
                return EXIT_OK
            if command == "/reset":
                history = list(system)
                _note("(conversation cleared)")
            elif command == "/model":
                if rest:
                    try:
                        model = _valid_text(rest)
                    except UsageError as exc:
                        _report(exc)
                        continue
                    _note(f"(model set to {model})")
                else:
                    _note(f"(model: {model})")
            elif command == "/help":
                _note(INTERACTIVE_HELP)
            else:
                _note(f"(unknown command {command}; /help lists them)")
            continue
        if text.startswith("//"):
            text = text[1:]
        try:
            turn = history + [{"role": "user", "content": _valid_text(text)}]
            reply = _send(session, _prepare(turn, model, not args.no_stream, params), out)
        except KeyboardInterrupt:
            # Stop this reply, keep the conversation: the turn is forgotten as if unsent.
            out.end_line()
            _note("(reply interrupted)")
            continue
        except AuthenticationError:
            raise  # the key will not get better by retrying: leave with exit code 3
        except (UsageError, GigaChatError) as exc:
            out.end_line()
            _report(exc)
            continue
        history = turn + [reply.assistant_message()]


# -- models ----------------------------------------------------------------------------


def list_models(session: Any) -> List[Dict[str, Any]]:
    """The model objects of ``GET /models`` (the one place the CLI asks for them)."""
    # Session.models() raises StreamError for a reply that is not a model list.
    return [model for model in session.models() if isinstance(model, dict)]


def _cmd_models(args: argparse.Namespace) -> int:
    import json

    session = open_session(args)
    try:
        models = list_models(session)
    finally:
        session.close()
    for model in models:
        line = json.dumps(model, ensure_ascii=False) if args.json else str(model.get("id", ""))
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return EXIT_OK


# -- serve -----------------------------------------------------------------------------


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


def _cmd_serve(args: argparse.Namespace) -> int:
    import shlex
    import ssl

    from .emulator import Emulator

    try:
        emulator = Emulator(
            host=args.host, port=args.port, tls=args.tls, certfile=args.certfile, keyfile=args.keyfile,
            ca_bundle=args.ca_bundle, token_ttl=args.token_ttl, delay=args.delay, piece_size=args.piece_size,
            faults=args.fault,
        )
        emulator.start()
    except (ValueError, RuntimeError, ssl.SSLError) as exc:  # bad settings, no trustme, unusable certificate
        raise UsageError(str(exc)) from None
    except OSError as exc:  # the address is taken or not ours
        raise TransportError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    # SIGTERM (kill, systemd, docker stop) stops as cleanly as Ctrl-C does.
    try:
        previous = signal.signal(signal.SIGTERM, _raise_stop)
    except ValueError:  # not the main thread (main() called from a thread): leave signals be
        previous = None
    try:
        for name, value in emulator.env().items():
            sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
        sys.stdout.flush()
        _note(f"{PROG}: GigaChat emulator on {emulator.url} (faults: {len(args.fault)}); Ctrl-C to stop")
        emulator.serve_forever()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    _note(f"{PROG}: emulator stopped")
    return EXIT_OK


# -- demo ------------------------------------------------------------------------------


def _bypass_proxy_for_loopback() -> None:
    # requests sends even 127.0.0.1 through HTTP(S)_PROXY unless NO_PROXY says
    # otherwise, and many corporate machines set a proxy: the demo must work there.
    current = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    value = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = value


def _cmd_demo(args: argparse.Namespace) -> int:
    from .api import chat
    from .emulator import Emulator

    prompt = " ".join(args.prompt).strip() or DEMO_PROMPT
    out = Output(sys.stdout)
    _bypass_proxy_for_loopback()
    # Plain HTTP: TLS would need trustme, and the demo must run right after `pip install`.
    with Emulator(delay=args.delay) as emulator:
        # model= explicitly: a GIGACHAT_MODEL meant for the real service may not exist here.
        settings: Dict[str, Any] = dict(emulator.client_config())
        stream = chat(prompt, model="GigaChat", **settings)
        try:
            _send_stream(stream, out)
        finally:
            out.end_line()
        usage = stream.usage or {}
        _note(
            f"--\nfinish_reason={stream.finish_reason}, tokens: {usage.get('prompt_tokens')} prompt"
            f" + {usage.get('completion_tokens')} completion = {usage.get('total_tokens')}\n"
            f"This reply came from the local GigaChat emulator at {emulator.url} (OAuth, access token,"
            " SSE stream), not from Sber.\n"
            f"For the real service: export GIGACHAT_CREDENTIALS=<your key>; {PROG} chat \"Привет\""
        )
    return EXIT_OK


def _send_stream(stream: Any, out: Output) -> None:
    with stream:
        for chunk in stream:
            out.chunk(chunk)


# -- entry point -----------------------------------------------------------------------


def _exit_code(error: BaseException) -> int:
    # Order matters: AuthenticationError is an APIError, and StreamTimeoutError is
    # both a StreamError and a TransportError (a stalled network, so 4).
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, (MissingAuthError, AuthenticationError)):
        return EXIT_AUTH
    if isinstance(error, TransportError):
        return EXIT_NETWORK
    if isinstance(error, (APIError, StreamError, GigaChatError)):
        return EXIT_API
    raise error


def _quiet_stdout() -> None:
    # Python flushes stdout again at exit; with the pipe gone that would print an error.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit code (the console script exits with it)."""
    import warnings

    warnings.formatwarning = _format_warning
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        _note(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except (UsageError, GigaChatError) as exc:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        _report(exc)
        return _exit_code(exc)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback to report it
        if os.environ.get("GIGACHAT_LITE_DEBUG"):
            raise
        _report(f"unexpected {type(exc).__name__}: {exc} (set GIGACHAT_LITE_DEBUG=1 for the traceback)")
        return EXIT_API

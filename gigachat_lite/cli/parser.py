"""The command line's declaration: commands, options, help (examples, exit codes), suggestions."""

from __future__ import annotations

import argparse
import difflib
import os
import re
from typing import Dict, List, NoReturn, Optional, Sequence, Tuple

from .exitcodes import UsageError, help_for
from .history import HISTORY_VARIABLE
from .library import API_VERSIONS, SCOPES, __version__, parse_fault
from .output import PROG

__all__ = ["build_parser", "check_order", "check_leftovers"]

DEMO_PROMPT = "Привет! Что ты умеешь?"
RAW_HELP = (
    "on a terminal, write the server's text as sent, control characters included (by default they are"
    " shown as escapes such as \\x1b, so a reply cannot set the clipboard or the title or clear the screen);"
    " pipes and files always get it as sent"
)
COMMANDS = ("chat", "models", "batch", "serve", "demo", "completion")

ENVIRONMENT_HELP = f"""\
environment:
  GIGACHAT_CREDENTIALS     the authorization key (also GIGACHAT_API_KEY); it is
                           never taken as an argument, which would show in
                           process lists: use this or --credentials-file
  GIGACHAT_ACCESS_TOKEN    a ready access token instead of a key
  GIGACHAT_BASE_URL, GIGACHAT_AUTH_URL, GIGACHAT_SCOPE, GIGACHAT_MODEL,
  GIGACHAT_CA_BUNDLE_FILE, GIGACHAT_TIMEOUT, GIGACHAT_MAX_RETRIES,
  GIGACHAT_VERIFY_SSL_CERTS  defaults for the connection options of chat and models
  GIGACHAT_LITE_DEBUG=1    show the traceback of an error (as --debug does)
  NO_COLOR=1               do not dim the escapes that stand for the control
                           characters of the server's text on a terminal
  {HISTORY_VARIABLE}=0  keep no prompt history (as chat --no-history does);
                           it is kept in $XDG_DATA_HOME/gigachat_lite (default
                           ~/.local/share/gigachat_lite)
"""

EXAMPLES = {
    "": f"""\
examples:
  {PROG} demo                          a reply from a local emulator: no key, no network
  {PROG} chat "Привет"                 stream a reply (key in GIGACHAT_CREDENTIALS)
  {PROG} chat                          a conversation on the terminal
  {PROG} completion bash > ~/.local/share/bash-completion/completions/{PROG}
""",
    "chat": f"""\
examples:
  {PROG} chat "Привет"
  echo "Столица Франции?" | {PROG} chat --model GigaChat-Pro
  {PROG} chat --json "Привет" | jq -r .content
  {PROG} chat --no-stream --system "Отвечай кратко." --temperature 0.3 "Привет"
  {PROG} chat -v "Привет"              also show request ids, retries and timings
  {PROG} chat                          a conversation: /help lists its commands
""",
    "models": f"""\
examples:
  {PROG} models
  {PROG} models --json
""",
    "batch": f"""\
examples:
  {PROG} batch requests.jsonl -o results.jsonl      run again to resume (errors are retried)
  {PROG} batch texts.jsonl -o vectors.jsonl --method embeddings
  {PROG} batch requests.jsonl -o results.jsonl --remote     through GigaChat's /batches
  {PROG} batch part1.jsonl -o out1.jsonl --coordination file:///tmp/gigachat &
  {PROG} batch part2.jsonl -o out2.jsonl --coordination file:///tmp/gigachat    one key, no 429

a line of INPUT:   {{"id": "q1", "request": {{"model": "GigaChat", "messages": [{{"role": "user", "content": "..."}}]}}}}
a line of OUTPUT:  {{"id": "q1", "result": {{...the API's reply...}}}}
               or  {{"id": "q1", "error": {{"status": 429, "message": "Too Many Requests"}}}}
""",
    "serve": f"""\
examples:
  {PROG} serve --port 8765 > emulator.env &
  sleep 1; . ./emulator.env; {PROG} chat 'Привет'
  kill %1                              SIGTERM stops it as cleanly as Ctrl-C
  {PROG} serve --fault chat:429:retry_after=2:times=3 --delay 0.05

fault SPEC examples: chat:429:retry_after=2:times=3, oauth:reset:times=1,
chat:cut=3, chat:stall=5:after=2, models:503, chat:error=1, any:html
""",
    "demo": f"""\
examples:
  {PROG} demo
  {PROG} demo --delay 0 "Как дела?"
""",
    "completion": f"""\
examples:
  {PROG} completion bash > ~/.local/share/bash-completion/completions/{PROG}
  {PROG} completion zsh > ~/.zfunc/_{PROG}     (with fpath+=~/.zfunc before compinit)
""",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is an exception main() reports like any other, with a suggestion."""

    commands: Dict[str, "_Parser"]

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{_suggest(_without_values(message))} (see {self.prog} --help)")


def _without_values(message: str) -> str:
    """argparse's message with the values of mistyped options left out: one may be a key.

    ``--cred=KEY`` is "ambiguous option: --cred=KEY could match ..." and
    ``--no-stream=KEY`` "ignored explicit argument 'KEY'"; only the option is named.
    """
    prefix, matches = "ambiguous option: ", " could match "
    if message.startswith(prefix) and matches in message:
        typed, _, options = message[len(prefix):].rpartition(matches)
        return f"{prefix}{typed.split('=', 1)[0]}{matches}{options}"
    head, found, _ = message.partition(": ignored explicit argument ")
    if found:
        return f"{head}: takes no value (the value given is not shown)"
    return message


def _suggest(message: str) -> str:
    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if match:
        choices = re.findall(r"'([^']*)'", match.group(2))
        close = difflib.get_close_matches(match.group(1), choices, n=1)
        if close:
            return f"{message}; did you mean {close[0]!r}?"
    return message


def _options(parser: argparse.ArgumentParser) -> List[str]:
    """The option strings ``parser`` offers (not the hidden ones)."""
    return [option for action in parser._actions if action.help != argparse.SUPPRESS for option in action.option_strings]


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    # Never the very thing typed: that one is misplaced, not misspelt, and says so elsewhere.
    close = difflib.get_close_matches(name, [option for option in known if option != name], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_order(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Before the command only the global options (-v, --debug, --version, --help) may come.

    argparse would take the value of a command's option given there for the
    command (``invalid choice: 'GigaChat-Pro'``); say instead where it goes.
    """
    commands: Dict[str, argparse.ArgumentParser] = getattr(parser, "commands")
    top = [option for action in parser._actions for option in action.option_strings]
    for word in argv:
        if word == "--" or word in commands or not word.startswith("-") or word == "-":
            return
        name = word.split("=", 1)[0]  # never echo a value: it may be a key
        if name in top or (name.startswith("--") and any(option.startswith(name) for option in top)):
            continue  # a global option, or argparse's abbreviation of one
        if re.fullmatch(r"-[A-Za-z]+", name) and all(f"-{letter}" in top for letter in name[1:]):
            continue  # short global options run together: -vh
        owners = [command for command, sub in commands.items() if name in _options(sub)]
        if owners:
            typed = next((w for w in argv if w in owners), owners[0])  # the command it was meant for, if given
            raise UsageError(
                f"{name} is an option of {' and '.join(owners)}: put it after the command "
                f"({PROG} {typed} {name} ...; see {PROG} {typed} --help)"
            )
        everything = top + [option for sub in commands.values() for option in _options(sub)]
        raise UsageError(f"unknown option {name}{_did_you_mean(name, everything)} (see {PROG} --help)")


def check_leftovers(parser: argparse.ArgumentParser, command: Optional[str], extras: Sequence[str]) -> None:
    """Report what argparse did not recognize, with "did you mean", never echoing a possible secret."""
    if not extras:
        return
    sub = getattr(parser, "commands", {}).get(command, parser)
    known = _options(sub)
    problems: List[str] = []
    after_unknown_option = False
    for extra in extras:
        if extra.startswith("-") and len(extra) > 1:
            name = extra.split("=", 1)[0]  # never echo a value: it may be a key
            problems.append(f"unknown option {name}{_did_you_mean(name, known)}")
            after_unknown_option = True
        elif after_unknown_option:
            problems.append("an argument after it (not shown: it may be a secret)")
            after_unknown_option = False
        else:
            problems.append(f"unexpected argument {extra!r}")
    prog = f"{PROG} {command}" if command else PROG
    raise UsageError(f"{'; '.join(problems)} (see {prog} --help)")


def _number(value: str, *, low: float = 0.0, allow_low: bool = True) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not (number > low or (allow_low and number == low)) or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number {'>=' if allow_low else '>'} {low:g}, got {value!r}")
    return number


def _non_negative(value: str) -> float:
    return _number(value)


def _positive(value: str) -> float:
    return _number(value, allow_low=False)


def _integer(value: str, low: int, high: int, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from None
    if not low <= number <= high:
        raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {number}")
    return number


def _port(value: str) -> int:
    return _integer(value, 0, 65535, "a port number")


def _slots(value: str) -> int:
    return _integer(value, 1, 1000, "a number of requests")


def _piece_size(value: str) -> int:
    return _integer(value, 1, 1 << 20, "a number of characters")


def _existing_file(value: str) -> str:
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return value


def _user(value: str) -> Tuple[str, str]:
    name, colon, password = value.partition(":")
    password = password if colon else os.environ.get("GIGACHAT_PASSWORD", "")
    if not name or not password:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD, or NAME with GIGACHAT_PASSWORD set")
    return name, password


def _fault(spec: str) -> object:
    try:
        return parse_fault(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """The options every command takes, before or after its name.

    Declared on the top parser with their defaults and on each command with
    ``default=SUPPRESS``: argparse copies a command's defaults over what the top
    parser set, so ``-v chat`` would otherwise lose its ``-v``.
    """
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="show request ids, retries and timings on stderr (never a secret)")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the traceback of an error (also GIGACHAT_LITE_DEBUG=1)")


def _common() -> _Parser:
    parent = _Parser(add_help=False)
    _add_global_options(parent, default=argparse.SUPPRESS)
    return parent


def _connection() -> _Parser:
    """Options shared by the commands that talk to GigaChat."""
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
    # Kept as text: the library validates it and the CLI names --timeout in the message.
    group.add_argument("--timeout", metavar="SECONDS", help="connect and read timeout (GIGACHAT_TIMEOUT, default 30)")
    group.add_argument(
        "--api-version", choices=API_VERSIONS, metavar="V",
        help="chat contract: v1 or v2 (GIGACHAT_API_VERSION; default v1, or v2 when a call needs it)",
    )
    # Not offered, but caught: argparse would otherwise echo the key back in
    # its "unrecognized arguments" message.
    for name in ("--api-key", "--credentials", "--key"):
        parent.add_argument(name, dest="key_argument", nargs="?", const="", default=None, help=argparse.SUPPRESS)
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (exposed for tests, completion and documentation tools)."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="A small client for Sber's GigaChat API, and a local emulator of it.",
        epilog="\n".join([EXAMPLES[""], help_for(), ENVIRONMENT_HELP, f"First time? Try: {PROG} demo"]),
        formatter_class=raw,
    )
    _add_global_options(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    common, connection = _common(), _connection()

    def command(name: str, summary: str, description: str, parents: List[_Parser], environment: bool = False) -> _Parser:
        epilog = [EXAMPLES[name], help_for(name)] + ([ENVIRONMENT_HELP] if environment else [])
        return subparsers.add_parser(
            name, parents=parents + [common], formatter_class=raw, help=summary,
            description=description, epilog="\n".join(epilog),
        )

    chat = command(
        "chat", "ask GigaChat; stream the reply",
        "Stream GigaChat's reply to PROMPT. Without PROMPT the prompt is read from a\n"
        "piped stdin; with a terminal, an interactive conversation starts (/help lists\n"
        "its commands; a paste, a line ending with \\ or a \"\"\" block is one message).\n"
        "PROMPT '-' reads stdin explicitly.",
        [connection], environment=True,
    )
    chat.add_argument("prompt", nargs="*", help="the message (several words are joined with spaces)")
    chat.add_argument("-m", "--model", help="model id (GIGACHAT_MODEL, default GigaChat); see `gigachat-lite models`")
    chat.add_argument("-s", "--system", metavar="TEXT", help="system prompt")
    chat.add_argument("-t", "--temperature", type=float, help="sampling temperature (> 0)")
    chat.add_argument("--max-tokens", type=int, metavar="N", help="limit the reply's length in tokens (a reply cut there says so on stderr)")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole reply instead of streaming it")
    chat.add_argument(
        "--json", action="store_true",
        help='print one JSON object per line: {"content": ...} per chunk, then {"finish_reason", "usage", "model"};'
        ' an error is {"error": {"type", "message", "status", "request_id"}}',
    )
    chat.add_argument("--no-history", action="store_true", help=f"keep no prompt history in the conversation ({HISTORY_VARIABLE}=0)")
    chat.add_argument("--raw", action="store_true", help=RAW_HELP)

    models = command("models", "list the available model ids", "List the model ids available to the key, one per line.",
                     [connection], environment=True)
    models.add_argument("--json", action="store_true", help="print each model object as a JSON line (errors as a JSON object)")
    models.add_argument("--raw", action="store_true", help=RAW_HELP)

    batch = command(
        "batch", "run a JSONL file of requests; resumable",
        "Send every request of INPUT, a JSONL file of {\"id\", \"request\"} objects (the\n"
        "request is the body of POST /chat/completions, or of /embeddings with --method\n"
        "embeddings), and write one result or error line per id to OUTPUT (-o). As many\n"
        "requests run at once as the key allows (1 for a personal key, 10 for business\n"
        "ones), with retries. The same command again resumes: results are kept, errors\n"
        "are retried, and OUTPUT ends with one line per id in INPUT's order. Progress is\n"
        "shown on a terminal; a one-line summary ends the run.",
        [connection], environment=True,
    )
    batch.add_argument("input", metavar="INPUT", help="the requests: one JSON object a line")
    batch.add_argument("-o", "--output", metavar="PATH", required=True, help="OUTPUT: where the results go (and a re-run resumes from)")
    batch.add_argument(
        "--method", choices=("chat", "embeddings", "chat_completions", "embedder"), default="chat",
        help="what the requests are: chat (default) or embeddings (/batches' names also work)",
    )
    batch.add_argument("--remote", action="store_true",
                       help="submit the file to GigaChat's /batches and wait for it (pay-as-you-go accounts)")
    batch.add_argument("--max-concurrency", type=_slots, metavar="N",
                       help="requests at once (GIGACHAT_MAX_CONCURRENCY; default the key's limit)")
    batch.add_argument("--coordination", metavar="URL",
                       help="share the key's limit with other processes: file:///folder or redis://host (GIGACHAT_COORDINATION)")
    batch.add_argument("--poll-interval", type=_positive, default=30.0, metavar="S",
                       help="with --remote: seconds between status checks, at most (default 30)")

    serve = command(
        "serve", "run the local GigaChat emulator in the foreground",
        "Run the local GigaChat emulator until Ctrl-C. The `export` lines printed on\n"
        "stdout point gigachat_lite and the official SDK at it.", [],
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=0, help="port (default 0: a free one, shown in the output)")
    serve.add_argument("--tls", action="store_true", help="serve HTTPS with a throwaway CA (needs trustme: pip install 'gigachat_lite[emulator]')")
    serve.add_argument("--certfile", type=_existing_file, metavar="PATH", help="serve HTTPS with this certificate chain")
    serve.add_argument("--keyfile", type=_existing_file, metavar="PATH", help="private key of --certfile")
    serve.add_argument(
        "--ca-bundle", type=_existing_file, metavar="PATH",
        help="with --certfile: the CA clients should trust (printed as GIGACHAT_CA_BUNDLE_FILE)",
    )
    serve.add_argument("--token-ttl", type=_positive, default=1800.0, metavar="S", help="access token lifetime (default 1800)")
    serve.add_argument("--delay", type=_non_negative, default=0.0, metavar="S", help="pause between stream events (default 0)")
    serve.add_argument("--piece-size", type=_piece_size, default=8, metavar="N", help="characters per stream event (default 8)")
    serve.add_argument("--fault", type=_fault, action="append", default=[], metavar="SPEC",
                       help="inject a failure, e.g. chat:429:times=1 (repeatable)")
    serve.add_argument("--user", type=_user, action="append", default=[], metavar="NAME[:PASSWORD]",
                       help="accept this user at POST {base}/token (the SDK's user/password auth); "
                            "the password defaults to GIGACHAT_PASSWORD (repeatable)")

    demo = command(
        "demo", "chat with an in-process emulator: no key, no network",
        "Start the emulator in this process and stream a chat through the whole\n"
        "client (OAuth, access token, SSE, chunks). Needs no key and no network;\n"
        "GIGACHAT_* variables do not apply to it.", [],
    )
    demo.add_argument("prompt", nargs="*", help=f"the message (default: {DEMO_PROMPT!r})")
    demo.add_argument("--delay", type=_non_negative, default=0.05, metavar="S", help="pause between stream events (default 0.05)")

    completion = command("completion", "print a shell completion script (bash or zsh)",
                         "Print a completion script for the shell, generated from this command line.", [])
    completion.add_argument("shell", choices=("bash", "zsh"), help="bash or zsh")

    parser.commands = dict(subparsers.choices)
    return parser

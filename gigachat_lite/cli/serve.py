"""``serve`` and ``demo``: the local emulator, in the foreground or for one round trip."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
from typing import Any, Dict

from .exitcodes import EXIT_OK, UsageError
from .library import Config, Session, TransportError, emulator_class
from .output import PROG, Output, note
from .parser import DEMO_PROMPT
from .status import Status

__all__ = ["serve", "demo"]


class _Stop(Exception):
    """SIGTERM, turned into an exception so ``serve`` unwinds and stops the emulator."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


def serve(args: argparse.Namespace, status: Status) -> int:
    # Imported here: only serve needs them, and the other commands start faster without.
    import shlex
    import ssl

    Emulator = emulator_class()

    orphans = [flag for flag, value in (("--keyfile", args.keyfile), ("--ca-bundle", args.ca_bundle)) if value]
    if orphans and not args.certfile:  # else served as plain HTTP, or with a throwaway CA, as if not given
        raise UsageError(f"{' and '.join(orphans)} {'need' if len(orphans) > 1 else 'needs'} --certfile PATH (the certificate to serve HTTPS with)")
    if args.tls and not args.certfile and importlib.util.find_spec("trustme") is None:
        raise UsageError(
            "--tls needs the trustme package to make a throwaway CA: "
            "pip install 'gigachat_lite[emulator]', or give --certfile PATH and --keyfile PATH"
        )
    try:
        emulator = Emulator(
            host=args.host, port=args.port, tls=args.tls, certfile=args.certfile, keyfile=args.keyfile,
            ca_bundle=args.ca_bundle, token_ttl=args.token_ttl, delay=args.delay, piece_size=args.piece_size,
            faults=args.fault, users=dict(args.user),
        )
        emulator.start()
    except ValueError as exc:  # the only bad setting argparse cannot see is a non-loopback --host
        raise UsageError(f"--host: {exc}") from None
    except ssl.SSLError as exc:
        raise UsageError(f"--certfile/--keyfile: unusable certificate or key: {exc.reason or exc}") from None
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
        note(f"{PROG}: GigaChat emulator on {emulator.url} (faults: {len(args.fault)}); Ctrl-C to stop")
        emulator.serve_forever()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    note(f"{PROG}: emulator stopped")
    return EXIT_OK


def _bypass_proxy_for_loopback() -> None:
    # requests sends even 127.0.0.1 through HTTP(S)_PROXY unless NO_PROXY says
    # otherwise, and many corporate machines set a proxy: the demo must work there.
    current = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    value = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = value


def demo(args: argparse.Namespace, status: Status) -> int:
    Emulator = emulator_class()
    prompt = " ".join(args.prompt).strip() or DEMO_PROMPT
    out = Output(sys.stdout)
    _bypass_proxy_for_loopback()
    # Plain HTTP: TLS would need trustme, and the demo must run right after `pip install`.
    with Emulator(delay=args.delay) as emulator:
        # env={}: no GIGACHAT_* variable applies (a model, a timeout, a coordination store
        # meant for the real service); the demo needs no setup, and a bad value there is not its business.
        settings: Dict[str, Any] = dict(emulator.client_config())
        with Session(config=Config.resolve(env={}, model="GigaChat", **settings)) as session:
            status.waiting("connecting")
            try:
                stream = session.chat(prompt)
                status.waiting("waiting for the first token")
                with stream:
                    for chunk in stream:
                        status.done()
                        out.chunk(chunk)
            finally:
                status.done()
                out.end_line()
        usage: Dict[str, Any] = stream.usage or {}
        note(
            f"--\nfinish_reason={stream.finish_reason}, tokens: {usage.get('prompt_tokens')} prompt"
            f" + {usage.get('completion_tokens')} completion = {usage.get('total_tokens')}\n"
            f"This reply came from the local GigaChat emulator at {emulator.url} (OAuth, access token,"
            " SSE stream), not from Sber. The same from Python:\n"
            "    from gigachat_lite import chat\n"
            "    from gigachat_lite.emulator import Emulator\n"
            "    with Emulator() as emu:\n"
            "        print(\"\".join(chat(\"Привет\", **emu.client_config())))\n"
            f"For the real service: export GIGACHAT_CREDENTIALS=<your key>; {PROG} chat \"Привет\""
        )
    return EXIT_OK

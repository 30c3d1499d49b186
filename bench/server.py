"""The emulator in its own process, driven over stdin/stdout by bench/run.py.

Prints one JSON line (``client_config()``, ``env()``) once listening, then
answers one line per command read from stdin:

    delay <seconds>   seconds between stream events (0 for the CPU runs)
    reset             zero the accepted-connection counter (the emulator sets TCP_NODELAY itself)
    conns             print how many TCP connections were accepted since reset
    quit              stop

The reply is chosen by the last user message (v1 text or v2 text parts, the
emulator serves both ``/api/v1`` and ``/api/v2`` chat): ``"x*N"`` streams ``N``
one-character events (``piece_size=1``); anything else answers ``"ok"``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any, Dict

from gigachat_lite.emulator import Emulator
from gigachat_lite.emulator import server as emulator_server

ACCEPTED = 0
_LOCK = threading.Lock()
_original = emulator_server.EmulatorServer.process_request


def _counting(self: Any, request: Any, client_address: Any) -> None:
    global ACCEPTED
    with _LOCK:
        ACCEPTED += 1
    _original(self, request, client_address)


emulator_server.EmulatorServer.process_request = _counting  # type: ignore[method-assign]


def reply(body: Dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content") or ""
            if isinstance(content, list):  # v2: a list of parts
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            if content.startswith("x*"):
                return "x" * int(content[2:])
            break
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    args = parser.parse_args()
    global ACCEPTED
    with Emulator(tls=not args.plain, reply=reply, piece_size=1) as emu:
        print(json.dumps({"config": emu.client_config(), "env": emu.env()}), flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "delay":
                emu.delay = float(arg)
                print("ok", flush=True)
            elif command == "reset":
                with _LOCK:
                    ACCEPTED = 0
                print("ok", flush=True)
            elif command == "conns":
                with _LOCK:
                    print(ACCEPTED, flush=True)
            elif command == "quit":
                break
            else:
                print("?", flush=True)


if __name__ == "__main__":
    main()

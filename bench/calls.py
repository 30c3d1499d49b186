"""Client CPU per small call: ``python bench/calls.py [--plain] [--calls 400] [--rounds 5]``.

One ``stream=False`` chat call at a time against the emulator (its own
process, TLS unless ``--plain``), measured with ``time.process_time()`` in
this process, so the emulator's and the network's time are left out: the
floor (raw http.client), ``chat()``, ``Session.chat`` and the official SDK,
the clients alternated round by round. Prints the median and min per call
and the ratio to the SDK's median (the issue-19 guard rail: no higher).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clients import Floor, LiteChat, LiteSession, SdkSync  # noqa: E402
from run import Emulator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    parser.add_argument("--calls", type=int, default=400, help="calls per client per round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    emulator = Emulator(plain=options.plain)
    try:
        config = emulator.config
        clients = {"floor": Floor(config), "gigachat_lite chat()": LiteChat(config),
                   "gigachat_lite Session.chat()": LiteSession(config), "gigachat SDK": SdkSync(config)}
        for client in clients.values():  # connections, tokens and caches warm
            for _ in range(20):
                client.call("hi")
        results = {name: [] for name in clients}
        for _ in range(options.rounds):
            for name, client in clients.items():
                started = time.process_time()
                for _ in range(options.calls):
                    client.call("hi")
                results[name].append((time.process_time() - started) / options.calls * 1e6)
        sdk = statistics.median(results["gigachat SDK"])
        for name, values in results.items():
            median = statistics.median(values)
            print(f"{name:30} {median:7.1f} µs/call (min {min(values):7.1f})  {median / sdk:.2f}x the SDK's")
    finally:
        emulator.close()


if __name__ == "__main__":
    main()

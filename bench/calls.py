"""Client CPU per small call: ``python bench/calls.py [--plain] [--calls 400] [--rounds 5]``.

One ``stream=False`` chat call at a time against the emulator (its own
process, TLS unless ``--plain``), measured with ``time.process_time()`` in
this process, so the emulator's and the network's time are left out: the
floor (raw http.client), ``chat()``, ``Session.chat`` and the official SDK,
the clients alternated round by round. Prints the median and min per call,
the ratio to the SDK's median and, "paired", the median (min–max) of each
round's ratio to the SDK's round next to it: the issue-19 guard rail (no
higher than the SDK's) is judged on the paired figure, which a shared
machine's drift between rounds moves least.
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
    parser.add_argument("--calls", type=int, default=200, help="calls per client per round")
    parser.add_argument("--rounds", type=int, default=15)
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
        for index in range(options.rounds):
            order = list(clients.items())
            for name, client in order if index % 2 == 0 else reversed(order):  # ABBA: a drift within a round cancels
                started = time.process_time()
                for _ in range(options.calls):
                    client.call("hi")
                results[name].append((time.process_time() - started) / options.calls * 1e6)
        sdk_rounds = results["gigachat SDK"]
        sdk = statistics.median(sdk_rounds)
        for name, values in results.items():
            median = statistics.median(values)
            paired = [value / base for value, base in zip(values, sdk_rounds)]
            print(f"{name:30} {median:7.1f} µs/call (min {min(values):7.1f})  {median / sdk:.2f}x the SDK's,"
                  f" paired {statistics.median(paired):.2f}x ({min(paired):.2f}x-{max(paired):.2f}x)")
    finally:
        emulator.close()


if __name__ == "__main__":
    main()

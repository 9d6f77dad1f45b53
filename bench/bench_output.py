#!/usr/bin/env python3
"""Throughput of one remote command printing many lines: wall time, lines/s, formatter calls, memory.

Targets: output handled in chunks (far fewer formatter calls than lines), memory bounded
(the peak does not grow with the number of lines when the formatter keeps nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testbed import Testbed  # noqa: E402

from apssh import SshNode  # noqa: E402
from apssh.formatters import Formatter  # noqa: E402


class Counter(Formatter):
    """Counts lines and calls, keeps nothing."""

    def __init__(self):
        super().__init__()
        self.calls = self.lines_seen = self.chars = 0

    def lines(self, lines, datatype, hostname, username=None):
        self.calls += 1
        self.lines_seen += len(lines)
        self.chars += sum(map(len, lines))


async def measure(bed: Testbed, count: int) -> None:
    host = bed.host("node1")
    counter = Counter()
    node = SshNode(host.address, port=host.port, username=bed.user, formatter=counter,
                   known_hosts=bed.all_known_hosts)
    await node.connect_lazy()
    start = time.perf_counter()
    status = await node.run(f"seq {count}")
    elapsed = time.perf_counter() - start
    await node.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = counter.lines_seen / elapsed
    print(f"lines: {counter.lines_seen} (exit {status}) in {elapsed:.2f}s = {rate:,.0f} lines/s")
    print(f"formatter calls: {counter.calls} ({counter.lines_seen / max(counter.calls, 1):.0f} lines per call)")
    print(f"peak RSS of this process: {peak_mib:.0f} MiB")


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--lines", type=int, default=1_000_000)
    args = cli.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bed = Testbed(tmp)
        os.environ["HOME"] = str(bed.home)
        with bed:
            asyncio.run(measure(bed, args.lines))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Output throughput: many lines through the CLI (vs apssh 0.27 and OpenSSH), and through the library.

CLI (``run_family``, used by ``make bench``): 1, 10 and 100 hosts print 2 million lines in all
(``seq``), to /dev/null and with ``-o DIR``; lines per second and client CPU per million lines.
With ``-o DIR`` every host's file is checked (a failure is a file that is not the full output).

Library (``python bench/bench_output.py``): one remote command through SshNode.run into a
formatter that keeps nothing: wall time, lines/s, formatter calls (output handled in chunks,
far fewer calls than lines) and peak memory (bounded: it does not grow with the lines).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import Testbed  # noqa: E402
from tools import APSSH027, OPENSSH, OURS, Run, fanout_argv  # noqa: E402
from tools import measure as measure_run  # noqa: E402

from apssh import SshNode  # noqa: E402
from apssh.formatters import Formatter  # noqa: E402

TOOLS = [OURS, APSSH027, OPENSSH]
TOTAL_LINES = 2_000_000
# a run slower than this is not repeated (apssh 0.27 with -o DIR: minutes for 2 million lines)
SLOW_SECONDS = 60


def seq_bytes(count: int) -> int:
    """Size of the output of ``seq count``."""
    size, digits, low = 0, 1, 1
    while low <= count:
        high = min(count, 10 ** digits - 1)
        size += (high - low + 1) * (digits + 1)
        digits, low = digits + 1, 10 ** digits
    return size


def run_family(bed, args, log=print) -> list[Run]:
    """Every host count, both destinations, ``args.rounds`` rounds, the tools rotated each round."""
    total = 500_000 if args.quick else TOTAL_LINES
    tools = [tool for tool in TOOLS if tool in getattr(args, "tools", TOOLS)] or TOOLS
    results = []
    slow = set()  # (case, tool) whose run took longer than SLOW_SECONDS: not repeated
    for hosts in (1, 10, 100):
        per_host = total // hosts
        hosts_file = bed.hosts_file(hosts)
        for scenario in ("output", "output -o"):
            for round_ in range(args.rounds):
                order = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
                for tool in order:
                    if (hosts, scenario, tool) in slow:
                        continue
                    out_dir = None
                    if scenario == "output -o":
                        out_dir = bed.base / "out"
                        shutil.rmtree(out_dir, ignore_errors=True)
                        out_dir.mkdir()
                    got = measure_run(fanout_argv(tool, bed, hosts_file, f"seq {per_host}", out_dir),
                                  env=bed.client_env(), timeout=600)
                    if out_dir is not None:
                        expected = seq_bytes(per_host)
                        failures = sum(1 for host in bed.hosts[:hosts]
                                       if not (out_dir / host).exists() or (out_dir / host).stat().st_size != expected)
                    else:
                        failures = 0 if got["rc"] == 0 else hosts
                    result = Run(scenario, f"{hosts} x {per_host:,}", tool, round_, wall=got["wall"], cpu=got["cpu"],
                                 maxrss_mb=got["maxrss_mb"], rc=got["rc"], failures=failures,
                                 extra={"lines": per_host * hosts})
                    if failures or got["rc"]:
                        result.error = got["stderr"][-500:]
                    results.append(result)
                    if got["wall"] > SLOW_SECONDS:
                        slow.add((hosts, scenario, tool))
                    log(f"{scenario:9s} {hosts:3d} hosts {tool:16s} wall {got['wall']:7.2f}s "
                        f"{per_host * hosts / got['wall']:12,.0f} lines/s cpu {got['cpu']:6.2f}s "
                        f"rss {got['maxrss_mb']:5.0f}MB failures {failures}")
    return results


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

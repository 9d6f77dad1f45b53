#!/usr/bin/env python3
"""`hostname` on N hosts with every tool, alternated: wall, client CPU, peak RSS, failures.

A failure is a host whose line is missing from the tool's output (every bench host is this
machine, so each must print this machine's name once).
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import ALL_TOOLS, APSSH027, CLUSH, OPENSSH, OURS, PSSH, Run, fanout_argv, measure  # noqa: E402

TOOLS = [OURS, APSSH027, PSSH, OPENSSH, CLUSH]
# a run slower than this is not repeated at that size (ssh via xargs and clush at 1000 hosts)
SLOW_SECONDS = 90


def count_lines(path: Path, needle: str) -> int:
    with open(path, errors="replace") as text:
        return sum(1 for line in text if needle in line)


def run(bed, sizes: list[int], rounds: int, tools: list[str] = TOOLS, log=print) -> list[Run]:
    """Every size, ``rounds`` times, the tools in a rotated order each round."""
    name = socket.gethostname()
    results = []
    slow = set()
    for size in sizes:
        hosts_file = bed.hosts_file(size)
        for round_ in range(rounds):
            order = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
            for tool in order:
                if (size, tool) in slow:
                    continue
                out = bed.base / "hostname.out"
                server_before = bed.server_cpu()
                got = measure(fanout_argv(tool, bed, hosts_file, "hostname"), env=bed.client_env(),
                              stdout=out, timeout=120 + size)
                time.sleep(0.3)  # the last sessions' processes are reaped by their listener
                server = bed.server_cpu() - server_before
                seen = count_lines(out, name)
                result = Run("hostname", str(size), tool, round_, wall=got["wall"], cpu=got["cpu"],
                             maxrss_mb=got["maxrss_mb"], rc=got["rc"], failures=size - seen,
                             extra={"server_cpu": server})
                if seen != size or got["rc"]:
                    result.error = got["stderr"][-500:]
                results.append(result)
                if got["wall"] > SLOW_SECONDS:
                    slow.add((size, tool))
                log(f"hostname {size:5d} {tool:16s} wall {got['wall']:7.2f}s cpu {got['cpu']:7.2f}s "
                    f"server cpu {server:7.2f}s rss {got['maxrss_mb']:6.1f}MB failures {size - seen} "
                    f"rc {got['rc']} load {result.extra['load']:.1f}")
    return results


def run_family(bed, args, log=print) -> list[Run]:
    """The runner's entry point (``args``: sizes, rounds)."""
    return run(bed, args.sizes, args.rounds, [t for t in ALL_TOOLS if t in args.tools], log=log)


if __name__ == "__main__":
    import argparse

    from hosts import BenchHosts

    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--sizes", default="10 100")
    cli.add_argument("--rounds", type=int, default=1)
    cli.add_argument("--tools", default=",".join(TOOLS))
    args = cli.parse_args()
    sizes = [int(s) for s in args.sizes.split()]
    with BenchHosts(max(sizes)) as bed:
        run(bed, sizes, args.rounds, args.tools.split(","))

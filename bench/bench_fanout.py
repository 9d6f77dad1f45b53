#!/usr/bin/env python3
"""The library path: many SshJobs over many nodes behind one gateway; jobs/s and CPU per job.

``make bench`` runs 1000 jobs over 250 nodes (4 per node) behind one gateway, with this project
and with apssh 0.27 (same API), each in its own process: the worker (``--worker``) builds the
scheduler and runs it; the harness measures the process (wall, CPU, peak RSS) and samples the
established SSH connections on the servers' side (/proc/net/tcp): one per node plus one for
the gateway is the target, whatever the number of jobs.

Standalone: ``python bench/bench_fanout.py [--jobs 200 --nodes 50]`` (as root; starts its hosts).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def worker(args) -> int:
    """Runs in the measured process (the project's venv or the peers' one)."""
    from asynciojobs import Scheduler

    from apssh import SshJob, SshNode

    hosts = Path(args.hosts_file).read_text().split()
    gateway = SshNode(hosts[0], username=args.user)
    nodes = [SshNode(host, username=args.user, gateway=gateway) for host in hosts[1:]]
    scheduler = Scheduler()
    jobs = [SshJob(node=nodes[index % len(nodes)], command=f"echo job {index}", scheduler=scheduler)
            for index in range(args.jobs)]
    start = time.perf_counter()
    ok = scheduler.run()
    elapsed = time.perf_counter() - start
    failures = 0
    for job in jobs:
        if job.raised_exception() is not None or job.result() != 0:
            failures += 1
    print(json.dumps({"ok": bool(ok), "run_seconds": elapsed, "failures": failures}), file=sys.stderr)
    return 0 if ok else 1


class ConnectionSampler(threading.Thread):
    """Peak number of ESTABLISHED TCP connections to port 22 on 127.0.1.0 and above (server side)."""

    def __init__(self, period: float = 0.2):
        super().__init__(daemon=True)
        self.period = period
        self.peak = 0
        self.done = threading.Event()

    @staticmethod
    def count() -> int:
        total = 0
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                local, state = fields[1], fields[3]
                # local "0101007F:0016" = 127.0.1.1:22 (little-endian hex); state 01 = ESTABLISHED
                if state == "01" and local.endswith(":0016") and local[6:8] == "7F" and local[2:4] != "00":
                    total += 1
        return total

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.count())
            self.done.wait(self.period)


def run_family(bed, args, log=print):
    from tools import APSSH027, OURS, PEERS, PROJECT_BIN, Run, measure

    nodes = getattr(args, "nodes", None) or (50 if args.quick else 250)
    jobs = getattr(args, "jobs", None) or 4 * nodes
    hosts_file = bed.hosts_file(nodes + 1)
    tools = [OURS, APSSH027]
    results = []
    for round_ in range(args.rounds):
        for tool in tools[round_ % 2:] + tools[:round_ % 2]:
            python = PROJECT_BIN / "python" if tool == OURS else PEERS / "bin" / "python"
            argv = [str(python), str(BENCH / "bench_fanout.py"), "--worker", "--hosts-file", str(hosts_file),
                    "--user", bed.user, "--jobs", str(jobs)]
            sampler = ConnectionSampler()
            sampler.start()
            got = measure(argv, env=bed.client_env(), timeout=600)
            sampler.done.set()
            sampler.join()
            report = {}
            for line in got["stderr"].splitlines():
                if line.startswith("{"):
                    report = json.loads(line)
            failures = report.get("failures", jobs)
            result = Run("library", f"{jobs} jobs / {nodes} nodes + 1 gateway", tool, round_, wall=got["wall"],
                         cpu=got["cpu"], maxrss_mb=got["maxrss_mb"], rc=got["rc"], failures=failures,
                         extra={"connections": sampler.peak, "run_seconds": report.get("run_seconds")})
            if failures or got["rc"]:
                result.error = got["stderr"][-500:]
            results.append(result)
            log(f"library {jobs} jobs {nodes} nodes {tool:12s} wall {got['wall']:6.2f}s "
                f"({jobs / got['wall']:.0f} jobs/s) cpu {got['cpu']:6.2f}s ({1000 * got['cpu'] / jobs:.1f} ms/job) "
                f"connections {sampler.peak} failures {failures}")
    return results


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    cli.add_argument("--hosts-file")
    cli.add_argument("--user")
    cli.add_argument("--jobs", type=int, default=1000)
    cli.add_argument("--nodes", type=int, default=250)
    cli.add_argument("--rounds", type=int, default=1)
    args = cli.parse_args()
    if args.worker:
        sys.exit(worker(args))
    sys.path.insert(0, str(BENCH))
    from hosts import BenchHosts

    args.quick = False
    with BenchHosts(args.nodes + 1) as bed:
        run_family(bed, args)


if __name__ == "__main__":
    main()

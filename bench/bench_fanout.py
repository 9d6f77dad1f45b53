#!/usr/bin/env python3
"""Many jobs over few connections: jobs/s, connections opened, client CPU per job.

Jobs are spread over the testbed's four nodes behind one gateway; each node's connection and
the gateway's are shared by all jobs, so the connection count stays at 5 whatever --jobs is.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from asynciojobs import Scheduler  # noqa: E402
from testbed import Testbed  # noqa: E402

from apssh import SshJob, SshNode  # noqa: E402
from apssh.formatters import Formatter  # noqa: E402


class Quiet(Formatter):
    def __init__(self):
        super().__init__()
        self.connections = 0

    def connection_made(self, hostname, username, direct):
        self.connections += 1


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--jobs", type=int, default=200)
    cli.add_argument("--window", type=int, default=50)
    args = cli.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bed = Testbed(tmp)
        os.environ["HOME"] = str(bed.home)
        with bed:
            quiet = Quiet()
            gw_host = bed.host("gw1")
            gateway = SshNode(gw_host.address, port=gw_host.port, username=bed.user, formatter=quiet,
                              known_hosts=bed.all_known_hosts)
            nodes = [SshNode(h.address, port=h.port, username=bed.user, gateway=gateway, formatter=quiet,
                             known_hosts=bed.all_known_hosts) for h in bed.nodes]
            scheduler = Scheduler(jobs_window=args.window)
            for index in range(args.jobs):
                SshJob(nodes[index % len(nodes)], command=f"echo job {index}", scheduler=scheduler)
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            ok = scheduler.run()
            elapsed = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            print(f"{args.jobs} jobs ({'ok' if ok else 'FAILED'}) in {elapsed:.2f}s = {args.jobs / elapsed:.1f} jobs/s")
            print(f"connections opened: {quiet.connections}")
            print(f"client CPU: {cpu:.2f}s = {1000 * cpu / args.jobs:.1f} ms per job")


if __name__ == "__main__":
    main()

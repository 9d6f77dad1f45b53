#!/usr/bin/env python3
"""A small scenario over real SSH, on this machine: a gateway and three nodes behind it.

It starts private OpenSSH servers on loopback addresses (the test suite's testbed), then runs
a scenario: probe every node through the gateway, run a script that writes a result file,
capture a value on one node and use it on another, pull the results back, and close.

    make demo          # or: .venv/bin/python examples/demo.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from asynciojobs import Scheduler, Sequence

from apssh import (
    Capture,
    Deferred,
    Pull,
    Run,
    RunString,
    SshJob,
    SshNode,
    TimeColonFormatter,
    Variables,
    close_ssh_in_scheduler,
    topology_dot,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from testbed import Testbed  # noqa: E402  (the private sshd launcher shared with the tests)

MEASURE = """#!/bin/sh
# write a small result file, and say where it is
mkdir -p results
echo "$(hostname) load: $(cut -d' ' -f1 /proc/loadavg) arg: $1" > results/$1.txt
echo "wrote results/$1.txt"
"""


def build_scenario(bed: Testbed, workdir: Path) -> Scheduler:
    formatter = TimeColonFormatter()
    gw_host = bed.host("gw1")
    gateway = SshNode(gw_host.address, port=gw_host.port, username=bed.user, formatter=formatter)
    nodes = [SshNode(host.address, port=host.port, username=bed.user, gateway=gateway, formatter=formatter)
             for host in bed.nodes[:3]]
    env = Variables()
    scheduler = Scheduler(label="demo")
    probes = [SshJob(node, command="echo reached $(hostname) as $(id -un)", label=f"probe {node.hostname}",
                     scheduler=scheduler) for node in nodes]
    measures = [SshJob(node, commands=[RunString(MEASURE, f"run{index}", remote_name="measure.sh"),
                                       Pull(f"results/run{index}.txt", workdir / f"{node.hostname}.txt")],
                       required=probes, label=f"measure {node.hostname}", scheduler=scheduler)
                for index, node in enumerate(nodes)]
    scheduler.add(Sequence(
        SshJob(nodes[0], command=Run("date +%s", capture=Capture("stamp", env)), label="capture a stamp"),
        SshJob(nodes[1], command=Run(Deferred("echo the stamp seen on node1 was {{ stamp | quote }}", env)),
               label="use it elsewhere"),
        required=measures))
    return scheduler


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="apssh-demo-") as tmp:
        bed = Testbed(tmp)
        os.environ["HOME"] = str(bed.home)  # a private ~/.ssh: the demo never touches yours
        with bed:
            workdir = Path(tmp) / "pulled"
            scheduler = build_scenario(bed, workdir)
            print("== topology (dot)\n" + topology_dot(scheduler))
            print("== running")
            ok = scheduler.run()
            close_ssh_in_scheduler(scheduler)
            print("== pulled files")
            for path in sorted(workdir.glob("*.txt")):
                print(f"{path.name}: {path.read_text().strip()}")
            print("== summary")
            scheduler.debrief()
            print("scenario", "succeeded" if ok else "FAILED")
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

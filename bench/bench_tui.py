#!/usr/bin/env python3
"""The app with a scenario of many jobs: start-up time and the cost of one screen update.

No connection is made: the jobs' states are changed by hand, as the runner would, to measure
what the screen costs (the target: a tick well under the 100 ms tick period, even when every
job changed at once).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from asynciojobs import AbstractJob, Scheduler

from apssh import SshJob, SshNode
from apssh.scenario import Scenario
from apssh_tui.app import ApsshTui
from apssh_tui.core.session import Session
from apssh_tui.core.states import JobState


def build(nodes: int) -> Session:
    scheduler = Scheduler()
    probes = [SshJob(SshNode(f"fit{i:04d}"), command="uname -a", label="probe", scheduler=scheduler)
              for i in range(nodes)]
    for probe in probes:
        SshJob(probe.node, command="run.sh", label="run", required=probe, scheduler=scheduler)
    return Session(Scenario("bench.py", scheduler), None)


async def measure(nodes: int) -> None:
    session = build(nodes)
    app = ApsshTui(session)
    start = time.perf_counter()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        print(f"{2 * nodes} jobs: app ready in {time.perf_counter() - start:.2f}s")
        for table in (app.jobs_table,):
            for fold in (True, False):
                table.folded_groups = set(table.groups) if fold else set()
                started = time.perf_counter()
                table.rebuild()
                print(f"  rebuild ({'folded' if fold else 'every job a row'}): {time.perf_counter() - started:.3f}s")
                for record in session.model:
                    session.model.set_state(record, JobState.DONE)
                started = time.perf_counter()
                app.tick()
                print(f"  tick with every job changed: {time.perf_counter() - started:.3f}s")
                started = time.perf_counter()
                app.tick()
                print(f"  tick with nothing changed: {time.perf_counter() - started:.4f}s")


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--nodes", type=int, default=500)
    args = cli.parse_args()
    AbstractJob._detect_support_for_unicode()
    asyncio.run(measure(args.nodes))


if __name__ == "__main__":
    main()

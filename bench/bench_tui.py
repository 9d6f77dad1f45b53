#!/usr/bin/env python3
"""The app under load: key press to screen update while many hosts stream, and memory over time.

``make bench`` (``run_family``): a scenario of 200 hosts (real sshd, the bench hosts), each job
printing 50 lines per second for 30 seconds (10,000 lines/s in all), run by the app driven by
Pilot in a separate measured process (``--stream-worker``). Every 0.5 s a key switches tabs
(``2`` output, ``1`` jobs); the latency is from the press to the first frame the app writes
that shows the new tab. RSS is sampled every 3 s.

Standalone (``python bench/bench_tui.py [--nodes 500]``): no connection; the jobs' states are
changed by hand, as the runner would, to measure what the screen costs (a tick well under the
100 ms tick period, even when every job changed at once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

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


# 5 lines every 0.1 s, for SECONDS seconds: one light process per host
STREAM = ("perl -e '$|=1; for $t (1..{ticks}) {{ print \"line $t.$_ of a streaming host\\n\" for 1..5; "
          "select(undef, undef, undef, 0.1) }}'")
KEY_PERIOD = 0.5
RSS_PERIOD = 3.0


async def stream(args) -> dict:
    """Run the streaming scenario in the app; returns latencies, line counts and RSS samples."""
    import psutil

    hosts = Path(args.hosts_file).read_text().split()
    scheduler = Scheduler()
    command = STREAM.format(ticks=int(args.seconds * 10))
    for host in hosts:
        SshJob(SshNode(host, username=args.user), command=command, label=f"stream {host}", scheduler=scheduler)
    session = Session(Scenario("bench-tui.py", scheduler), None)
    app = ApsshTui(session, autostart=True)
    process = psutil.Process()
    frames: list[tuple[float, str]] = []
    latencies: list[float] = []
    rss: list[float] = []
    async with app.run_test(size=(160, 50)) as pilot:
        from textual.widgets import TabbedContent

        tabs = app.query_one(TabbedContent)
        display = app._display

        def recording_display(screen, renderable):
            display(screen, renderable)
            frames.append((time.perf_counter(), tabs.active))
        app._display = recording_display
        started = time.perf_counter()
        next_rss = started
        keys = ["2", "1"]
        # until every job ended, or 3 x the planned time
        while session.runner.running or not any(r.state != JobState.IDLE for r in session.model):
            now = time.perf_counter()
            if now >= next_rss:
                rss.append(process.memory_info().rss / 2**20)
                next_rss += RSS_PERIOD
            if now - started > 3 * args.seconds + 60:
                break
            key = keys[len(latencies) % 2]
            wanted = "output" if key == "2" else "jobs"
            pressed = time.perf_counter()
            await pilot.press(key)
            while True:
                shown = [t for t, active in frames if t >= pressed and active == wanted]
                if shown:
                    latencies.append(shown[0] - pressed)
                    break
                if time.perf_counter() - pressed > 10:
                    latencies.append(10.0)
                    break
                await asyncio.sleep(0.002)
            frames.clear()
            await asyncio.sleep(max(0.0, KEY_PERIOD - (time.perf_counter() - pressed)))
        elapsed = time.perf_counter() - started
        rss.append(process.memory_info().rss / 2**20)
    lines = sum(stream.line_count for (job, host), stream in session.store.streams.items())
    failed = sum(1 for r in session.model if not r.is_scheduler and r.state != JobState.DONE)
    ordered = sorted(latencies)
    third = len(rss) // 3
    return {"lines": lines, "seconds": elapsed, "lines_per_s": lines / elapsed, "failures": failed,
            "keys": len(latencies), "key_median_ms": 1000 * statistics.median(ordered),
            "key_p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "key_max_ms": 1000 * ordered[-1], "rss_series": rss, "rss_start_mb": rss[0], "rss_end_mb": rss[-1],
            "rss_max_mb": max(rss), "rss_growth_mb": rss[-1] - (rss[third] if third else rss[0])}


def run_family(bed, args, log=print):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tools import OURS, PROJECT_BIN, Run
    from tools import measure as measure_run

    nodes, seconds = (50, 10) if args.quick else (200, 30)
    hosts_file = bed.hosts_file(nodes)
    results = []
    for round_ in range(1 if args.quick else min(2, args.rounds)):
        argv = [str(PROJECT_BIN / "python"), str(Path(__file__).resolve()), "--stream-worker",
                "--hosts-file", str(hosts_file), "--user", bed.user, "--seconds", str(seconds)]
        got = measure_run(argv, env=bed.client_env(), timeout=10 * seconds + 300)
        report = {}
        for line in got["stderr"].splitlines():
            if line.startswith("{"):
                report = json.loads(line)
        param = f"{nodes} hosts x {50 * nodes:,} lines/s for {seconds} s"
        result = Run("tui", param, OURS, round_, wall=got["wall"], cpu=got["cpu"], maxrss_mb=got["maxrss_mb"],
                     rc=got["rc"], failures=report.get("failures", nodes), extra=report)
        if got["rc"] or not report:
            result.error = got["stderr"][-800:]
        results.append(result)
        log(f"tui {param}: {report.get('lines', 0):,} lines ({report.get('lines_per_s', 0):,.0f}/s), key to screen "
            f"median {report.get('key_median_ms', 0):.0f} ms p99 {report.get('key_p99_ms', 0):.0f} ms, "
            f"RSS {report.get('rss_start_mb', 0):.0f} -> {report.get('rss_end_mb', 0):.0f} MB, cpu {got['cpu']:.1f}s, "
            f"failures {report.get('failures')}")
    return results


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--nodes", type=int, default=500)
    cli.add_argument("--stream-worker", action="store_true", help=argparse.SUPPRESS)
    cli.add_argument("--hosts-file")
    cli.add_argument("--user")
    cli.add_argument("--seconds", type=float, default=30)
    args = cli.parse_args()
    AbstractJob._detect_support_for_unicode()
    if args.stream_worker:
        print(json.dumps(asyncio.run(stream(args))), file=sys.stderr)
        return
    asyncio.run(measure(args.nodes))


if __name__ == "__main__":
    main()

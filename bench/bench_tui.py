#!/usr/bin/env python3
"""The app under load: key press to screen update while many hosts stream, and memory over time.

``make bench`` (``run_family``): a scenario of 200 hosts (real sshd, the bench hosts), each job
printing 50 lines per second for 30 seconds (10,000 lines/s in all), run by the app (headless,
160x50) in a separate measured process (``--stream-worker``). Every 0.15 s a key goes to the
app's driver as a terminal sends it (``keyclock.KeyClock``), in turn ``2`` (output tab), ``1``
(jobs tab), then ``down`` / ``up`` twice in the jobs table; its latency is from sending it to the
end of the frame that shows its effect, reported for tab switches, cursor moves and all keys.
Each round runs twice: with the hosts' sshd as they are, then at nice 19 (``HOST_PRIORITIES``:
on a testbed the hosts' CPU is on other machines, here 200 sshd and their commands share the
client's 2 cores).  Also: the app's CPU time per line received (over the whole run, and over the steady stream:
every host connected, before the last 5 % of the lines), frames written per second, RSS every 3 s.
``--profile FILE`` samples the stream with py-spy (collapsed stacks).

Standalone (``python bench/bench_tui.py [--nodes 500]``): no connection; the jobs' states are
changed by hand, as the runner would, to measure what the screen costs (a tick well under the
100 ms tick period, even when every job changed at once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
#: one key every KEY_PERIOD seconds at most (the next one is sent when the last one is on screen)
KEY_PERIOD = 0.15
#: the keys, in turn: a tab switch to the output and back, then cursor moves in the jobs table
KEYS = ("2", "1", "down", "up", "down", "up")
TAB_KEYS = {"1", "2"}
RSS_PERIOD = 3.0


async def stream(args) -> dict:
    """Run the streaming scenario in the app; returns latencies, line counts, CPU and RSS samples.

    Keys go to the app's driver as a terminal sends them (KeyClock): a tab switch (``2`` output,
    ``1`` jobs) and cursor moves in the jobs table, one every KEY_PERIOD, each timed to the end
    of the frame that shows it."""
    import psutil
    from keyclock import KeyClock, percentile

    hosts = Path(args.hosts_file).read_text().split()
    scheduler = Scheduler()
    command = STREAM.format(ticks=int(args.seconds * 10))
    for host in hosts:
        SshJob(SshNode(host, username=args.user), command=command, label=f"stream {host}", scheduler=scheduler)
    session = Session(Scenario("bench-tui.py", scheduler), None)
    app = ApsshTui(session, autostart=True)
    process = psutil.Process()
    latencies: dict[str, list[float]] = {"tab": [], "cursor": []}
    cpu_latencies: list[float] = []
    rss: list[float] = []
    frames = 0
    spy = None
    async with app.run_test(size=(160, 50)):
        display = app._display  # private (Textual 8.2.8): counts the frames written

        def counting_display(screen, renderable):
            nonlocal frames
            frames += 1
            display(screen, renderable)
        app._display = counting_display
        clock = KeyClock(app)
        started = time.perf_counter()
        cpu_started = time.process_time()
        if args.profile:
            spy = start_profile(args.profile, args.seconds)
        next_rss = started
        sent = 0
        # (wall, CPU, lines received): the steady stream is the part where every host is
        # connected and printing, without the connections' set-up and the last lines
        samples: list[tuple[float, float, int]] = []
        streaming = len(hosts)
        slowest: list[tuple[float, str, float, float, str]] = []  # (latency, key, sent at, CPU, connections)
        # until every job ended, or 3 x the planned time
        while session.runner.running or not any(r.state != JobState.IDLE for r in session.model):
            now = time.perf_counter()
            if now >= next_rss:
                rss.append(process.memory_info().rss / 2**20)
                next_rss += RSS_PERIOD
            if now - started > 3 * args.seconds + 60:
                break
            if len(session.store.streams) >= streaming:
                samples.append((now, time.process_time(),
                                sum(stream.line_count for stream in session.store.streams.values())))
            key = KEYS[sent % len(KEYS)]
            sent += 1
            try:
                wall, cpu = await clock.latency(key, timeout=10)
            except asyncio.TimeoutError:
                wall, cpu = 10.0, 0.0
            latencies["tab" if key in TAB_KEYS else "cursor"].append(wall)
            cpu_latencies.append(cpu)
            connecting = session.connections.connecting_meter()
            slowest.append((wall, key, now - started, cpu, connecting or "all connected"))
            await asyncio.sleep(max(0.0, KEY_PERIOD - wall))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        rss.append(process.memory_info().rss / 2**20)
    if spy is not None:
        spy.wait()
    lines = sum(stream.line_count for (job, host), stream in session.store.streams.items())
    failed = sum(1 for r in session.model if not r.is_scheduler and r.state != JobState.DONE)
    third = len(rss) // 3
    total = len(hosts) * 5 * int(args.seconds * 10)
    steady = [sample for sample in samples if sample[2] < 0.95 * total]  # before the last lines
    if len(steady) < 2:
        steady = samples[:1] * 2 if samples else [(0.0, 0.0, 0)] * 2
    (t0, cpu0, lines0), (t1, cpu1, lines1) = steady[0], steady[-1]
    every = sorted(latencies["tab"] + latencies["cursor"])
    result = {"lines": lines, "seconds": elapsed, "lines_per_s": lines / elapsed, "failures": failed,
              "app_cpu_s": cpu, "app_cpu_us_per_line": 1e6 * cpu / max(1, lines), "frames_per_s": frames / elapsed,
              "steady_seconds": t1 - t0, "steady_lines_per_s": (lines1 - lines0) / max(1e-9, t1 - t0),
              "steady_cpu_us_per_line": 1e6 * (cpu1 - cpu0) / max(1, lines1 - lines0),
              "keys": len(every), "key_median_ms": 1000 * statistics.median(every),
              "key_p99_ms": 1000 * percentile(every, 0.99), "key_max_ms": 1000 * every[-1],
              "key_cpu_median_ms": 1000 * statistics.median(cpu_latencies),
              "rss_series": rss, "rss_start_mb": rss[0], "rss_end_mb": rss[-1],
              "rss_max_mb": max(rss), "rss_growth_mb": rss[-1] - (rss[third] if third else rss[0])}
    result["slowest_keys"] = [f"{key} {1000 * wall:.0f} ms (CPU {1000 * cpu:.0f} ms) at {at:.1f} s, {connecting}"
                              for wall, key, at, cpu, connecting in sorted(slowest, reverse=True)[:5]]
    for kind, values in latencies.items():
        ordered = sorted(values)
        if ordered:
            result[f"{kind}_keys"] = len(ordered)
            result[f"{kind}_median_ms"] = 1000 * statistics.median(ordered)
            result[f"{kind}_p99_ms"] = 1000 * percentile(ordered, 0.99)
    return result


def start_profile(path: str, seconds: float):
    """py-spy sampling this process for ``seconds`` (100 Hz, GIL holder only, collapsed stacks)."""
    import subprocess

    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(os.getpid()), "--duration", str(int(seconds)),
                             "--rate", "100", "--gil", "--nonblocking", "--format", "raw", "-o", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


#: the streaming hosts' sshd (and the commands they start) at these priorities, in turn: as
#: they are (sharing the client's 2 cores at the same priority), and at nice 19, closer to a
#: testbed, whose hosts run on other machines (the storm bench's servers always run at nice 19)
HOST_PRIORITIES = (("", 0), (", hosts at nice 19", 19))


def _renice(bed, niceness: int) -> None:
    """The bench's sshd servers at ``niceness``: the connections they fork from now on inherit
    it (root only, as the bench hosts are)."""
    for server in bed.servers:
        if server.process is not None and server.process.poll() is None:
            os.setpriority(os.PRIO_PROCESS, server.process.pid, niceness)


def _stream_run(bed, hosts_file, nodes: int, seconds: int, round_: int, suffix: str, log):
    """One run of the streaming worker, measured; its Run (scenario ``tui``)."""
    from tools import OURS, PROJECT_BIN, Run
    from tools import measure as measure_run

    argv = [str(PROJECT_BIN / "python"), str(Path(__file__).resolve()), "--stream-worker",
            "--hosts-file", str(hosts_file), "--user", bed.user, "--seconds", str(seconds)]
    got = measure_run(argv, env=bed.client_env(), timeout=10 * seconds + 300)
    report = {}
    for line in got["stderr"].splitlines():
        if line.startswith("{"):
            report = json.loads(line)
    param = f"{nodes} hosts x {50 * nodes:,} lines/s for {seconds} s{suffix}"
    result = Run("tui", param, OURS, round_, wall=got["wall"], cpu=got["cpu"], maxrss_mb=got["maxrss_mb"],
                 rc=got["rc"], failures=report.get("failures", nodes), extra=report)
    if got["rc"] or not report:
        result.error = got["stderr"][-800:]
    log(f"tui {param}: {report.get('lines', 0):,} lines ({report.get('lines_per_s', 0):,.0f}/s, "
        f"{report.get('app_cpu_us_per_line', 0):.0f} us CPU per line), {report.get('keys', 0)} keys to screen "
        f"median {report.get('key_median_ms', 0):.0f} ms p99 {report.get('key_p99_ms', 0):.0f} ms (tab p99 "
        f"{report.get('tab_p99_ms', 0):.0f}, cursor p99 {report.get('cursor_p99_ms', 0):.0f}), "
        f"RSS {report.get('rss_start_mb', 0):.0f} -> {report.get('rss_end_mb', 0):.0f} MB, cpu {got['cpu']:.1f}s, "
        f"failures {report.get('failures')}")
    return result


def run_family(bed, args, log=print):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    nodes, seconds = (50, 10) if args.quick else (200, 30)
    hosts_file = bed.hosts_file(nodes)
    results = []
    for round_ in range(1 if args.quick else min(2, args.rounds)):
        for suffix, niceness in HOST_PRIORITIES:
            _renice(bed, niceness)
            try:
                results.append(_stream_run(bed, hosts_file, nodes, seconds, round_, suffix, log))
            finally:
                _renice(bed, 0)
    return results


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--nodes", type=int, default=500)
    cli.add_argument("--stream-worker", action="store_true", help=argparse.SUPPRESS)
    cli.add_argument("--hosts-file")
    cli.add_argument("--user")
    cli.add_argument("--seconds", type=float, default=30)
    cli.add_argument("--profile", help="--stream-worker: collapsed py-spy stacks of the stream go to this file")
    args = cli.parse_args()
    AbstractJob._detect_support_for_unicode()
    if args.stream_worker:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(json.dumps(asyncio.run(stream(args))), file=sys.stderr)
        return
    asyncio.run(measure(args.nodes))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The app under a connection storm: key-to-screen latency while many hosts connect at once.

Starts private sshd servers on 127.0.1.x (16 addresses per server), builds a scenario of one job
per host (``sleep``, then a line), opens the app headless (Textual's Pilot) with every job on a row
of its own (``f``; ``--folded`` keeps the one folded row), presses ``s``, and for the first
``--seconds`` presses ``down`` / ``up`` in the jobs table every 100 ms.  Latency of a key is the
time from sending it to the end of the screen refresh that follows its action (see KeyClock).
It then presses ``a`` and measures how long until every running job in view shows ``aborted``
and the status line says so (abort on screen), and how long until the run has stopped.

    .venv/bin/python bench/bench_tui_storm.py [--hosts 100] [--seconds 10]

The sshd servers run with ``nice 19``: on a real testbed their CPU is on other machines, here
they share the client's cores.  Prints the median and p99 latency, the worst one, the client's
CPU time, the connecting meter seen on the summary line, and the abort times.

``--profile FILE`` samples the app's process with py-spy (installed in the venv:
``pip install py-spy``) during the storm window only (after ``s``, for ``--seconds``), as
collapsed stacks (``--format raw``); ``--top`` prints the functions that took the most of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from asynciojobs import Scheduler  # noqa: E402
from keyclock import KeyClock, percentile  # noqa: E402
from testbed import SSHD, Testbed  # noqa: E402

from apssh import SshJob, SshNode  # noqa: E402
from apssh.scenario import Scenario  # noqa: E402
from apssh_tui.app import ApsshTui  # noqa: E402
from apssh_tui.core.connections import HANDSHAKES_AT_ONCE  # noqa: E402
from apssh_tui.core.jobs_bridge import prime_unicode_detection  # noqa: E402
from apssh_tui.core.session import Session  # noqa: E402
from apssh_tui.core.states import JobState  # noqa: E402

ADDRESSES_PER_SERVER = 16


def start_servers(bed: Testbed, hosts: int, base: Path) -> tuple[list[tuple[str, int]], Path, list]:
    """sshd servers for ``hosts`` addresses 127.0.1.1...; returns (address, port) pairs, a known_hosts
    file, and the server processes.  They reuse the testbed's node1 host key and authorized keys."""
    template = bed.host("node1").config_path.read_text()
    key_line = bed.host("node1").known_hosts_entry.split(" ", 1)[1]
    endpoints, processes = [], []
    for server in range((hosts + ADDRESSES_PER_SERVER - 1) // ADDRESSES_PER_SERVER):
        port = 30000 + (os.getpid() % 1000) * 10 + server
        addresses = [f"127.0.1.{server * ADDRESSES_PER_SERVER + index + 1}"
                     for index in range(min(ADDRESSES_PER_SERVER, hosts - server * ADDRESSES_PER_SERVER))]
        lines = [line for line in template.splitlines()
                 if not line.startswith(("ListenAddress", "PidFile", "LogLevel"))]
        lines += [f"ListenAddress {address}:{port}" for address in addresses]
        lines += [f"PidFile {base}/storm-{server}.pid", "LogLevel ERROR"]
        config = base / f"storm-{server}.conf"
        config.write_text("\n".join(lines) + "\n")
        # niced: on a real testbed the servers' CPU is elsewhere; here they share the client's two cores
        processes.append(subprocess.Popen(["nice", "-n", "19", SSHD, "-D", "-f", str(config),
                                           "-E", str(base / f"storm-{server}.log")],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        endpoints += [(address, port) for address in addresses]
    known_hosts = base / "storm_known_hosts"
    known_hosts.write_text("".join(f"[{address}]:{port} {key_line}\n" for address, port in endpoints))
    return endpoints, known_hosts, processes


def wait_listening(endpoints, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    for address, port in endpoints:
        while True:
            try:
                socket.create_connection((address, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sshd on {address}:{port} did not start") from None
                time.sleep(0.05)


def start_profile(path: str, seconds: float) -> subprocess.Popen:
    """py-spy sampling this process for ``seconds`` (100 Hz, GIL holder only, collapsed stacks)."""
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(os.getpid()), "--duration", str(int(seconds)),
                             "--rate", "100", "--gil", "--nonblocking", "--format", "raw", "-o", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_functions(path: str, count: int = 25) -> list[tuple[float, str]]:
    """(share of samples, function) where the samples of ``path`` (collapsed stacks) spent
    their time, inclusive, most first."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        total += int(samples)
        names = set()
        for frame in stack.split(";"):
            function, _, where = frame.rpartition(" (")
            names.add(f"{function} ({where.split('/')[-1].split(':')[0]})" if function else frame)
        for name in names:
            inclusive[name] = inclusive.get(name, 0) + int(samples)
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])
    return [(samples / total, name) for name, samples in ranked[:count]]


class LoopIterations:
    """The CPU time of each event loop iteration (the ready callbacks it runs, one after the
    other; the wait in select() is not counted): a key waits for at least the iteration under
    way, whatever the machine's load."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.times: list[float] | None = None
        run_once = loop._run_once

        def timed_run_once():
            times = self.times
            if times is None:
                return run_once()
            cpu = time.thread_time()
            try:
                return run_once()
            finally:
                times.append(time.thread_time() - cpu)
        loop._run_once = timed_run_once

    def start(self) -> None:
        self.times = []

    def stop(self) -> list[float]:
        times, self.times = self.times, None
        return times


async def measure(session: Session, seconds: float, profile: str | None = None, folded: bool = False,
                  handshakes: int | None = HANDSHAKES_AT_ONCE) -> dict:
    app = ApsshTui(session, handshakes=handshakes)
    latencies, cpu_latencies, meters, when = [], [], [], []
    result = {}

    iterations = LoopIterations(asyncio.get_running_loop())
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.2)
        if not folded:  # the keys move the cursor over every job's row
            await pilot.press("f")
            await pilot.pause(0.2)
        clock = KeyClock(app)
        baseline = []  # the same keys before the run: what the machine's load alone costs
        start = time.perf_counter()
        while time.perf_counter() - start < 3:
            baseline.append((await clock.latency("down" if len(baseline) % 2 == 0 else "up"))[0])
            await asyncio.sleep(0.1)
        result["baseline"] = baseline
        clock.send("s")
        iterations.start()
        spy = start_profile(profile, seconds) if profile else None
        start = time.perf_counter()
        cpu_start = time.process_time()
        key = "down"
        while time.perf_counter() - start < seconds:
            sent = time.perf_counter()
            wall, cpu = await clock.latency(key)
            latencies.append(wall)
            when.append((wall, sent - start))
            cpu_latencies.append(cpu)
            key = "up" if key == "down" else "down"
            meter = session.connections.connecting_meter()
            if meter:
                meters.append(meter)
            await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - sent)))
        result["client cpu"] = time.process_time() - cpu_start
        result["iterations"] = iterations.stop()
        result["window"] = time.perf_counter() - start
        result["connected"] = session.connections.connecting_meter() or "all settled"
        running = [record.key for record in session.model if record.state == JobState.RUNNING]
        result["running at abort"] = len(running)
        sent = time.perf_counter()
        clock.send("a")
        # what the screen shows: the rows in view (and the status line)
        in_view = app.jobs_table.rows_in_view()
        shown = [key for key in running if app.jobs_table._row_of(key) in in_view]
        while not all(table_state(app, key) == "aborted" for key in shown) or "aborted by user" not in \
                str(app.summary.render()):
            await asyncio.sleep(0.005)
        result["abort on screen"] = time.perf_counter() - sent
        while session.runner.running:
            await asyncio.sleep(0.05)
        result["abort complete"] = time.perf_counter() - sent
    if spy is not None:
        spy.wait()
    result["latencies"] = latencies
    result["cpu latencies"] = cpu_latencies
    result["slowest"] = sorted(when, reverse=True)[:3]
    result["meters"] = meters
    return result


def table_state(app: ApsshTui, key: str) -> str:
    """The state the jobs table shows for job ``key`` (its folded group's, when folded)."""
    table = app.jobs_table
    row = key if key in table._depths else table.group_of[key].key
    return str(table.get_cell(row, "state"))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--hosts", type=int, default=100)
    cli.add_argument("--seconds", type=float, default=10.0)
    cli.add_argument("--sleep", type=float, default=30.0, help="how long each remote job sleeps")
    cli.add_argument("--folded", action="store_true",
                     help="leave the sibling group folded (one row); by default every job has its row")
    cli.add_argument("--handshakes", type=int, default=HANDSHAKES_AT_ONCE,
                     help=f"connections set up at once (default {HANDSHAKES_AT_ONCE}, the app's; 0: no limit)")
    cli.add_argument("--profile", help="collapsed py-spy stacks of the storm window go to this file")
    cli.add_argument("--top", type=int, default=0, help="with --profile: print this many top functions")
    args = cli.parse_args()
    prime_unicode_detection()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    with tempfile.TemporaryDirectory() as tmp:
        bed = Testbed(tmp)
        os.environ["HOME"] = str(bed.home)
        with bed:
            endpoints, known_hosts, processes = start_servers(bed, args.hosts, Path(tmp))
            try:
                wait_listening(endpoints)
                scheduler = Scheduler(timeout=120)
                jobs = {}
                for index, (address, port) in enumerate(endpoints, 1):
                    node = SshNode(address, port=port, username=bed.user, known_hosts=str(known_hosts))
                    jobs[f"probe-{index:03d}"] = SshJob(node, command=f"sleep {args.sleep}; echo done",
                                                        label="probe", scheduler=scheduler, critical=False)
                session = Session(Scenario(Path("storm.py"), scheduler, jobs=jobs), None)
                result = asyncio.run(measure(session, args.seconds, args.profile, args.folded,
                                             args.handshakes or None))
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(timeout=10)
    latencies = sorted(result["latencies"])
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"handshakes at once: {args.handshakes or 'no limit'}; jobs table "
          f"{'folded (one row)' if args.folded else 'unfolded (one row per job)'}")
    print(f"{args.hosts} hosts, first {args.seconds:g} s after 's': {len(latencies)} keys, "
          f"key to screen median {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    print("  slowest keys: " + ", ".join(f"{wall * 1000:.0f} ms sent {at:.1f} s after 's'"
                                         for wall, at in result["slowest"]))
    cpu_latencies = sorted(result["cpu latencies"])
    print(f"  CPU time of the app before each key reached the screen: median "
          f"{statistics.median(cpu_latencies) * 1000:.0f} ms, p99 "
          f"{cpu_latencies[min(len(cpu_latencies) - 1, int(0.99 * len(cpu_latencies)))] * 1000:.0f} ms, "
          f"max {cpu_latencies[-1] * 1000:.0f} ms")
    iterations = sorted(result["iterations"])
    print(f"  event loop iterations: {len(iterations)}, CPU time p99 {percentile(iterations, 0.99) * 1000:.0f} ms, "
          f"p99.9 {percentile(iterations, 0.999) * 1000:.0f} ms, max {iterations[-1] * 1000:.0f} ms; "
          f"over 50 ms: {sum(t > 0.05 for t in iterations)}")
    baseline = sorted(result["baseline"])
    print(f"before 's' (no connection): {len(baseline)} keys, median {statistics.median(baseline) * 1000:.0f} ms, "
          f"max {baseline[-1] * 1000:.0f} ms")
    print(f"client CPU during the window: {result['client cpu']:.1f} s of {result['window']:.1f} s; "
          f"at its end: {result['connected']}")
    meters = result["meters"]
    print(f"connecting meter seen {len(meters)} times: {meters[0] if meters else '-'} ... "
          f"{meters[-1] if meters else '-'}")
    print(f"abort with {result['running at abort']} jobs running: on screen in "
          f"{result['abort on screen'] * 1000:.0f} ms, run stopped in {result['abort complete']:.2f} s")
    print(f"load average at the end (2-core machine shared with other work): {os.getloadavg()[0]:.1f}")
    if args.profile and args.top:
        print(f"top functions of the storm window (inclusive share of samples holding the GIL, {args.profile}):")
        for share, name in top_functions(args.profile, args.top):
            print(f"  {share * 100:5.1f} %  {name}")


if __name__ == "__main__":
    main()

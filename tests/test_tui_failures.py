"""Failures first: the Failures view (key 6), causes in the details pane, and why a run stopped.

Driven with Textual's Pilot against the real testbed sshd.
"""

from __future__ import annotations

from asynciojobs import AbstractJob, Scheduler
from helpers import free_port
from tui_support import drive, node, session_of, ticked, until

from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.states import JobState
from apssh_tui.widgets.jobs import CELL_PADDING

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding

NOT_MOUNTED = 'if [ "$APSSH_TESTBED_HOST" = node2 ] || [ "$APSSH_TESTBED_HOST" = node4 ]; then ' \
              'echo "checking /data"; echo "/data not mounted" >&2; exit 2; fi; echo ok'


async def run_to_end(pilot) -> None:
    app = pilot.app
    await pilot.press("s")
    assert await until(lambda: app.last_result is not None and not app.session.runner.running, pilot=pilot)
    await ticked(pilot, 3)


def probe_session(testbed):
    """'probe' on node1-4 (node2 and node4 print '/data not mounted' on stderr and exit 2), and on a
    host where nothing listens; all non-critical."""
    nodes = {name: node(testbed, name) for name in ("node1", "node2", "node3", "node4")}
    jobs = {f"probe-{name}": SshJob(item, command=NOT_MOUNTED, label="probe", critical=False)
            for name, item in nodes.items()}
    jobs["probe-ghost"] = SshJob(node(testbed, "node3", port=free_port("127.0.0.13")), command="echo never",
                                 label="probe", critical=False)
    return session_of(Scheduler(*jobs.values(), timeout=30), jobs)


def test_failures_view_gathers_hosts_by_cause(testbed, arun):
    """'6' lists the failed hosts once per cause, the hosts folded: the stderr line with the exit code,
    and the connection error of the unreachable host."""
    app = ApsshTui(probe_session(testbed))
    seen = {}

    async def body(pilot):
        await run_to_end(pilot)
        await pilot.press("6")
        assert await until(lambda: len(app.failures.failure_groups) == 2, pilot=pilot)
        seen["lines"] = app.failures.lines()
        seen["states"] = [group.state for group in app.failures.failure_groups]
        seen["focused"] = app.focused is app.failures
        await pilot.press("enter")
        await ticked(pilot)
        seen["tab"] = app.query_one("#tabs").active
        seen["selected"] = app.jobs_table.selected_keys()

    drive(arun, app, body)

    assert seen["lines"][0] == "127.0.0.[12,14]  probe: /data not mounted (exit 2)"
    assert seen["lines"][1].startswith(f"127.0.0.13  probe: {testbed.user}@127.0.0.13:")
    assert seen["lines"][1].endswith("connection refused")
    assert seen["states"] == [JobState.FAILED, JobState.UNREACHABLE]
    assert seen["focused"]
    assert seen["tab"] == "jobs" and seen["selected"] == ["probe-node2"]


def test_details_show_the_stderr_line_next_to_the_exit_code(testbed, arun):
    """The details of a failed job show its last stderr line beside its exit code."""
    app = ApsshTui(probe_session(testbed))
    seen = {}

    async def body(pilot):
        await run_to_end(pilot)
        app.jobs_table.select("probe-node4")
        await ticked(pilot)
        seen["details"] = str(app.details.render())

    drive(arun, app, body)

    assert "result    2  /data not mounted\n" in seen["details"]


def chain_session(testbed, command: str, timeout: float = 30):
    """'setup' on node2 running ``command`` (critical), then 'deploy' after it on node1."""
    setup = SshJob(node(testbed, "node2"), command=command, label="setup")
    deploy = SshJob(node(testbed, "node1"), command="echo deploy", label="deploy", required=setup)
    return session_of(Scheduler(setup, deploy, timeout=timeout), {"setup": setup, "deploy": deploy})


def test_status_line_names_the_critical_job_that_stopped_the_run(testbed, arun):
    """A critical job's failure stops the run: the status line names the job, its host and its cause;
    the job that needed it is 'skipped', not 'idle'."""
    app = ApsshTui(chain_session(testbed, 'echo "disk full" >&2; exit 3'))
    seen = {}

    async def body(pilot):
        await run_to_end(pilot)
        seen["summary"] = str(app.summary.render())
        seen["deploy"] = str(app.jobs_table.get_cell("deploy", "state"))

    drive(arun, app, body)

    assert seen["summary"] == ("done 0 / failed 1 / skipped 1 / running 0 / total 2  -  run: stopped: critical job "
                               "setup failed on host 127.0.0.12: disk full (exit 3)")
    assert seen["deploy"] == "skipped"
    assert app.session.model["deploy"].error == "skipped: setup failed"


def test_status_line_says_aborted_by_user_and_counts_aborted_apart(testbed, arun):
    """'a' shows 'aborted by user' at once; the summary counts the aborted job apart from failures."""
    app = ApsshTui(chain_session(testbed, "sleep 47.7"))
    seen = {}

    async def body(pilot):
        await pilot.press("s")
        assert await until(lambda: bool(testbed.remote_processes("sleep 47.7")), pilot=pilot)
        await pilot.press("a")
        seen["at once"] = (app.session.model["setup"].state, str(app.summary.render()))
        assert await until(lambda: app.last_result is not None and not app.session.runner.running, pilot=pilot)
        await ticked(pilot)
        seen["summary"] = str(app.summary.render())

    drive(arun, app, body)

    state, summary = seen["at once"]
    assert state == JobState.ABORTED and "aborted by user" in summary
    assert seen["summary"] == "done 0 / failed 0 / aborted 1 / running 0 / total 2  -  run: aborted by user"


def test_scheduler_timeout_reaches_the_status_line(testbed, arun):
    """A scheduler timeout ends the run with 'stopped: scheduler timeout' in the status line."""
    app = ApsshTui(chain_session(testbed, "sleep 48.8", timeout=1))
    seen = {}

    async def body(pilot):
        await run_to_end(pilot)
        seen["summary"] = str(app.summary.render())

    drive(arun, app, body)

    assert seen["summary"].endswith("run: stopped: scheduler timeout (1 s)")
    assert app.session.model["setup"].state == JobState.TIMED_OUT


def test_folded_row_shows_its_counts_in_full(testbed, arun):
    """A folded group's counts ('1 failed, 5 done') widen their column as they grow: never cut."""
    nodes = [node(testbed, name) for name in ("node1", "node2", "node3", "node4")]
    jobs = {f"probe-{i}": SshJob(nodes[i % 4], command='test "$APSSH_TESTBED_HOST" != node3', label="probe",
                                 critical=False) for i in range(6)}
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=30), jobs))
    seen = {}

    async def body(pilot):
        table = app.jobs_table
        seen["before"] = str(table.get_cell("group:probe-0", "label"))
        await run_to_end(pilot)
        seen["after"] = str(table.get_cell("group:probe-0", "label"))

        def label_width() -> int:
            return dict(table.column_widths())["label"] - 2 * CELL_PADDING
        # the column widens when the row is drawn again
        await until(lambda: label_width() >= len(seen["after"]), pilot=pilot)
        seen["width"] = label_width()

    drive(arun, app, body)

    assert seen["before"] == "6 idle"
    assert seen["after"] == "1 failed, 5 done"
    assert seen["width"] >= len(seen["after"])


def test_summary_shows_the_connecting_meter_while_connections_open(testbed, arun):
    """While a host has not answered yet, the summary says 'connecting 1/2' (one settled of two);
    abort shows on the jobs at once."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.11", 0))
    silent.listen(8)  # accepts TCP in the kernel, never says a word: the SSH banner never comes
    try:
        mute = SshJob(node(testbed, "node1", port=silent.getsockname()[1]), command="echo never", label="mute",
                      critical=False)
        slow = SshJob(node(testbed, "node2"), command="sleep 49.9", label="slow", critical=False)
        app = ApsshTui(session_of(Scheduler(mute, slow, timeout=60), {"mute": mute, "slow": slow}))
        seen = {}

        async def body(pilot):
            await pilot.press("s")
            assert await until(lambda: "connecting 1/2" in str(app.summary.render()), pilot=pilot)
            seen["during"] = str(app.summary.render())
            await pilot.press("a")
            seen["states at once"] = {key: app.session.model[key].state for key in ("mute", "slow")}
            # stopping the remote command and the pending connection takes a while: the screen does not wait
            assert await until(lambda: app.last_result is not None and not app.session.runner.running, pilot=pilot,
                               timeout=70)
            await ticked(pilot)
            seen["after"] = str(app.summary.render())

        drive(arun, app, body)
    finally:
        silent.close()

    assert seen["during"].startswith("done 0 / failed 0 / running 2 / total 2  -  connecting 1/2  -  ")
    assert seen["states at once"] == {"mute": JobState.ABORTED, "slow": JobState.ABORTED}
    assert seen["after"].endswith("run: aborted by user")


def test_a_non_critical_job_whose_connection_dies_is_unreachable_with_its_cause(testbed, arun):
    """The host side of a non-critical job's session dies under its command: the job is unreachable,
    and the jobs table, the details and the Failures view say "connection lost", not "exit code 255"."""
    import signal

    from faults.support import session_tree, signal_all

    token = "61.37"
    jobs = {"long": SshJob(node(testbed, "node1"), command=f"echo started; sleep {token}", label="long",
                           critical=False),
            "other": SshJob(node(testbed, "node2"), command="echo fine", label="other")}
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=60), jobs))
    seen = {}

    async def body(pilot):
        await pilot.press("s")
        assert await until(lambda: len(testbed.remote_processes(f"sleep {token}")) == 1, timeout=60, pilot=pilot)
        dying = session_tree(testbed, f"sleep {token}")
        signal_all(dying, signal.SIGSTOP)  # the host's side dies at once: no exit status is sent
        signal_all(dying, signal.SIGKILL)
        assert await until(lambda: app.last_result is not None and not app.session.runner.running, timeout=60,
                           pilot=pilot)
        app.jobs_table.select("long")
        await ticked(pilot, 3)
        seen["state"] = str(app.jobs_table.get_cell("long", "state"))
        seen["details"] = str(app.details.render())
        await pilot.press("6")
        assert await until(lambda: app.failures.failure_groups, pilot=pilot)
        seen["failures"] = app.failures.lines()

    try:
        drive(arun, app, body)
    finally:
        for process in testbed.remote_processes(f"sleep {token}"):
            process.kill()

    record = app.session.model["long"]
    assert record.state == JobState.UNREACHABLE and record.result is None
    assert "connection lost" in record.error and "255" not in record.error
    assert seen["state"].endswith("unreachable")
    assert "connection lost" in seen["details"] and "255" not in seen["details"]
    assert seen["failures"] == [f"127.0.0.11  long: {record.error}"]

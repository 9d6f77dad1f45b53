"""The apssh-tui application driven from the keyboard with Textual's Pilot, against the real testbed.

Most tests load tests/scenarios/tui.yaml.j2: a gateway (gw1), three nodes behind it running a
'probe' whose output differs on node3, a non-critical 'check' that fails until tmp_path/flag
exists, and a 'report' after it.  Snapshot tests compare ``app.export_screenshot()`` with the
SVG files in tests/snapshots/ (written when APSSH_UPDATE_SNAPSHOTS=1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from asynciojobs import AbstractJob, Scheduler
from testbed import wait_for
from textual.scrollbar import ScrollBar
from tui_support import (
    drive,
    node,
    remove_service_leftovers,
    service_app,
    session_of,
    start_service,
    ticked,
    tui_session,
    until,
)

from apssh.service import Service
from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.replay import ReplaySession
from apssh_tui.core.states import JobState
from apssh_tui.widgets import scrollbars
from apssh_tui.widgets.confirm import ConfirmScreen
from apssh_tui.widgets.help import HelpScreen

SNAPSHOT_SIZE = (120, 36)
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_SNAPSHOTS = os.environ.get("APSSH_UPDATE_SNAPSHOTS") == "1"

# asynciojobs reads sys.stdout.encoding, which Textual's stdout lacks: ask before any app runs
AbstractJob._detect_support_for_unicode()


async def run_finished(pilot) -> bool:
    """Wait until the app's run workers are over and the jobs table shows the model's states."""
    app = pilot.app
    done = await until(lambda: not app.session.runner.running
                       and all(worker.is_finished for worker in app.workers), pilot=pilot)
    await ticked(pilot, 3)  # a tick or two: the table catches up
    return done


async def press_and_finish(pilot, *keys) -> bool:
    """Press ``keys``, wait for the run they started to begin, then for it to end."""
    await pilot.press(*keys)
    await until(lambda: pilot.app.session.runner.running or pilot.app.last_result is not None, pilot=pilot)
    return await run_finished(pilot)


def table_states(app: ApsshTui) -> dict[str, str]:
    """What the jobs table shows in its state column, by job key."""
    table = app.jobs_table
    return {record.key: str(table.get_cell(record.key, "state")) for record in table.visible_records()}


def table_attempts(app: ApsshTui) -> dict[str, str]:
    table = app.jobs_table
    return {record.key: str(table.get_cell(record.key, "tries")) for record in table.visible_records()}


def log_lines(app: ApsshTui) -> list[str]:
    return list(app.output.log_widget.lines)


PROBE = 'echo "kernel $(uname -s)"; echo "shell ok"; if [ "$APSSH_TESTBED_HOST" = node3 ]; then echo "odd one out"; fi'


def light_session(testbed, tmp_path):
    """One layer, direct nodes: the tui scenario's probe on node1-3, and a failing 'verify' on node2."""
    nodes = {name: node(testbed, name) for name in ("node1", "node2", "node3")}
    jobs = {f"probe-{name}": SshJob(nodes[name], command=PROBE, label="probe") for name in nodes}
    jobs["verify"] = SshJob(nodes["node2"], command=f"test -f {tmp_path / 'flag'}", label="verify flag",
                            critical=False)
    return session_of(Scheduler(*jobs.values(), timeout=30), jobs)


FIRST_RUN = {"probe-node1": "done", "probe-node2": "done", "probe-node3": "done", "check": "failed",
             "report": "done"}


# ---------------------------------------------------------------- running from the keyboard
def test_start_key_runs_the_scenario_and_the_table_follows(testbed, arun, tmp_path):
    """'s' starts the run: the table shows jobs running, then their final states, and the summary counts."""
    hold = tmp_path / "hold"  # the probes wait for it: the run cannot end before the table is read
    app = ApsshTui(tui_session(testbed, tmp_path, hold=hold))
    seen_running = []

    async def body(pilot):
        assert set(table_states(app).values()) == {"idle"}
        await pilot.press("s")
        assert await until(lambda: "running" in table_states(app).values(), pilot=pilot)
        seen_running.extend(key for key, state in table_states(app).items() if state == "running")
        hold.touch()
        assert await run_finished(pilot)

    drive(arun, app, body)

    assert seen_running and set(seen_running) <= set(FIRST_RUN)
    assert table_states(app) == FIRST_RUN
    assert {r.key: r.state.value for r in app.session.model} == FIRST_RUN
    assert str(app.summary.render()) == ("done 4 / failed 1 / running 0 / total 5"
                                         "  -  run: FAILED (r re-runs failed jobs)")


def test_hidden_jobs_table_waits_for_its_tab_to_show_the_states(testbed, arun, tmp_path):
    """While the output tab is shown, jobs changing state do not redraw the jobs table (a hidden tab
    costs nothing); back on the jobs tab, its rows are painted with the states the jobs ended in."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    def painted() -> str:
        """The table's part of the screen, as its compositor paints it (Textual 8.2.8, private)."""
        table = app.jobs_table
        region = table.content_region
        screen = app.screen._compositor.render_strips()
        return "\n".join(screen[y].crop(region.x, region.right).text for y in range(region.y, region.bottom))

    async def body(pilot):
        await pilot.press("2")
        await ticked(pilot)
        redraws = app.jobs_table.redraws
        assert await press_and_finish(pilot, "s")
        seen["redraws while hidden"] = app.jobs_table.redraws - redraws
        await pilot.press("1")
        await ticked(pilot, 1)
        seen["painted"] = painted()

    drive(arun, app, body)

    assert seen["redraws while hidden"] == 0
    rows = {line.split()[1]: line for line in seen["painted"].splitlines()[1:] if line.split()[1:2]}
    assert {key: next(state for state in ("done", "failed", "idle", "running") if state in rows[key])
            for key in FIRST_RUN} == FIRST_RUN


def test_a_tab_switch_back_to_the_jobs_table_draws_no_unchanged_row_again(testbed, arun, tmp_path):
    """The table's drawing of each focus state is kept over tab switches (its focus changes each
    time): rows that did not change are not drawn again; a theme change draws them anew."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        table = app.jobs_table
        await ticked(pilot)
        keys = [key for key in table._rows[1:4] if table.drawn(key) is not None]
        before = {key: table.drawn(key) for key in keys}
        for tab in ("2", "1", "2", "1"):
            await pilot.press(tab)
            await ticked(pilot, 1)
        seen["kept"] = {key: table.drawn(key) is before[key] for key in keys}
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await ticked(pilot, 1)
        seen["after a theme change"] = {key: table.drawn(key) is before[key] for key in keys}

    drive(arun, app, body)

    assert len(seen["kept"]) == 3 and all(seen["kept"].values())
    assert not any(seen["after a theme change"].values())


def test_a_kept_scrollbar_drawing_is_reused_and_always_what_textual_draws_now(testbed, arun, monkeypatch):
    """The jobs table's scrollbar (60 jobs) is not drawn again by tab switches (each changes the
    focus and so applies the styles again); what is shown after switches, a scroll and a theme
    change is what Textual draws for the bar at that moment."""
    jobs = {f"job{i:02d}": SshJob(node(testbed, "node1"), command="true", label=f"job{i:02d}") for i in range(60)}
    app = ApsshTui(session_of(Scheduler(*jobs.values()), jobs))
    drawn = []
    render = ScrollBar.render

    def counted(bar):
        drawn.append(bar)
        return render(bar)
    monkeypatch.setattr(ScrollBar, "render", counted)
    original = scrollbars._original_render_lines
    seen = {"same as textual": []}

    async def body(pilot):
        bar = app.jobs_table.vertical_scrollbar

        def same_as_textual() -> bool:
            kept = bar.render_lines(bar.size.region)
            return [list(line) for line in kept] == [list(line) for line in original(bar, bar.size.region)]
        await ticked(pilot)
        seen["shown"] = bar.display
        before = drawn.count(bar)
        for tab in ("2", "1", "2", "1"):
            await pilot.press(tab)
            await ticked(pilot, 1)
        seen["drawn by tab switches"] = drawn.count(bar) - before
        seen["same as textual"].append(same_as_textual())
        await pilot.press("end")
        await ticked(pilot, 1)
        seen["same as textual"].append(same_as_textual())
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await ticked(pilot, 1)
        seen["same as textual"].append(same_as_textual())

    drive(arun, app, body)

    assert seen["shown"]
    assert seen["drawn by tab switches"] == 0
    assert seen["same as textual"] == [True, True, True]


def test_abort_key_stops_the_remote_command(testbed, arun, tmp_path):
    """'a' mid-run stops the remote command, marks the job aborted and ends the run."""
    slow = SshJob(node(testbed, "node1"), command="sleep 51.1")
    after = SshJob(node(testbed, "node1"), command="echo never", required=slow)
    app = ApsshTui(session_of(Scheduler(slow, after, timeout=30), {"slow": slow, "after": after}))

    async def body(pilot):
        assert app.check_action("abort", ()) is None  # nothing to abort yet
        await pilot.press("s")
        assert await until(lambda: bool(testbed.remote_processes("sleep 51.1")), pilot=pilot)
        assert app.check_action("start", ()) is None  # no second start while running
        await pilot.press("a")
        assert await run_finished(pilot)

    drive(arun, app, body)

    assert table_states(app) == {"slow": "aborted", "after": "idle"}
    assert wait_for(lambda: testbed.remote_processes("sleep 51.1") == [])


def test_abort_job_key_stops_the_selected_job(testbed, arun):
    """'x' stops the selected running job only; the other job completes."""
    slow = SshJob(node(testbed, "node1"), command="sleep 52.2", critical=False, label="a slow one")
    other = SshJob(node(testbed, "node2"), command="sleep 0.8; echo other", label="b other")
    app = ApsshTui(session_of(Scheduler(slow, other, timeout=30), {"slow": slow, "other": other}))

    async def body(pilot):
        await pilot.press("s")
        assert await until(lambda: bool(testbed.remote_processes("sleep 52.2")), pilot=pilot)
        assert app.selected() == "slow"
        await pilot.press("x")
        assert await run_finished(pilot)

    drive(arun, app, body)

    assert table_states(app) == {"slow": "aborted", "other": "done"}
    assert wait_for(lambda: testbed.remote_processes("sleep 52.2") == [])


def test_rerun_failed_key_runs_only_the_failed_part(testbed, arun, tmp_path):
    """After fixing the cause, 'r' re-runs the failed job and its downstream only (attempts show it)."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    ran_again = []

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        assert table_states(app) == FIRST_RUN
        (tmp_path / "flag").touch()  # fix the failing condition
        app.session.model.subscribe(
            lambda record: ran_again.append(record.key) if record.state == JobState.RUNNING else None)
        app.last_result = None
        assert await press_and_finish(pilot, "r")

    drive(arun, app, body)

    assert sorted(ran_again) == ["check", "report"]
    assert set(table_states(app).values()) == {"done"}
    assert table_attempts(app) == {"probe-node1": "1", "probe-node2": "1", "probe-node3": "1",
                                   "check": "2", "report": "2"}
    assert "total 5" in str(app.summary.render()) and "succeeded" in str(app.summary.render())


def test_rerun_job_key_reruns_the_selected_job_and_downstream(testbed, arun, tmp_path):
    """'R' re-runs the highlighted job and what depends on it, nothing else."""
    app = ApsshTui(tui_session(testbed, tmp_path))

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("down", "down")
        assert app.selected() == "probe-node3"
        app.last_result = None
        assert await press_and_finish(pilot, "R")

    drive(arun, app, body)

    assert table_attempts(app) == {"probe-node1": "1", "probe-node2": "1", "probe-node3": "2",
                                   "check": "2", "report": "2"}


def test_rerun_job_only_key_reruns_the_selected_job_alone(testbed, arun):
    """'J' re-runs the highlighted job without its downstream."""
    first = SshJob(node(testbed, "node1"), command="echo first", label="a first")
    second = SshJob(node(testbed, "node2"), command="echo second", label="b second", required=first)
    app = ApsshTui(session_of(Scheduler(first, second, timeout=30), {"first": first, "second": second}))

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        assert app.selected() == "first"
        app.last_result = None
        assert await press_and_finish(pilot, "J")

    drive(arun, app, body)

    assert table_attempts(app) == {"first": "2", "second": "1"}
    assert set(table_states(app).values()) == {"done"}


# ---------------------------------------------------------------- navigation and output
def test_next_failed_key_selects_the_failed_job(testbed, arun, tmp_path):
    """'n' moves the cursor to the failed job, whose details show its error."""
    app = ApsshTui(light_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        assert app.selected() == "probe-node1"
        await pilot.press("n")
        await ticked(pilot)
        seen["tab"] = app.tabs.active

    drive(arun, app, body)

    assert app.selected() == "verify"
    assert seen["tab"] == "jobs"
    details = str(app.details.render())
    assert details.startswith("verify: verify flag") and "exit code 1" in details


def test_a_click_on_a_tab_title_shows_its_pane_and_focuses_it(testbed, arun, tmp_path):
    """The tab bar: a click on 'Topology' shows the topology pane (the others hidden) and focuses
    its tree; a click on 'Jobs' comes back to the jobs table."""
    app = ApsshTui(light_session(testbed, tmp_path))
    seen = {}

    def title_offset(title: str) -> tuple[int, int]:
        line = app.tabs.render().plain
        return line.index(title) + 1, 0

    async def body(pilot):
        await pilot.click("#tabs", offset=title_offset("Topology"))
        await ticked(pilot, 1)
        seen["topology"] = (app.tabs.active, {tab for tab, pane in app.panes.items() if pane.display},
                            app.focused.id)
        await pilot.click("#tabs", offset=title_offset("Jobs"))
        await ticked(pilot, 1)
        seen["jobs"] = (app.tabs.active, app.focused.id)

    drive(arun, app, body)

    assert seen["topology"] == ("topology", {"topology"}, "topology-tree")
    assert seen["jobs"] == ("jobs", "jobs-table")


def test_output_key_shows_the_selected_job_output(testbed, arun, tmp_path):
    """'o' opens the output tab on the highlighted job's lines, each with its host."""
    app = ApsshTui(light_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("down", "down", "o")
        await ticked(pilot)
        seen["tab"], seen["lines"] = app.tabs.active, log_lines(app)

    drive(arun, app, body)

    assert seen["tab"] == "output"
    assert seen["lines"] == ["127.0.0.13: kernel Linux", "127.0.0.13: shell ok", "127.0.0.13: odd one out"]


def test_gathered_key_groups_identical_outputs(testbed, arun, tmp_path):
    """'g' shows the probe's output gathered: one folded header for node1-2, node3 as a diff."""
    app = ApsshTui(light_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("g")
        await ticked(pilot)
        seen["lines"] = log_lines(app)

    drive(arun, app, body)

    assert seen["lines"] == [
        "---------------- 127.0.0.[11-12] (2 hosts, exit 0)", "kernel Linux", "shell ok",
        "---------------- 127.0.0.13 (1 host, exit 0)",
        "--- 127.0.0.[11-12]", "+++ 127.0.0.13", "@@ -1,2 +1,3 @@", " kernel Linux", " shell ok", "+odd one out"]


def test_search_filters_the_gathered_output(testbed, arun, tmp_path):
    """'/' in the gathered view keeps the group headers and only the lines holding the word."""
    app = ApsshTui(light_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("g")
        await ticked(pilot)
        await pilot.press("slash", *"kernel", "enter")
        await ticked(pilot)
        seen["lines"] = log_lines(app)

    drive(arun, app, body)

    assert seen["lines"] == [
        "---------------- 127.0.0.[11-12] (2 hosts, exit 0)", "kernel Linux",
        "---------------- 127.0.0.13 (1 host, exit 0)", " kernel Linux"]


def test_search_filters_the_output(testbed, arun, tmp_path):
    """'/' then a word keeps only the output lines holding it; an empty search shows all again."""
    app = ApsshTui(light_session(testbed, tmp_path))
    lines = {}

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("i")
        await ticked(pilot)
        lines["all"] = log_lines(app)
        await pilot.press("slash", *"ODD", "enter")
        await ticked(pilot)
        lines["odd"] = log_lines(app)
        await pilot.press("slash", *["backspace"] * 3, "enter")
        await ticked(pilot)
        lines["cleared"] = log_lines(app)

    drive(arun, app, body)

    assert "127.0.0.11 [probe-node1]: kernel Linux" in lines["all"] and len(lines["all"]) == 7
    assert lines["odd"] == ["127.0.0.13 [probe-node3]: odd one out"]
    assert lines["cleared"] == lines["all"]


# ---------------------------------------------------------------- topology and services
def test_topology_tree_shows_gateway_then_nodes_and_connection_states(testbed, arun, tmp_path):
    """The topology tree goes localhost -> gateway -> nodes; states move from not connected to closed."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    user, gw = testbed.user, testbed.host("gw1")
    nodes = [testbed.host(name) for name in ("node1", "node2", "node3")]
    snapshots = {}

    def labels():
        tree = app.topology
        gateway = tree.root.children[0]
        return str(tree.root.label), str(gateway.label), [str(child.label) for child in gateway.children]

    async def body(pilot):
        await pilot.press("3")
        snapshots["before"] = labels()
        await pilot.press("s")
        assert await until(lambda: "  connected" in labels()[1], pilot=pilot)
        snapshots["during"] = labels()
        assert await run_finished(pilot)
        snapshots["after"] = labels()

    drive(arun, app, body)

    root, gateway, children = snapshots["before"]
    assert root == "localhost" and len(app.topology.root.children) == 1
    assert gateway == f"{user}@{gw.address}:{gw.port}  not connected"
    assert children == [f"{user}@{h.address}:{h.port}  not connected" for h in nodes]
    assert snapshots["during"][1] == f"{user}@{gw.address}:{gw.port}  connected"
    _, gateway, children = snapshots["after"]
    assert gateway.startswith(f"{user}@{gw.address}:{gw.port}  closed")
    assert [label.split("  ")[:2] for label in children] == [[f"{user}@{h.address}:{h.port}", "closed"] for h in nodes]


def test_hidden_topology_tree_waits_for_its_tab_to_show_the_connection_states(testbed, arun, tmp_path):
    """While the jobs tab is shown, connections opening and closing do not relabel the topology tree
    (a hidden tab costs nothing); on its tab ('3'), the tree shows where every connection ended."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    user, gw = testbed.user, testbed.host("gw1")
    seen = {}

    async def body(pilot):
        relabels = app.topology.relabels
        assert await press_and_finish(pilot, "s")
        seen["relabels while hidden"] = app.topology.relabels - relabels
        await pilot.press("3")
        gateway = app.topology.root.children[0]
        seen["gateway"] = str(gateway.label)
        seen["nodes"] = [str(child.label).split("  ")[1] for child in gateway.children]

    drive(arun, app, body)

    assert seen["relabels while hidden"] == 0
    assert seen["gateway"].startswith(f"{user}@{gw.address}:{gw.port}  closed")
    assert seen["nodes"] == ["closed"] * 3


def test_services_pane_starts_shows_status_and_stops_a_service(testbed, arun):
    """In the services tab, 'u' starts the service on its node, 't' shows it active, 'd' stops it."""
    service = Service("sleep 53.3", service_id="apssh-tui-test", backend="process")
    app, key, last_action = service_app(testbed, service)
    session = app.session
    assert key == f"apssh-tui-test@{testbed.user}@127.0.0.11:{testbed.host('node1').port}"
    seen = {}

    async def body(pilot):
        assert await start_service(pilot, last_action)
        seen["started"] = [p.pid for p in testbed.remote_processes("sleep 53.3")]
        await pilot.press("t")
        assert await until(lambda: last_action() == "status: exit 0", pilot=pilot)
        await ticked(pilot)
        seen["status"] = log_lines(app)
        seen["service log"] = list(app.query_one("#service-log").lines)
        await pilot.press("d")
        assert await until(lambda: last_action() == "stop: exit 0", pilot=pilot)

    try:
        drive(arun, app, body)
    finally:
        remove_service_leftovers(testbed, "sleep 53.3", "apssh-tui-test")

    assert list(session.services) == [key]
    assert seen["started"]
    assert any("apssh-tui-test: active, process group" in line for line in seen["status"])
    assert any("apssh-tui-test: active, process group" in line for line in seen["service log"])
    assert wait_for(lambda: testbed.remote_processes("sleep 53.3") == [])


# ---------------------------------------------------------------- help, quit, replay
def test_help_screen_lists_every_binding_with_its_id(testbed, arun, tmp_path):
    """F1 opens a help screen listing each key with its binding id; escape closes it."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        await pilot.press("f1")
        await ticked(pilot)
        seen["screen"] = app.screen
        seen["text"] = app.screen.bindings_text
        await pilot.press("escape")
        await ticked(pilot)
        seen["after"] = app.screen

    drive(arun, app, body)

    assert isinstance(seen["screen"], HelpScreen)
    for binding_id in ("app.start", "app.abort", "app.abort_job", "app.rerun_failed", "app.rerun_job",
                       "app.next_failed", "app.open_output", "app.gathered", "app.search", "app.save_output",
                       "app.export_graph", "app.quit", "jobs.toggle_fold", "services.start", "services.stop"):
        assert f"id={binding_id}" in seen["text"]
    assert "Re-run" in seen["text"]
    assert not isinstance(seen["after"], HelpScreen)


def test_quit_while_running_asks_first(testbed, arun):
    """'q' during a run asks for confirmation: 'n' keeps running, 'y' aborts the run and quits."""
    slow = SshJob(node(testbed, "node1"), command="sleep 54.4")
    app = ApsshTui(session_of(Scheduler(slow, timeout=30), {"slow": slow}))
    seen = {}

    async def body(pilot):
        await pilot.press("s")
        assert await until(lambda: bool(testbed.remote_processes("sleep 54.4")), pilot=pilot)
        await pilot.press("q")
        await ticked(pilot)
        seen["asked"] = isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await ticked(pilot)
        seen["still running"] = app.session.runner.running and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q")
        await ticked(pilot)
        await pilot.press("y")
        await until(lambda: not app.is_running, pilot=pilot)

    drive(arun, app, body)

    assert seen["asked"] and seen["still running"]
    assert app.return_value is False
    assert wait_for(lambda: testbed.remote_processes("sleep 54.4") == [])


def test_replay_shows_recorded_states_and_disables_run_actions(testbed, arun, tmp_path):
    """A replay of a real run's record shows its states and output; start and re-run keys do nothing."""
    session = tui_session(testbed, tmp_path, record_base=tmp_path / "runs")
    assert arun(session.run()) is False
    app = ApsshTui(ReplaySession(session.record_dir))
    seen = {}

    async def body(pilot):
        await ticked(pilot)
        seen["states"] = table_states(app)
        await pilot.press("s", "r", "R")
        await ticked(pilot)
        seen["after keys"] = table_states(app)
        await pilot.press("down", "down", "o")
        await ticked(pilot)
        seen["lines"] = log_lines(app)

    drive(arun, app, body)

    assert seen["states"] == FIRST_RUN == seen["after keys"]
    assert all(app.check_action(action, ()) is False for action in ("start", "rerun_failed", "rerun_job", "abort"))
    assert str(app.summary.render()).endswith(f"replay of {session.record_dir}")
    assert seen["lines"] == ["127.0.0.13: kernel Linux", "127.0.0.13: shell ok", "127.0.0.13: odd one out"]


def test_replay_gathered_view_groups_recorded_outputs(testbed, arun, tmp_path):
    """In a replay, 'g' gathers the recorded outputs of the jobs with the same label."""
    session = tui_session(testbed, tmp_path, record_base=tmp_path / "runs")
    assert arun(session.run()) is False
    app = ApsshTui(ReplaySession(session.record_dir))
    seen = {}

    async def body(pilot):
        await pilot.press("g")
        await ticked(pilot)
        seen["lines"] = log_lines(app)

    drive(arun, app, body)

    assert seen["lines"][:4] == ["---------------- 127.0.0.[11-12] (2 hosts, exit 0)", "kernel Linux", "shell ok",
                                  "---------------- 127.0.0.13 (1 host, exit 0)"]


# ---------------------------------------------------------------- SVG snapshots
def check_snapshot(name: str, svg: str) -> None:
    """Compare ``svg`` with tests/snapshots/<name>.svg (written instead when APSSH_UPDATE_SNAPSHOTS=1)."""
    path = SNAPSHOTS / f"{name}.svg"
    if UPDATE_SNAPSHOTS:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path}: run the tests once with APSSH_UPDATE_SNAPSHOTS=1"
    if svg != path.read_text(encoding="utf-8") and os.environ.get("APSSH_SNAPSHOT_DUMP"):
        Path(os.environ["APSSH_SNAPSHOT_DUMP"], f"{name}.svg").write_text(svg, encoding="utf-8")
    assert svg == path.read_text(encoding="utf-8"), (
        f"{name}: the screen differs from {path}; if the change is wanted, regenerate with APSSH_UPDATE_SNAPSHOTS=1")


def steady_session(testbed, tmp_path):
    """The tui scenario's session with run-dependent text made fixed: login name, then (after a run) times."""
    session = tui_session(testbed, tmp_path)
    for record in session.model:
        record.node = record.node.replace(f"{testbed.user}@", "user@")
    return session


async def freeze_times(pilot) -> None:
    """Give every job the same start and end times, and let the screen show them."""
    app = pilot.app
    for record in app.session.model:
        record.started, record.ended = 1000.0, 1000.5
        app.session.model.changed(record)  # as a state change tells the screens
    await ticked(pilot, 3)


def test_snapshot_failed_job_selected(testbed, arun, tmp_path):
    """Snapshot: the jobs view after a run with the failed job selected and its details."""
    app = ApsshTui(steady_session(testbed, tmp_path))
    shots = []

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("n")
        await freeze_times(pilot)
        shots.append(app.export_screenshot())

    drive(arun, app, body, size=SNAPSHOT_SIZE)

    check_snapshot("tui_failed_job", shots[0])


def test_snapshot_gathered_output(testbed, arun, tmp_path):
    """Snapshot: the gathered output view of the probe after a run."""
    app = ApsshTui(steady_session(testbed, tmp_path))
    shots = []

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await freeze_times(pilot)
        await pilot.press("g")
        await ticked(pilot, 3)
        shots.append(app.export_screenshot())

    drive(arun, app, body, size=SNAPSHOT_SIZE)

    check_snapshot("tui_gathered_output", shots[0])


FIXED_RUN = {
    "scenario": "fixed.yaml", "started": 1000.0, "saved": 1010.0, "succeeded": False, "runs": 2,
    "summary": "done 3 / failed 4 / running 0 / total 8",
    "jobs": [
        {"key": "probe", "label": "probe", "node": "user@fit01", "parent": None, "requires": [], "layer": 0,
         "state": "done", "attempts": 1, "started": 1000.0, "ended": 1000.4, "result": 0, "error": "",
         "nested": False},
        {"key": "ghost", "label": "probe", "node": "user@fit09", "parent": None, "requires": [], "layer": 0,
         "state": "unreachable", "attempts": 1, "started": 1000.0, "ended": 1000.1, "result": None,
         "error": "Connect call failed", "nested": False},
        {"key": "setup", "label": "setup", "node": "", "parent": None, "requires": ["probe"], "layer": 1,
         "state": "done", "attempts": 2, "started": 1001.0, "ended": 1004.0, "result": True, "error": "",
         "nested": True},
        {"key": "install", "label": "install", "node": "user@fit01", "parent": "setup", "requires": [],
         "layer": 0, "state": "done", "attempts": 2, "started": 1001.0, "ended": 1003.0, "result": 0,
         "error": "", "nested": False},
        {"key": "configure", "label": "configure", "node": "user@fit01", "parent": "setup",
         "requires": ["install"], "layer": 1, "state": "failed", "attempts": 2, "started": 1003.0,
         "ended": 1004.0, "result": 2, "error": "exit code 2", "nested": False},
        {"key": "measure", "label": "measure", "node": "user@fit02", "parent": None, "requires": ["setup"],
         "layer": 2, "state": "timed out", "attempts": 1, "started": 1004.0, "ended": 1064.0, "result": None,
         "error": "scheduler timeout", "nested": False},
        {"key": "stream", "label": "stream", "node": "user@fit03", "parent": None, "requires": ["setup"],
         "layer": 2, "state": "aborted", "attempts": 1, "started": 1004.0, "ended": 1010.0, "result": None,
         "error": "aborted", "nested": False},
        {"key": "collect", "label": "collect", "node": "user@fit02", "parent": None,
         "requires": ["measure", "stream"], "layer": 3, "state": "idle", "attempts": 0, "started": None,
         "ended": None, "result": None, "error": "did not run", "nested": False},
    ],
    "connections": [
        {"key": "user@gw:22", "label": "user@gw", "gateway": None, "state": "closed", "reason": ""},
        {"key": "user@fit01:22", "label": "user@fit01", "gateway": "user@gw:22", "state": "closed", "reason": ""},
        {"key": "user@fit09:22", "label": "user@fit09", "gateway": "user@gw:22", "state": "failed",
         "reason": "Connect call failed"},
    ],
}


def write_fixed_run(base: Path) -> Path:
    """A record directory ``base/run`` holding FIXED_RUN and one output file."""
    (base / "run" / "output" / "probe").mkdir(parents=True)
    (base / "run" / "run.json").write_text(json.dumps(FIXED_RUN))
    (base / "run" / "output" / "probe" / "fit01.out").write_text("kernel Linux\n")
    return base / "run"


def test_snapshot_replay_of_every_state(arun, tmp_path, monkeypatch):
    """Snapshot: a replay (from a fixed run.json) showing every job state and a nested scheduler."""
    monkeypatch.chdir(tmp_path)
    write_fixed_run(tmp_path)
    app = ApsshTui(ReplaySession("run"))
    shots = []

    async def body(pilot):
        await pilot.press("down", "down", "down", "down")
        await ticked(pilot, 3)
        shots.append(app.export_screenshot())

    drive(arun, app, body, size=SNAPSHOT_SIZE)

    assert app.selected() == "configure"
    check_snapshot("tui_replay_states", shots[0])


def test_space_folds_and_unfolds_a_nested_scheduler(arun, tmp_path):
    """Space on a nested scheduler's row hides its jobs, and shows them again."""
    app = ApsshTui(ReplaySession(write_fixed_run(tmp_path)))
    rows = {}

    async def body(pilot):
        rows["unfolded"] = [record.key for record in app.jobs_table.visible_records()]
        await pilot.press("down", "down")
        assert app.selected() == "setup"
        await pilot.press("space")
        rows["folded"] = [record.key for record in app.jobs_table.visible_records()]
        rows["folded cell"] = str(app.jobs_table.get_cell("setup", "job"))
        await pilot.press("space")
        rows["again"] = [record.key for record in app.jobs_table.visible_records()]

    drive(arun, app, body)

    assert rows["unfolded"] == ["ghost", "probe", "setup", "install", "configure", "measure", "stream", "collect"]
    assert rows["folded"] == ["ghost", "probe", "setup", "measure", "stream", "collect"]
    assert rows["folded cell"] == "▸ setup"
    assert rows["again"] == rows["unfolded"]


def test_details_show_what_the_selected_job_needs_and_what_needs_it(arun, tmp_path):
    """The details pane lists the selected job's requirements and dependents with their states."""
    app = ApsshTui(ReplaySession(write_fixed_run(tmp_path)))
    seen = {}

    async def body(pilot):
        await pilot.press("down", "down")
        await ticked(pilot)
        seen["details"] = str(app.details.render())

    drive(arun, app, body)

    needs, needed_by = seen["details"].split("needs\n")[1].split("needed by\n")
    assert [line.split() for line in needs.splitlines()] == [["←", "done", "probe", "probe"]]
    assert [line.split() for line in needed_by.splitlines()] == [["→", "timed", "out", "measure", "measure"],
                                                                 ["→", "aborted", "stream", "stream"]]
    assert "tries     2" in seen["details"]


def one_job_session(testbed, tmp_path):
    """A single job printing 'hi' on node1, recording in tmp_path/runs."""
    job = SshJob(node(testbed, "node1"), command="echo hi", label="hello")
    return session_of(Scheduler(job, timeout=30), {"hello": job}, record_base=tmp_path / "runs")


def test_command_palette_reaches_the_actions(testbed, arun, tmp_path):
    """The command palette (ctrl+p) finds 'Start' by its description and runs the scenario."""
    app = ApsshTui(one_job_session(testbed, tmp_path))

    async def body(pilot):
        await pilot.press("ctrl+p")
        await ticked(pilot)
        await pilot.press(*"start")
        await ticked(pilot, 3)
        await pilot.press("enter")
        assert await until(lambda: app.last_result is not None, pilot=pilot)

    drive(arun, app, body)

    assert app.last_result is True
    assert app.session.model["hello"].state == JobState.DONE


def test_save_output_key_writes_the_output_to_a_file(testbed, arun, tmp_path):
    """'w' saves the view on screen (all hosts, interleaved) to a file in the run's record directory."""
    session = one_job_session(testbed, tmp_path)
    app = ApsshTui(session)

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("w")
        await ticked(pilot)

    drive(arun, app, body)

    (saved,) = session.record_dir.glob("output-*.txt")
    assert saved.read_text() == "# output - all hosts, interleaved\n127.0.0.11 [hello]: hi\n"


def test_export_graph_key_writes_dot_svg_and_png(testbed, arun, tmp_path):
    """'e' exports the jobs' graph as graph.dot, graph.svg and graph.png in the record directory:
    each job by id, label and node, filled with its state's colour."""
    session = one_job_session(testbed, tmp_path)
    app = ApsshTui(session)
    graph = session.record_dir / "graph"

    async def body(pilot):
        assert await press_and_finish(pilot, "s")
        await pilot.press("e")
        assert await until(lambda: graph.with_suffix(".png").is_file(), pilot=pilot)
        await ticked(pilot)

    drive(arun, app, body)

    dot = graph.with_suffix(".dot").read_text()
    assert f'"hello" [label="hello\\n{testbed.user}@127.0.0.11\\ndone", fillcolor="palegreen"];' in dot
    assert graph.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert graph.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

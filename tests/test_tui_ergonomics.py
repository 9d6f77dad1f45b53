"""What a daily user leans on: natural order, Escape, the command palette, hints that follow the
keymap, fresh durations on re-run, details that follow unfolding, the topology after an abort,
replay keys, Python scenario job names, an 80x24 terminal."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from asynciojobs import AbstractJob, Scheduler
from test_tui_app import FIXED_RUN, drive, tui_session
from test_tui_output import start_and_finish
from textual.widgets import Input
from tui_support import node, remove_service_leftovers, service_app, session_of, start_service, ticked, until

from apssh.scenario import load_scenario
from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.connections import ConnectionState
from apssh_tui.core.replay import ReplaySession
from apssh_tui.core.session import Session
from apssh_tui.core.states import JobState

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding


def probe_run(base: Path) -> Path:
    """A record of 'probe' on fit1, fit2, fit10 (fit2 and fit10 failed) and a 'sum' after them."""
    jobs = []
    for number, state in ((10, "failed"), (2, "failed"), (1, "done")):
        jobs.append(dict(FIXED_RUN["jobs"][0], key=f"probe{number}", node=f"user@fit{number}", state=state))
    jobs.append(dict(FIXED_RUN["jobs"][0], key="sum", label="sum", layer=1,
                     requires=["probe10", "probe2", "probe1"]))
    connections = [{"key": f"user@fit{n}:22", "label": f"user@fit{n}", "gateway": None, "state": "closed",
                    "reason": ""} for n in (10, 2, 1)]
    (base / "run").mkdir()
    (base / "run" / "run.json").write_text(json.dumps(dict(FIXED_RUN, jobs=jobs, connections=connections)))
    return base / "run"


def test_natural_order_in_table_next_failed_members_and_topology(arun, tmp_path):
    """probe2 comes before probe10 in the table, in 'n', in a group's members and requirements, and
    fit2 before fit10 in the topology."""
    app = ApsshTui(ReplaySession(probe_run(tmp_path)))
    seen = {}

    async def body(pilot):
        seen["rows"] = [record.key for record in app.jobs_table.visible_records()]
        await pilot.press("n")
        seen["first failed"] = app.selected()
        await pilot.press("n")
        seen["second failed"] = app.selected()
        seen["requires"] = str(app.jobs_table.get_cell("sum", "requires"))
        seen["members"] = app.jobs_table.groups["group:probe1"].keys
        seen["topology"] = [str(child.label).split()[0] for child in app.topology.root.children]

    drive(arun, app, body)

    assert seen["rows"] == ["probe1", "probe2", "probe10", "sum"]
    assert (seen["first failed"], seen["second failed"]) == ("probe2", "probe10")
    assert seen["requires"] == "probe[1-2,10]"
    assert seen["members"] == ["probe1", "probe2", "probe10"]
    assert seen["topology"] == ["user@fit1", "user@fit2", "user@fit10"]


def test_escape_leaves_the_search_field(testbed, arun, tmp_path):
    """Escape in the search field closes it and gives the keys back to the output view."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        await pilot.press("slash", *"abc")
        seen["open"] = isinstance(app.focused, Input)
        await pilot.press("escape")
        await ticked(pilot)
        seen["closed"] = not app.query_one("#output-search").has_class("visible")
        seen["focus"] = app.focused is app.output.log_widget

    drive(arun, app, body)

    assert seen == {"open": True, "closed": True, "focus": True}


def test_command_palette_reaches_fold_and_service_actions(testbed, arun, tmp_path):
    """The palette lists the panes' actions too: 'Fold siblings' folds every sibling group."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        seen["actions"] = {binding.description for _, binding in app.palette_actions()}
        seen["before"] = set(app.jobs_table.folded_groups)
        await pilot.press("ctrl+p")
        await ticked(pilot)
        await pilot.press(*"fold siblings")
        await ticked(pilot, 3)
        await pilot.press("enter")
        assert await until(lambda: app.jobs_table.folded_groups != seen["before"], pilot=pilot)
        seen["rows"] = [str(app.jobs_table.get_cell(key, "job")) for key in ("group:probe-node1",)]

    drive(arun, app, body)

    assert {"Fold", "Fold siblings", "Start service", "Stop service", "Service status"} <= seen["actions"]
    assert seen["rows"] == ["▸ probe ×3"]


def test_status_hints_follow_the_keymap(testbed, arun, tmp_path):
    """With start on ctrl+s and re-run on ctrl+r, the status line names those keys."""
    app = ApsshTui(tui_session(testbed, tmp_path), keymap={"app.start": "ctrl+s", "app.rerun_failed": "ctrl+r"})
    seen = {}

    async def body(pilot):
        await ticked(pilot)
        seen["ready"] = app.summary.status
        assert await start_and_finish(pilot, "ctrl+s")
        seen["after"] = app.summary.status

    drive(arun, app, body)

    assert seen["ready"] == "ready: press ^s to start"
    assert seen["after"].endswith("(^r re-runs failed jobs)")


def test_durations_start_afresh_on_rerun(testbed, arun, tmp_path):
    """A job planned again shows no duration while it waits (not the last attempt's)."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    waiting = []

    async def body(pilot):
        assert await start_and_finish(pilot)
        assert app.session.model["check"].duration is not None
        app.session.model.subscribe(lambda record: waiting.append((record.key, record.duration))
                                    if record.state == JobState.WAITING else None)
        app.last_result = None
        assert await start_and_finish(pilot, "r")

    drive(arun, app, body)

    assert sorted(waiting) == [("check", None), ("report", None)]


def test_details_follow_unfolding(testbed, arun):
    """Space on a folded group's row unfolds it and the details pane shows the job now selected."""
    jobs = {f"probe{i}": SshJob(node(testbed, f"node{1 + i % 4}"), command="true", label="probe")
            for i in range(1, 7)}
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=30), jobs))
    seen = {}

    async def body(pilot):
        await ticked(pilot)
        seen["folded"] = str(app.details.render()).splitlines()[0]
        await pilot.press("space")
        await ticked(pilot)
        seen["unfolded"] = str(app.details.render()).splitlines()[0]

    drive(arun, app, body)

    assert seen["folded"] == "probe on 6 nodes"
    assert seen["unfolded"] == "probe1: probe"


def test_topology_leaves_nothing_connecting_after_an_abort(testbed, arun):
    """A node whose server never answers shows 'connecting'; after 'a' it does not any more."""
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.11", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        job = SshJob(node(testbed, "node1", port=port), command="true", label="never")
        app = ApsshTui(session_of(Scheduler(job, timeout=60), {"never": job}))
        key = f"{testbed.user}@127.0.0.11:{port}"
        seen = {}

        async def body(pilot):
            await pilot.press("s")
            connection = app.session.connections.connections[key]
            assert await until(lambda: connection.state == ConnectionState.CONNECTING, pilot=pilot)
            await pilot.press("a")
            assert await until(lambda: not app.session.runner.running, pilot=pilot)
            await ticked(pilot)
            seen["state"] = connection.state
            seen["label"] = str(app.topology.root.children[0].label)

        drive(arun, app, body)

    assert seen["state"] != ConnectionState.CONNECTING
    assert "connecting" not in seen["label"]


def test_replay_hides_what_it_cannot_do(arun, tmp_path):
    """In a replay, start, abort and re-run are not offered: not in the footer, not in the palette."""
    app = ApsshTui(ReplaySession(probe_run(tmp_path)))
    seen = {}

    async def body(pilot):
        await ticked(pilot)
        seen["footer"] = {binding.action for (_, binding, enabled, _) in app.active_bindings.values()
                          if enabled and binding.show}
        seen["palette"] = {binding.action for _, binding in app.palette_actions()}

    drive(arun, app, body)

    for action in ("start", "abort", "rerun_failed", "rerun_job"):
        assert app.check_action(action, ()) is False
        assert action not in seen["footer"] and action not in seen["palette"]
    assert "open_output" in seen["footer"]


PYTHON_SCENARIO = '''
from asynciojobs import Scheduler
from apssh import SshNode, SshJob

def scenario(port1, port2, user, known_hosts):
    scheduler = Scheduler()
    installs = []
    for address, port in (("127.0.0.11", port1), ("127.0.0.12", port2)):
        node = SshNode(address, port=int(port), username=user, known_hosts=known_hosts)
        installs.append(SshJob(node, command="true", label="install", scheduler=scheduler))
    SshJob(node, command="true", label="report", required=installs, scheduler=scheduler)
    return scheduler
'''


def test_python_scenario_jobs_are_named_from_label_and_host(testbed, arun, tmp_path):
    """Jobs of a Python scenario are keyed label@host: siblings fold, requirements read as a node set."""
    path = tmp_path / "named.py"
    path.write_text(PYTHON_SCENARIO)
    scenario = load_scenario(path, {"port1": str(testbed.host("node1").port), "port2": str(testbed.host("node2").port),
                                    "user": testbed.user, "known_hosts": str(testbed.all_known_hosts)})
    app = ApsshTui(Session(scenario, record_base=None))
    seen = {}

    async def body(pilot):
        seen["keys"] = [record.key for record in app.session.model]
        seen["requires"] = str(app.jobs_table.get_cell("report@127.0.0.12", "requires"))
        seen["groups"] = [group.keys for group in app.jobs_table.groups.values()]

    drive(arun, app, body)

    assert seen["keys"] == ["install@127.0.0.11", "install@127.0.0.12", "report@127.0.0.12"]
    assert seen["requires"] == "install@127.0.0.[11-12]"
    assert seen["groups"] == [["install@127.0.0.11", "install@127.0.0.12"]]


def test_80x24_keeps_the_table_columns_and_the_main_keys(testbed, arun, tmp_path):
    """On 80x24, the jobs table shows state, job, node and label in full width, and the footer s a r n o q."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        footer = app.query_one("Footer")

        def footer_keys() -> set[str]:
            return {item.key_display for item in footer.query("FooterKey")
                    if item.region.right <= app.size.width and item.region.width > 0}

        await until(lambda: footer_keys(), pilot=pilot)  # the footer lays out its keys after the first frame
        seen["details shown"] = app.details.display
        table = app.jobs_table
        seen["columns"] = table.column_widths()
        seen["table width"] = table.size.width
        seen["footer keys"] = footer_keys()

    drive(arun, app, body, size=(80, 24))

    assert seen["details shown"] is False
    shown, position = [], 0
    for label, width in seen["columns"]:
        if position + width <= seen["table width"]:
            shown.append(label)
        position += width
    assert shown[:4] == ["state", "job", "node", "label"]
    assert {"s", "a", "r", "n", "o", "q"} <= seen["footer keys"]


def visible_service_log(app) -> list[str]:
    """The lines of the service log on screen now (its viewport, not its buffer)."""
    log = app.query_one("#service-log")
    top, height = int(log.scroll_y), log.scrollable_content_region.height
    return [str(line) for line in log.lines[top:top + height]]


def test_service_log_follows_its_newest_line(testbed, arun, tmp_path):
    """A service that logs 400 lines: after 'u' then 'j' (journal) the service log shows its newest line
    without the user scrolling; after the user scrolled back to its top, 't' shows the status line that
    came last."""
    from apssh.service import Service

    service = Service("seq 1 400 | sed 's/^/tick /'; sleep 53.4", service_id="apssh-tui-follow", backend="process")
    app, _, last_action = service_app(testbed, service)
    seen = {}

    async def body(pilot):
        assert await start_service(pilot, last_action)
        await pilot.press("j")
        assert await until(lambda: last_action() == "journal: exit 0", pilot=pilot)
        assert await until(lambda: any("tick 400" in line for line in visible_service_log(app)), pilot=pilot)
        seen["journal"] = visible_service_log(app)
        log = app.query_one("#service-log")
        log.focus()
        await pilot.press("home")  # the user goes back to read the first lines, then asks for the status
        assert await until(lambda: log.scroll_y == 0, pilot=pilot)
        app.query_one("#services-table").focus()
        await pilot.press("t")
        assert await until(lambda: last_action() == "status: exit 0", pilot=pilot)
        await until(lambda: any("active, process group" in line for line in visible_service_log(app)), pilot=pilot)
        seen["status"] = visible_service_log(app)
        await pilot.press("d")
        assert await until(lambda: last_action() == "stop: exit 0", pilot=pilot)

    try:
        drive(arun, app, body)
    finally:
        remove_service_leftovers(testbed, "sleep 53.4", "apssh-tui-follow")

    assert seen["journal"][-1].endswith("tick 400")
    assert "active, process group" in seen["status"][-1]

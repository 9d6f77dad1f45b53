"""The Graph view (key 5): the scheduler's DAG as boxes in layers, drawn from graphviz's layout.

Driven with Textual's Pilot against the real testbed sshd (tests/scenarios/tui.yaml.j2: a probe
on three nodes behind a gateway, a non-critical 'check' that fails, a 'report' after it).
"""

from __future__ import annotations

from asynciojobs import AbstractJob, Scheduler
from tui_support import SIZE, drive, node, session_of, ticked, tui_session, until

from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding



async def open_graph(pilot) -> None:
    """Press 5 and wait for the first layout."""
    await pilot.press("5")
    assert await until(lambda: pilot.app.graph.ready, pilot=pilot)
    await ticked(pilot)


async def finish(pilot) -> None:
    app = pilot.app
    await pilot.press("s")
    assert await until(lambda: app.last_result is not None and not app.session.runner.running, pilot=pilot)
    await ticked(pilot, 3)


def box_style(graph, key: str) -> str:
    """The style of the text inside box ``key``, as painted."""
    rect = graph.graph_layout.boxes[key]
    strip = graph.paint_row(rect.row + rect.height // 2)
    col = 0
    for segment in strip:
        if col <= rect.col + 2 < col + len(segment.text):
            return str(segment.style)
        col += len(segment.text)
    raise AssertionError(f"box {key} not painted")


def text(graph) -> str:
    return "\n".join(graph.screen_text())


def test_graph_key_draws_jobs_in_layers_with_edges_and_live_states(testbed, arun, tmp_path):
    """'5' shows every job as a box, layer under layer, with arrows; boxes take their job's state colour."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        await open_graph(pilot)
        graph = app.graph
        seen["tab"] = app.query_one("#tabs").active
        seen["focused"] = app.focused is graph
        seen["rows"] = {key: rect.row for key, rect in graph.graph_layout.boxes.items()}
        seen["before"] = text(graph)
        seen["style before"] = box_style(graph, "check")
        await finish(pilot)
        await pilot.press("5")
        seen["after"] = text(graph)
        seen["style check"] = box_style(graph, "check")
        seen["style report"] = box_style(graph, "report")

    drive(arun, app, body)

    rows = seen["rows"]
    assert seen["tab"] == "graph" and seen["focused"]
    assert set(rows) == {"probe-node1", "probe-node2", "probe-node3", "check", "report"}
    assert rows["probe-node1"] == rows["probe-node2"] == rows["probe-node3"] < rows["check"] < rows["report"]
    assert "○ check: check flag" in seen["before"] and "○ probe-node2: probe" in seen["before"]
    assert seen["before"].count("▼") == 4  # three probes into check (fan-in), check into report
    assert "┬" in seen["before"] and "┌" in seen["before"] and "┘" in seen["before"]
    assert seen["style before"] == "dim"
    assert "✗ check: check flag" in seen["after"] and "✓ report" in seen["after"]
    assert seen["style check"] == "bold red" and seen["style report"] == "green"


def test_hidden_graph_waits_for_its_tab_to_show_the_states(testbed, arun, tmp_path):
    """While another tab is shown, jobs changing state do not repaint the graph (a hidden tab costs
    nothing); back on the graph tab, its first frame shows the states they ended in."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        await open_graph(pilot)
        graph = app.graph
        await pilot.press("1")
        await ticked(pilot)
        repaints = graph.repaints
        await finish(pilot)
        seen["repaints while hidden"] = graph.repaints - repaints
        await pilot.press("5")
        seen["repaints when shown"] = graph.repaints - repaints
        seen["shown"] = text(graph)

    drive(arun, app, body)

    assert seen["repaints while hidden"] == 0
    assert seen["repaints when shown"] == 1
    assert "✗ check: check flag" in seen["shown"] and "✓ report" in seen["shown"]


def sibling_session(testbed):
    """Six 'probe' siblings over node1-4 (the one on node3 fails), and 'collect' after them all."""
    nodes = [node(testbed, name) for name in ("node1", "node2", "node3", "node4")]
    jobs = {f"probe-{i}": SshJob(nodes[i % 4], command='test "$APSSH_TESTBED_HOST" != node3', label="probe",
                                 critical=False) for i in range(6)}
    jobs["collect"] = SshJob(nodes[0], command="echo collected", label="collect", required=list(jobs.values()))
    return session_of(Scheduler(*jobs.values(), timeout=30), jobs)


def test_graph_folds_siblings_into_one_box_with_their_counts(testbed, arun):
    """Six siblings are one box 'probe ×6' with the count of the worst state; space unfolds and folds it."""
    app = ApsshTui(sibling_session(testbed))
    seen = {}

    async def body(pilot):
        await finish(pilot)
        await open_graph(pilot)
        graph = app.graph
        seen["boxes"] = sorted(graph.graph_layout.boxes)
        seen["folded"] = text(graph)
        seen["style"] = box_style(graph, "group:probe-0")
        seen["selected"] = graph.selected
        await pilot.press("space")
        assert await until(lambda: "probe-5" in graph.graph_layout.boxes, pilot=pilot)
        seen["unfolded"] = sorted(graph.graph_layout.boxes)
        seen["selected after unfold"] = graph.selected
        await pilot.press("space")
        assert await until(lambda: "group:probe-0" in graph.graph_layout.boxes, pilot=pilot)
        seen["again"] = sorted(graph.graph_layout.boxes)

    drive(arun, app, body)

    assert seen["boxes"] == ["collect", "group:probe-0"]
    assert "✗ probe ×6  1 failed" in seen["folded"]
    assert seen["folded"].count("▼") == 1  # six edges into collect fold into one
    assert seen["style"] == "bold reverse red"  # failed, and selected
    assert seen["selected"] == "group:probe-0"  # the table's selection: the folded row
    assert seen["unfolded"] == ["collect"] + [f"probe-{i}" for i in range(6)]
    assert seen["selected after unfold"] == "probe-0"
    assert seen["again"] == seen["boxes"]


def nested_session(testbed):
    """'prepare', then a nested scheduler 'setup' (install -> configure), then 'report'."""
    node1 = node(testbed, "node1")
    prepare = SshJob(node1, command="echo prepare", label="prepare")
    install = SshJob(node1, command="echo install", label="install")
    configure = SshJob(node1, command="echo configure", label="configure", required=install)
    setup = Scheduler(install, configure, label="setup", required=prepare)
    report = SshJob(node1, command="echo report", label="report", required=setup)
    jobs = {"prepare": prepare, "setup": setup, "install": install, "configure": configure, "report": report}
    return session_of(Scheduler(prepare, setup, report, timeout=30), jobs)


def test_graph_draws_a_nested_scheduler_as_a_frame_that_folds(testbed, arun):
    """A nested scheduler is a frame around its jobs; space on its title folds it into one box."""
    app = ApsshTui(nested_session(testbed))
    seen = {}

    async def body(pilot):
        await finish(pilot)
        await open_graph(pilot)
        graph = app.graph
        seen["frames"] = sorted(graph.graph_layout.frames)
        seen["boxes"] = sorted(graph.graph_layout.boxes)
        frame, inside = graph.graph_layout.frames["setup"], graph.graph_layout.boxes["install"]
        seen["inside"] = frame.contains(inside.row, inside.col) and frame.contains(inside.bottom, inside.right)
        seen["title"] = graph.screen_text()[frame.row]
        app.jobs_table.select("setup")
        await ticked(pilot)
        seen["selected"] = graph.selected
        await pilot.press("5", "space")
        assert await until(lambda: "setup" in graph.graph_layout.boxes, pilot=pilot)
        seen["folded"] = sorted(graph.graph_layout.boxes)
        seen["folded text"] = text(graph)

    drive(arun, app, body)

    assert seen["frames"] == ["setup"]
    assert seen["boxes"] == ["configure", "install", "prepare", "report"]
    assert seen["inside"]
    assert "▾ setup done" in seen["title"]
    assert seen["selected"] == "setup"
    assert seen["folded"] == ["prepare", "report", "setup"]
    assert "✓ ▸ setup" in seen["folded text"] and seen["folded text"].count("▼") == 2


def test_graph_selection_follows_the_jobs_table_and_back(testbed, arun, tmp_path):
    """Selecting a job in the table selects its box; moving in the graph moves the table's cursor."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        await pilot.press("down", "down")
        seen["table"] = app.selected()
        await open_graph(pilot)
        seen["graph"] = app.graph.selected
        await pilot.press("down")
        seen["graph down"] = app.graph.selected
        seen["table after"] = app.selected()
        await pilot.press("down")
        seen["graph down 2"] = app.graph.selected
        seen["table after 2"] = app.selected()

    drive(arun, app, body)

    assert seen["table"] == seen["graph"] == "probe-node3"
    assert seen["graph down"] == seen["table after"] == "check"
    assert seen["graph down 2"] == seen["table after 2"] == "report"


def test_graph_pans_and_zooms_on_a_large_graph(testbed, arun):
    """A graph wider than the screen pans with shift+arrows and follows the selection; 'z' compacts it."""
    nodes = [node(testbed, name) for name in ("node1", "node2", "node3", "node4")]
    jobs = {f"step{i:02d}": SshJob(nodes[i % 4], command=f"echo {i}", label=f"step{i:02d}") for i in range(30)}
    jobs["end"] = SshJob(nodes[0], command="echo end", label="end", required=list(jobs.values()))
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=30), jobs))
    seen = {}

    async def body(pilot):
        await open_graph(pilot)
        graph = app.graph
        seen["width"] = graph.virtual_size.width
        await pilot.press("shift+right", "shift+right")
        seen["panned"] = graph.scroll_offset.x
        await pilot.press(*["right"] * 29)
        seen["last"] = graph.selected
        rect = graph.graph_layout.boxes[graph.selected]
        seen["in view"] = graph.scroll_offset.x <= rect.col and rect.right < graph.scroll_offset.x + graph.size.width
        await pilot.press("z")
        assert await until(lambda: graph.zoom_level == "compact" and graph.graph_layout.spec.zoom == "compact",
                           pilot=pilot)
        seen["compact width"] = graph.virtual_size.width
        seen["compact heights"] = {rect.height for rect in graph.graph_layout.boxes.values()}
        seen["compact selected"] = graph.selected

    drive(arun, app, body)

    assert seen["width"] > SIZE[0]
    assert seen["panned"] == 16
    assert seen["last"] == "step29" and seen["in view"]
    assert seen["compact width"] < seen["width"] and seen["compact heights"] == {1}
    assert seen["compact selected"] == "step29"


def test_graph_without_dot_says_what_to_install(testbed, arun, tmp_path, monkeypatch):
    """Without graphviz's dot on the PATH, the view says to install graphviz (and the app keeps running)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        await pilot.press("5")
        assert await until(lambda: "graphviz" in app.graph.notice, pilot=pilot)
        seen["text"] = app.graph.screen_text()

    drive(arun, app, body)

    assert seen["text"] == ["the graph view needs graphviz's dot: install graphviz (apt-get install graphviz)"]


def test_export_graph_in_a_replay_labels_jobs_by_id_with_state_colours(testbed, arun, tmp_path):
    """'e' in a replay writes graph.dot/.svg/.png of the recorded jobs: id, label, state, state colour."""
    from apssh_tui.core.replay import ReplaySession

    session = tui_session(testbed, tmp_path, record_base=tmp_path / "runs")
    assert arun(session.run()) is False
    app = ApsshTui(ReplaySession(session.record_dir))
    graph = session.record_dir / "graph"

    async def body(pilot):
        await pilot.press("e")
        assert await until(lambda: graph.with_suffix(".png").is_file(), pilot=pilot)
        await ticked(pilot)

    drive(arun, app, body)

    dot = graph.with_suffix(".dot").read_text()
    assert '"check" [label="check\\ncheck flag\\n' in dot and '\\nfailed", fillcolor="tomato"];' in dot
    assert '"probe-node1" -> "check";' in dot and '"check" -> "report";' in dot
    assert graph.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_jobs_table_highlights_upstream_and_downstream_and_says_what_a_job_waits_for(testbed, arun, tmp_path):
    """Selecting 'check' marks the probes (upstream) and 'report' (downstream); while 'check' runs,
    'report' says it waits for it."""
    from apssh_tui.widgets.jobs import RELATED_STYLES

    hold_check = tmp_path / "hold-check"  # 'check' runs until the test has read the table
    app = ApsshTui(tui_session(testbed, tmp_path, hold_check=hold_check))
    seen = {}

    def styles():
        table = app.jobs_table
        return {record.key: str(table.get_cell(record.key, "job").style) for record in table.visible_records()}

    async def body(pilot):
        app.jobs_table.select("check")
        await until(lambda: styles()["check"] == "" and styles()["probe-node1"] != "", pilot=pilot)
        seen["styles"] = styles()
        await pilot.press("s")
        assert await until(lambda: app.session.model["report"].state.value == "waiting"
                           and str(app.jobs_table.get_cell("report", "requires")).startswith("waits for"),
                           pilot=pilot)
        seen["waiting"] = str(app.jobs_table.get_cell("report", "requires"))
        hold_check.touch()
        assert await until(lambda: app.last_result is not None and not app.session.runner.running, pilot=pilot)

    drive(arun, app, body)

    up, down = RELATED_STYLES["up"], RELATED_STYLES["down"]
    assert seen["styles"] == {"probe-node1": up, "probe-node2": up, "probe-node3": up, "check": "", "report": down}
    assert seen["waiting"] == "waits for check"


def test_snapshot_graph_view(testbed, arun, tmp_path):
    """Snapshot: the graph view after a run of the tui scenario, 'check' selected."""
    from test_tui_app import SNAPSHOT_SIZE, check_snapshot, freeze_times, steady_session

    app = ApsshTui(steady_session(testbed, tmp_path))
    shots = []

    async def body(pilot):
        await finish(pilot)
        await freeze_times(pilot)
        app.jobs_table.select("check")
        await open_graph(pilot)
        await ticked(pilot, 3)
        shots.append(app.export_screenshot())

    drive(arun, app, body, size=SNAPSHOT_SIZE)

    check_snapshot("tui_graph", shots[0])


def test_command_palette_opens_the_graph_and_the_failures(testbed, arun, tmp_path):
    """ctrl+p finds 'Graph' and 'Failures' by name and opens their tabs."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = []

    async def body(pilot):
        for name in ("graph", "failures"):
            await pilot.press("ctrl+p")
            await ticked(pilot)
            await pilot.press(*name)
            await ticked(pilot, 3)
            await pilot.press("enter")
            assert await until(lambda name=name: app.query_one("#tabs").active == name, pilot=pilot)
            seen.append(app.query_one("#tabs").active)

    drive(arun, app, body)

    assert seen == ["graph", "failures"]

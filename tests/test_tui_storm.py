"""apssh-tui under connection storms (issue 12): the jobs table draws only what is in view, keys
and abort act while connections are still being opened.

Every test runs the app headless (Pilot) against the testbed's sshd servers, or against
listening sockets that never answer (a host whose SSH banner never comes: its connection stays
"connecting" for as long as the test needs).  What the screen shows is read from the rows as
the table drew them last (``JobsTable.drawn``).
"""

from __future__ import annotations

import socket

from asynciojobs import AbstractJob, Scheduler
from tui_support import drive, node, session_of, ticked, tui_session, until

from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.connections import HANDSHAKES_AT_ONCE
from apssh_tui.widgets.jobs import RELATED_STYLES

# asynciojobs reads sys.stdout.encoding, which Textual's stdout lacks: ask before any app runs
AbstractJob._detect_support_for_unicode()


def drawn_text(table, key: str) -> str | None:
    strip = table.drawn(key)
    return strip.text if strip is not None else None


def job_cell_colour(table, key: str) -> str | None:
    """The colour the job column of row ``key`` was drawn in (its second cell)."""
    strip = table.drawn(key)
    if strip is None:
        return None
    for segment in strip:
        if key in segment.text and segment.style is not None and segment.style.color is not None:
            return segment.style.color.name
    return None


def test_cursor_and_related_rows_are_drawn_around_the_selection(testbed, arun, tmp_path):
    """Moving the cursor to 'check' draws its row with the cursor, the probes it needs in the
    upstream colour and 'report' (which needs it) in the downstream colour; the details follow."""
    app = ApsshTui(tui_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        table = app.jobs_table
        cursor = table.get_component_rich_style("jobs-table--cursor").bgcolor
        for _ in range(table.get_row_index("check")):
            await pilot.press("down")
        up, down = RELATED_STYLES["up"].split()[-1], RELATED_STYLES["down"].split()[-1]
        # every row in view is drawn again after the move: wait for the related ones, not for any drawing
        await until(lambda: table.drawn("check") is not None and job_cell_colour(table, "report") == down
                    and all(job_cell_colour(table, f"probe-node{n}") == up for n in (1, 2, 3)), pilot=pilot)
        seen["selected"] = table.selected_keys()
        seen["cursor drawn"] = any(segment.style.bgcolor == cursor for segment in table.drawn("check")
                                   if segment.style is not None)
        seen["up"] = {key: job_cell_colour(table, key) for key in ("probe-node1", "probe-node2", "probe-node3")}
        seen["down"] = job_cell_colour(table, "report")
        seen["details"] = str(app.details.render()).splitlines()[0]

    drive(arun, app, body)

    up, down = RELATED_STYLES["up"].split()[-1], RELATED_STYLES["down"].split()[-1]
    assert seen["selected"] == ["check"] and seen["cursor drawn"]
    assert seen["up"] == {"probe-node1": up, "probe-node2": up, "probe-node3": up}
    assert seen["down"] == down
    assert seen["details"].startswith("check: ")


def test_rows_out_of_view_are_drawn_when_scrolled_to(testbed, arun):
    """Thirty jobs in a 16-line terminal: after the run the rows in view show 'done' and the rows
    below were not drawn again; 'end' scrolls to the last one, drawn 'done'."""
    hosts = ["node1", "node2", "node3", "node4"]
    jobs = {f"step-{i:02d}": SshJob(node(testbed, hosts[i % 4]), command="true", label=f"step {i}",
                                    critical=False) for i in range(30)}
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=60), jobs))
    seen = {}

    async def body(pilot):
        table = app.jobs_table
        await pilot.press("s")
        assert await until(lambda: app.last_result is not None and not app.session.runner.running,
                           pilot=pilot, timeout=60)
        assert await until(lambda: "done" in (drawn_text(table, "step-00") or ""), pilot=pilot)
        seen["in view"] = table.rows_in_view()
        seen["last before"] = drawn_text(table, "step-29")
        await pilot.press("end")
        assert await until(lambda: drawn_text(table, "step-29") is not None, pilot=pilot)
        seen["last after"] = drawn_text(table, "step-29")
        seen["selected"] = table.selected_keys()

    drive(arun, app, body, size=(100, 16))

    assert "step-00" in seen["in view"] and "step-29" not in seen["in view"]
    assert seen["last before"] is None  # changed while out of view: not drawn for nothing
    assert seen["last after"].split()[0] == "done" and seen["selected"] == ["step-29"]


def test_keys_and_abort_act_while_connections_are_still_opening(testbed, arun):
    """Twenty hosts that never answer (more than the app's handshake slots): while none of them
    has connected ('connecting 0/20'), a key moves the selection, and abort's rows and status
    line are drawn before the jobs are stopped; then the run ends, aborted by user."""
    silent = []
    for _ in range(20):
        listener = socket.socket()
        listener.bind(("127.0.0.11", 0))
        listener.listen(4)  # accepts TCP in the kernel, never says a word: the SSH banner never comes
        silent.append(listener)
    try:
        jobs = {f"mute-{i:02d}": SshJob(node(testbed, "node1", port=listener.getsockname()[1], timeout=120),
                                        command="echo never", label=f"mute {i}", critical=False)
                for i, listener in enumerate(silent)}
        app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=120), jobs))
        runner = app.session.runner
        seen = {}
        stop_aborted = runner.stop_aborted

        def stop_and_look() -> None:
            """What the screen shows when the jobs are about to be stopped."""
            table = app.jobs_table
            seen["rows when stopping"] = {key: drawn_text(table, key) for key in table.rows_in_view()}
            seen["status when stopping"] = str(app.summary.render())
            stop_aborted()
        runner.stop_aborted = stop_and_look

        async def body(pilot):
            table = app.jobs_table
            await pilot.press("s")
            assert await until(lambda: "connecting 0/20" in str(app.summary.render()), pilot=pilot)
            await pilot.press("down", "down")
            assert await until(lambda: table.selected_keys() == ["mute-02"]
                               and str(app.details.render()).startswith("mute-02: "), pilot=pilot)
            seen["meter after keys"] = "connecting 0/20" in str(app.summary.render())
            await pilot.press("a")
            assert await until(lambda: not runner.running, pilot=pilot, timeout=60)
            await ticked(pilot)
            seen["after"] = str(app.summary.render())

        drive(arun, app, body)
    finally:
        for listener in silent:
            listener.close()

    assert HANDSHAKES_AT_ONCE < 20 and seen["meter after keys"]
    rows = seen["rows when stopping"]
    assert len(rows) == 20 and all(text is not None and text.split()[0] == "aborted" for text in rows.values())
    assert "aborted by user" in seen["status when stopping"]
    assert seen["after"].endswith("run: aborted by user")


def test_starting_a_run_dims_the_footer_keys_without_rebuilding_the_footer(testbed, arun, tmp_path):
    """'s' dims start in the footer and enables abort on the same key widgets (no rebuild, no new
    layout while connections open); the end of the run enables start again."""
    from textual.widgets._footer import FooterKey

    hold = tmp_path / "hold"  # the probes wait for it: the run stays on while the footer is read
    app = ApsshTui(tui_session(testbed, tmp_path, hold=hold))
    seen = {}

    def footer_keys() -> dict[str, FooterKey]:
        return {key.action: key for key in app.query(FooterKey)}

    def dimmed(action: str) -> bool:
        return footer_keys()[action].has_class("-disabled")

    async def body(pilot):
        assert await until(lambda: {"start", "abort"} <= set(footer_keys()), pilot=pilot)
        before = footer_keys()
        seen["idle"] = (dimmed("start"), dimmed("abort"))
        await pilot.press("s")
        assert await until(lambda: dimmed("abort") is False, pilot=pilot)
        seen["running"] = (dimmed("start"), dimmed("abort"))
        seen["same widgets"] = all(footer_keys()[action] is widget for action, widget in before.items())
        hold.touch()
        assert await until(lambda: not app.session.runner.running and not dimmed("start"), timeout=60,
                           pilot=pilot)
        seen["after"] = (dimmed("start"), dimmed("abort"))

    drive(arun, app, body)

    assert seen["idle"] == (False, True)
    assert seen["running"] == (True, False)
    assert seen["same widgets"]
    assert seen["after"] == (False, True)

"""Filter and find: the jobs table filtered by state, node set and text; jump to a host; output
search with highlighted matches, next / previous, and regular expressions."""

from __future__ import annotations

from asynciojobs import AbstractJob, Scheduler
from test_tui_app import drive, light_session
from test_tui_output import start_and_finish
from tui_support import node, session_of, ticked

from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.jobfilter import JobFilter

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding


def rows(app) -> list[str]:
    return [record.key for record in app.jobs_table.visible_records()]


def test_jobs_filter_by_state_node_set_and_text(testbed, arun, tmp_path):
    """ctrl+f filters the table: state:failed, node:127.0.0.[12-13], a word; empty shows every job."""
    app = ApsshTui(light_session(testbed, tmp_path))
    seen = {}

    async def apply(pilot, query):
        await pilot.press("ctrl+f", *["backspace"] * 40, *query, "enter")
        await ticked(pilot)
        return rows(app)

    async def body(pilot):
        assert await start_and_finish(pilot)
        seen["failed"] = await apply(pilot, "state:failed")
        seen["nodes"] = await apply(pilot, "node:127.0.0.[12-13]")
        seen["nodes and word"] = await apply(pilot, "node:127.0.0.[12-13] probe")
        seen["all"] = await apply(pilot, "")

    drive(arun, app, body)

    assert seen["failed"] == ["verify"]
    assert seen["nodes"] == ["probe-node2", "probe-node3", "verify"]
    assert seen["nodes and word"] == ["probe-node2", "probe-node3"]
    assert seen["all"] == ["probe-node1", "probe-node2", "probe-node3", "verify"]


def test_jobs_filter_names_a_bad_query():
    """A filter with an unknown state or a broken node set says which word and what is accepted."""
    for query, words in (("state:broken", ("state:broken", "failed")), ("node:fit[01-", ("node:fit[01-", "node set"))):
        try:
            JobFilter.parse(query)
        except ValueError as exc:
            assert all(word in str(exc) for word in words)
        else:
            raise AssertionError(f"{query!r} was accepted")


def test_go_to_host_selects_its_first_job(testbed, arun, tmp_path):
    """ctrl+g and a host name selects that host's first job, even when a filter hid it."""
    app = ApsshTui(light_session(testbed, tmp_path))
    seen = {}

    async def body(pilot):
        await pilot.press("ctrl+f", *"probe-node1", "enter")
        await pilot.press("ctrl+g", *"127.0.0.13", "enter")
        await ticked(pilot)
        seen["selected"] = app.selected()
        await pilot.press("ctrl+g", *"127.0.0.12", "enter")
        await ticked(pilot)
        seen["second"] = app.selected()

    drive(arun, app, body)

    assert seen == {"selected": "probe-node3", "second": "probe-node2"}


def test_find_highlights_matches_and_moves_between_them(testbed, arun):
    """'?' finds without hiding lines: matches are highlighted, F3 / shift+F3 go to the next and
    previous matching line; a /regex/ search keeps the lines it matches."""
    job = SshJob(node(testbed, "node1"), command="for i in $(seq 1 60); do echo line $i; done; echo ERROR one; "
                 "echo fine; echo error two", label="log")
    app = ApsshTui(session_of(Scheduler(job, timeout=30), {"log": job}))
    seen = {}

    async def body(pilot):
        assert await start_and_finish(pilot)
        await pilot.press("o", "question_mark", *"error", "enter")
        await ticked(pilot)
        log = app.output.log_widget
        seen["count"] = len(log.lines)
        await pilot.press("home", "f3")
        seen["first"] = log.lines[log.current_match]
        seen["styles"] = log.styles_of(log.current_match)
        await pilot.press("f3")
        seen["second"] = log.lines[log.current_match]
        await pilot.press("shift+f3")
        seen["back"] = log.lines[log.current_match]
        await pilot.press("slash", *"/^line [0-9]5$/", "enter")
        await ticked(pilot)
        seen["regex"] = list(log.lines)

    drive(arun, app, body)

    assert seen["count"] == 63
    assert seen["first"] == "127.0.0.11: ERROR one" and seen["back"] == seen["first"]
    assert seen["second"] == "127.0.0.11: error two"
    assert seen["styles"] == [("dim", "127.0.0.11: "), ("bold reverse", "ERROR"), ("", " one")]
    assert seen["regex"] == [f"127.0.0.11: line {n}5" for n in range(1, 6)]

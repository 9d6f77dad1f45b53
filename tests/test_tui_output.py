"""The output pane against the real testbed: output that stays, attempts, gathering by folded
row, colours by kind, following, saving, and replay in time order."""

from __future__ import annotations

import json
import re

from asynciojobs import AbstractJob, Scheduler
from test_tui_app import drive, run_finished
from tui_support import node, open_job_output, session_of, ticked, until

from apssh import keys
from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.replay import ReplaySession

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding

NODES = ("node1", "node2", "node3", "node4")


async def start_and_finish(pilot, key="s", timeout=60.0) -> bool:
    """Press ``key`` and wait (up to ``timeout`` s: a loaded machine is slow) for the run to end."""
    app = pilot.app
    app.last_result = None
    await pilot.press(key)
    return await until(lambda: app.last_result is not None and not app.session.runner.running
                       and all(worker.is_finished for worker in app.workers), timeout=timeout, pilot=pilot)


def view_lines(app) -> list[str]:
    return list(app.output.log_widget.lines)


def test_job_output_stays_after_many_jobs_stream(testbed, arun, tmp_path):
    """40 jobs print 600 lines each (24,000 in all, more than the interleaved view keeps): every job's
    view still shows all of its lines."""
    nodes = {name: node(testbed, name) for name in NODES}
    jobs = {f"stream{i}": SshJob(nodes[NODES[i % 4]], command=f"seq -f 'j{i} %g' 1 600", label="stream")
            for i in range(40)}
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=60, jobs_window=8), jobs))
    seen = {}

    async def body(pilot):
        assert await start_and_finish(pilot)
        first = min(jobs, key=lambda key: min(line.seq for line in app.session.store.job_lines(key)))
        app.action_tab("jobs")
        app.jobs_table.select(first)
        await pilot.press("o")
        await ticked(pilot)
        seen["first"], seen["lines"] = first, view_lines(app)
        seen["counts"] = {}
        for key in jobs:
            app.output.show("job", key)
            seen["counts"][key] = len(view_lines(app))

    drive(arun, app, body)

    number = seen["first"].removeprefix("stream")
    host = jobs[seen["first"]].node.hostname
    assert seen["lines"] == [f"{host}: j{number} {i}" for i in range(1, 601)]
    assert seen["counts"] == {key: 600 for key in jobs}


def test_gathered_view_groups_the_folded_row_and_colours_by_kind(testbed, arun):
    """'g' gathers the folded row (same label on 4 nodes, different command texts): the failing node
    is a diff group with its exit code; a listing line starting with '-' is output, not a removal."""
    jobs = {}
    for index, name in enumerate(NODES, 1):
        fail = "; echo 'missing data' >&2; exit 2" if name == "node3" else ""
        jobs[f"ls-{name}"] = SshJob(node(testbed, name), command=f"echo '-rw-r--r-- 1 data'; echo node{index} "
                                    f"> /dev/null{fail}", label="list", critical=False)
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=30), jobs))
    seen = {}

    async def body(pilot):
        assert await start_and_finish(pilot)
        await pilot.press("g")
        await ticked(pilot)
        seen["lines"] = view_lines(app)
        log = app.output.log_widget
        seen["styles"] = {line: log.styles_of(index) for index, line in enumerate(seen["lines"])}
        seen["kinds"] = log.line_kinds()

    drive(arun, app, body)

    assert seen["lines"] == [
        "---------------- 127.0.0.[11-12,14] (3 hosts, exit 0)", "-rw-r--r-- 1 data",
        "---------------- 127.0.0.13 (1 host, exit 2)",
        "--- 127.0.0.[11-12,14]", "+++ 127.0.0.13", "@@ -1 +1,2 @@", " -rw-r--r-- 1 data", "+missing data"]
    assert seen["styles"]["-rw-r--r-- 1 data"] == [("", "-rw-r--r-- 1 data")]
    assert seen["styles"]["+missing data"] == [("green", "+missing data")]
    assert ("diff-file", "--- 127.0.0.[11-12,14]") in seen["kinds"]


def test_stderr_is_red_by_stream_not_by_text(testbed, arun):
    """In a job view, a stderr line is painted red and a stdout line that looks like a diff is not."""
    job = SshJob(node(testbed, "node1"), command="echo '-minus'; echo '+plus'; echo oops >&2", label="mixed")
    app = ApsshTui(session_of(Scheduler(job, timeout=30), {"mixed": job}))
    seen = {}

    async def body(pilot):
        assert await start_and_finish(pilot)
        await pilot.press("o")
        await until(lambda: len(view_lines(app)) == 3, pilot=pilot)
        log = app.output.log_widget
        seen["styles"] = {line: log.styles_of(index) for index, line in enumerate(view_lines(app))}

    drive(arun, app, body)

    assert seen["styles"] == {
        "127.0.0.11: -minus": [("dim", "127.0.0.11: "), ("", "-minus")],
        "127.0.0.11: +plus": [("dim", "127.0.0.11: "), ("", "+plus")],
        "127.0.0.11! oops": [("red", "127.0.0.11! "), ("red", "oops")],
    }


def test_attempts_are_separated_in_the_view_and_the_record(testbed, arun, tmp_path):
    """A job re-run after failing: its view shows '── attempt 2, HH:MM:SS ──' between the attempts;
    the record has one file per attempt, and run.json every attempt's state, exit and times."""
    flag = tmp_path / "flag"
    job = SshJob(node(testbed, "node1"), command=f"echo try; test -f {flag}", label="check", critical=False)
    session = session_of(Scheduler(job, timeout=30), {"check": job}, record_base=tmp_path / "runs")
    app = ApsshTui(session)
    seen = {}

    async def body(pilot):
        assert await start_and_finish(pilot)
        flag.touch()
        app.last_result = None
        assert await start_and_finish(pilot, "r")
        await pilot.press("o")
        await ticked(pilot)
        seen["lines"] = view_lines(app)

    drive(arun, app, body)

    first, marker, second = seen["lines"]
    assert first == second == "127.0.0.11: try"
    assert re.fullmatch(r"── attempt 2, \d\d:\d\d:\d\d ──", marker)
    output = session.record_dir / "output" / "check"
    assert (output / "127.0.0.11.out").read_text() == "try\n"
    assert (output / "attempt-2" / "127.0.0.11.out").read_text() == "try\n"
    (saved,) = json.loads((session.record_dir / "run.json").read_text())["jobs"]
    assert [(a["attempt"], a["state"], a["result"]) for a in saved["history"]] == [(1, "failed", 1), (2, "done", 0)]
    assert all(a["started"] <= a["ended"] for a in saved["history"])
    assert saved["history"][0]["ended"] <= saved["history"][1]["started"]


def test_output_follows_until_the_user_scrolls_up_and_end_resumes(testbed, arun):
    """While a job streams, the view follows its end; scrolling up stops that (new lines do not move
    the view), and End follows again."""
    job = SshJob(node(testbed, "node1"), command="for i in $(seq 1 300); do echo line $i; sleep 0.02; done",
                 label="stream")
    app = ApsshTui(session_of(Scheduler(job, timeout=30), {"stream": job}))
    seen = {}

    async def body(pilot):
        await pilot.press("s")
        await pilot.press("o")
        log = app.output.log_widget
        assert await until(lambda: len(view_lines(app)) > 80, pilot=pilot)
        seen["following"] = log.follow and log.is_vertical_scroll_end
        await pilot.press("pageup")
        seen["paused"] = not log.follow
        held, count = log.scroll_y, len(view_lines(app))
        assert await until(lambda: len(view_lines(app)) > count + 20, pilot=pilot)
        seen["held"] = log.scroll_y == held
        await pilot.press("end")
        await ticked(pilot)
        seen["resumed"] = log.follow and log.is_vertical_scroll_end
        assert await run_finished(pilot)
        seen["at end"] = log.is_vertical_scroll_end and len(view_lines(app)) == 300

    drive(arun, app, body)

    assert seen == {"following": True, "paused": True, "held": True, "resumed": True, "at end": True}


def test_save_writes_the_view_on_screen_with_its_filter(testbed, arun, tmp_path):
    """'w' saves what the output tab shows: this job's view, only the lines the search keeps."""
    job = SshJob(node(testbed, "node1"), command="echo alpha; echo beta; echo alphabet", label="words")
    other = SshJob(node(testbed, "node2"), command="echo alpha too", label="other")
    session = session_of(Scheduler(job, other, timeout=30), {"words": job, "other": other},
                         record_base=tmp_path / "runs")
    app = ApsshTui(session)

    async def body(pilot):
        assert await start_and_finish(pilot)
        app.jobs_table.select("words")
        await pilot.press("o", "slash", *"alpha", "enter", "w")
        await ticked(pilot)

    drive(arun, app, body)

    (saved,) = session.record_dir.glob("output-*.txt")
    assert saved.read_text().splitlines() == [
        "# output - job words  filter: 'alpha'", "127.0.0.11: alpha", "127.0.0.11: alphabet"]


def test_replay_interleaves_output_in_time_order(testbed, arun, tmp_path):
    """A replay's all-hosts view shows the lines of two jobs in the order they arrived."""
    ping = SshJob(node(testbed, "node1"), command="for i in 1 2 3; do echo ping $i; sleep 0.6; done", label="ping")
    pong = SshJob(node(testbed, "node2"), command="sleep 0.3; for i in 1 2 3; do echo pong $i; sleep 0.6; done",
                  label="pong")
    session = session_of(Scheduler(ping, pong, timeout=30), {"ping": ping, "pong": pong},
                         record_base=tmp_path / "runs")
    assert arun(session.run()) is True
    live = [f"{line.host} [{line.job}]: {line.text}" for line in session.store.interleaved_lines()]
    app = ApsshTui(ReplaySession(session.record_dir))
    seen = {}

    async def body(pilot):
        await pilot.press("i")
        await ticked(pilot)
        seen["lines"] = view_lines(app)

    drive(arun, app, body)

    jobs = [line.split()[1] for line in live]
    assert jobs != sorted(jobs) and jobs != sorted(jobs, reverse=True)  # the two jobs' lines alternate
    assert seen["lines"] == live


# ---------------------------------------------------------------- one channel for lines and events
def test_verbose_announcements_and_events_reach_the_job_output(testbed, arun, tmp_path):
    """A verbose command says what it runs, on an SshNode and on a LocalNode, in its job's view (as
    event lines); a verbose node's connection events go there too; nothing goes to stderr."""
    import contextlib
    import io

    from apssh.commands import Run
    from apssh.nodes import LocalNode

    remote = SshJob(node(testbed, "node1", verbose=True), commands=[Run("echo remote", verbose=True)],
                    label="remote")
    local = SshJob(LocalNode(), commands=[Run("echo local", verbose=True)], label="local")
    app = ApsshTui(session_of(Scheduler(remote, local, timeout=30), {"remote": remote, "local": local}))
    seen = {}
    stderr = io.StringIO()

    async def body(pilot):
        with contextlib.redirect_stderr(stderr):
            assert await start_and_finish(pilot)
        for key in ("remote", "local"):
            app.output.show("job", key)
            seen[key] = app.output.log_widget.line_kinds()

    drive(arun, app, body)

    assert ("event", "127.0.0.11* Run: echo remote") in seen["remote"]
    assert ("out", "127.0.0.11: remote") in seen["remote"]
    assert any(kind == "event" and "connected" in text for kind, text in seen["remote"])
    assert ("event", "LOCALNODE* Run: echo local") in seen["local"]
    assert ("out", "LOCALNODE: local") in seen["local"]
    assert "Run: echo local" not in stderr.getvalue()


def test_replay_and_live_sessions_share_one_interface(testbed, arun, tmp_path):
    """Both a live Session and a ReplaySession satisfy SessionLike; only the live one can run."""
    from apssh_tui.core.protocol import SessionLike

    job = SshJob(node(testbed, "node1"), command="echo hi", label="hello")
    session = session_of(Scheduler(job, timeout=30), {"hello": job}, record_base=tmp_path / "runs")
    assert arun(session.run()) is True
    replay = ReplaySession(session.record_dir)

    assert isinstance(session, SessionLike) and isinstance(replay, SessionLike)
    assert session.runner is not None and replay.runner is None
    assert replay.save() is None
    assert [r.key for r in replay.model] == [r.key for r in session.model]
    assert list(replay.connections.connections) == list(session.connections.connections)


CHATTY = ("awk 'BEGIN {{ for (i = 1; i <= 1500; i++) {{ print \"{name} \" i; "
          "if (i % 100 == 0) print \"{name} err \" i > \"/dev/stderr\" }} }}'")


def test_job_and_host_views_read_back_the_lines_that_left_memory(testbed, arun, tmp_path):
    """Two jobs on one host print 1500 lines each (and 15 on stderr) while memory keeps 200 per (job,
    host): the job view and the host view show every line in order, the older ones read back from the
    record, with a note at the top that says so."""
    shared = node(testbed, "node1")
    jobs = {name: SshJob(shared, command=CHATTY.format(name=name), label=name) for name in ("alpha", "beta")}
    session = session_of(Scheduler(*jobs.values(), timeout=60), jobs, record_base=tmp_path, keep_lines=200)
    app = ApsshTui(session)
    seen = {}

    async def body(pilot):
        assert await start_and_finish(pilot)
        assert await open_job_output(pilot, "alpha")
        seen["job"] = view_lines(app)
        await pilot.press("home")
        seen["top on screen"] = app.output.log_widget.render_line(0).text
        app.action_tab("jobs")
        await pilot.press("h")
        assert await until(lambda: "host 127.0.0.11" in app.output.title(), pilot=pilot)
        seen["host"] = view_lines(app)

    drive(arun, app, body)

    assert session.store.dropped("alpha", "127.0.0.11") > 0
    job = seen["job"]
    assert "read back from the record" in job[0] and "read back from the record" in seen["top on screen"]
    assert [line for line in job if ": alpha " in line] == [f"127.0.0.11: alpha {i}" for i in range(1, 1501)]
    assert [line for line in job if "! alpha err" in line] == [f"127.0.0.11! alpha err {i}"
                                                               for i in range(100, 1501, 100)]
    assert len(job) == 1515 + 1  # every line, and the note that says some were read back from the record
    host = seen["host"]
    for name in ("alpha", "beta"):
        assert [line for line in host if f" [{name}]: " in line] == [f"127.0.0.11 [{name}]: {name} {i}"
                                                                     for i in range(1, 1501)]


def test_key_messages_of_the_library_appear_in_the_output_not_under_the_screen(testbed, arun, tmp_path):
    """A node given an unusable key file (and a good one): the library's "cannot use private key" shows
    in the interleaved output (job apssh, localhost), the job still runs, and nothing goes to stderr."""
    import contextlib
    import io

    garbage = tmp_path / "not-a-key"
    garbage.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64 at all !!\n")
    job = SshJob(node(testbed, "node1", keys=[str(garbage), str(testbed.client_key)]), command="echo in")
    app = ApsshTui(session_of(Scheduler(job, timeout=30), {"keyed": job}))
    seen = {}
    stderr = io.StringIO()

    async def body(pilot):
        assert await start_and_finish(pilot)
        await pilot.press("i")
        assert await until(lambda: any("not-a-key" in line for line in view_lines(app)), pilot=pilot)
        seen["lines"] = view_lines(app)
        seen["prompts while up"] = keys.ask_on_terminal

    with contextlib.redirect_stderr(stderr):
        drive(arun, app, body)

    assert seen["prompts while up"] is False and keys.ask_on_terminal is True  # no passphrase prompt under it

    assert app.session.model["keyed"].state.value == "done"
    assert [line for line in seen["lines"] if "not-a-key" in line][0].startswith(
        f"localhost [apssh]* cannot use private key {garbage}")
    assert "not-a-key" not in stderr.getvalue()


def test_a_long_line_read_back_from_the_record_can_be_scrolled_to_its_end(testbed, arun, tmp_path):
    """The first line of a job is 400 characters long and left memory (keep_lines 20): once on screen,
    the view is wide enough to scroll to its end."""
    long_line = "x" * 399 + "!"
    job = SshJob(node(testbed, "node1"), command=f"echo {long_line}; seq 1 100", label="long")
    app = ApsshTui(session_of(Scheduler(job, timeout=30), {"long": job}, record_base=tmp_path, keep_lines=20))
    seen = {}

    async def body(pilot):
        assert await start_and_finish(pilot)
        assert await open_job_output(pilot, "long")
        await pilot.press("home")
        log = app.output.log_widget
        assert await until(lambda: log.virtual_size.width >= len(f"127.0.0.11: {long_line}"), pilot=pilot)
        await pilot.press("end")  # follows again; then to the right end of the long line
        log.scroll_to(x=log.max_scroll_x, y=0, animate=False, immediate=True)
        await ticked(pilot)
        seen["top line"] = log.render_line(1).text

    drive(arun, app, body)

    assert seen["top line"].rstrip().endswith("x!")


def test_a_hidden_output_pane_does_no_work_per_line_and_catches_up_when_shown(testbed, arun):
    """While the jobs tab is shown, the output pane's view is not updated however many lines arrive
    (a hidden tab costs nothing per line); switching to the output tab shows every line at once."""
    nodes = {name: node(testbed, name) for name in NODES}
    jobs = {f"stream{i}": SshJob(nodes[name], command=f"seq -f 'n{i} %g' 1 300", label="stream")
            for i, name in enumerate(NODES)}
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=60), jobs))
    seen = {}

    async def body(pilot):
        output = app.output
        assert app.tabs.active == "jobs" and not output.shown
        updates = output.polls
        assert await start_and_finish(pilot)
        await ticked(pilot)  # ticks went by after the last line: none of them touched the hidden pane
        seen["updates while hidden"] = output.polls - updates
        seen["lines while hidden"] = len(output.log_widget.lines)
        await pilot.press("2")
        await ticked(pilot, 1)
        seen["shown"] = output.shown
        seen["lines"] = set(output.log_widget.lines)

    drive(arun, app, body)

    assert seen["updates while hidden"] == 0 and seen["lines while hidden"] == 0
    assert seen["shown"]
    expected = {f"{jobs[f'stream{i}'].node.hostname} [stream{i}]: n{i} {n}"
                for i in range(len(NODES)) for n in range(1, 301)}
    assert expected <= seen["lines"]

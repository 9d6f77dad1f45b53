"""Runs over time: apssh-tui --runs lists the records of real runs, opens one, compares two."""

from __future__ import annotations

from asynciojobs import AbstractJob, Scheduler
from tui_support import node, session_of, until

from apssh.sshjob import SshJob
from apssh_tui.cli import main
from apssh_tui.core.runs import compare_runs, list_runs, load, output_diff
from apssh_tui.runs_app import CompareScreen, RunsApp

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding


def two_runs(testbed, arun, tmp_path):
    """The same scenario run twice in tmp_path/runs: 'check' fails, then (flag made) succeeds."""
    flag = tmp_path / "flag"
    directories = []
    for _ in range(2):
        ok = SshJob(node(testbed, "node1"), command="echo steady", label="steady")
        check = SshJob(node(testbed, "node2"), command=f"echo looking; cat {flag} && echo found", label="check",
                       critical=False)
        session = session_of(Scheduler(ok, check, timeout=30), {"steady": ok, "check": check},
                             record_base=tmp_path / "runs", name="twice.py")
        arun(session.run())
        directories.append(session.record_dir)
        flag.write_text("flag content\n")
    return directories


def test_runs_list_compare_and_diff(testbed, arun, tmp_path):
    """Two recorded runs: listed newest first with counts; 'check' changed failed -> done; its output diff."""
    first, second = two_runs(testbed, arun, tmp_path)

    entries = list_runs(tmp_path / "runs")
    changes = compare_runs(load(first), load(second))
    diff = output_diff(load(first), load(second), "check")

    assert [entry.directory for entry in entries] == [second, first]
    assert [entry.counts_text() for entry in entries] == ["2 done", "1 done, 1 failed"]
    assert entries[0].scenario == "twice.py" and entries[0].duration > 0
    assert [(c.key, c.before, c.after) for c in changes] == [("check", "failed", "done")]
    assert diff[:2] == [f"--- {first.name} check", f"+++ {second.name} check"]
    assert {" looking", "+flag content", "+found"} <= set(diff)
    assert any(line.startswith("-stderr: cat:") for line in diff)


def test_runs_screen_compares_two_runs_and_opens_one(testbed, arun, tmp_path):
    """In the runs screen, c on one run then c on the other shows what changed; escape comes back,
    enter opens the highlighted run."""
    first, second = two_runs(testbed, arun, tmp_path)
    app = RunsApp(tmp_path / "runs")
    seen = {}

    async def main_():
        async with app.run_test(size=(140, 40)) as pilot:
            await until(lambda: app.query_one("#runs").row_count >= 2, pilot=pilot)
            seen["rows"] = app.query_one("#runs").row_count
            await pilot.press("c", "down", "c")
            assert await until(lambda: isinstance(app.screen, CompareScreen)
                               and bool(app.screen.query_one("#diff").lines), pilot=pilot)
            seen["changes"] = [(c.key, c.before, c.after) for c in app.screen.changes]
            seen["diff"] = list(app.screen.query_one("#diff").lines)
            await pilot.press("escape", "enter")
            await until(lambda: not app.is_running, pilot=pilot)
    arun(main_(), timeout=60)

    assert seen["rows"] == 2
    assert seen["changes"] == [("check", "failed", "done")]
    assert "+flag content" in seen["diff"]
    assert app.return_value == first  # the cursor was left on the older run


def test_runs_option_names_a_missing_directory(tmp_path, capsys):
    """--runs on a directory that does not exist exits 2 naming it."""
    assert main(["--runs", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such directory" in capsys.readouterr().err

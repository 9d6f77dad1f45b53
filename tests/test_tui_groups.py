"""Sibling groups: the same step on many nodes shown as one row with a node set.

Core tests use a replayed run (a fixed run.json); the app tests drive a live run of eight
sibling jobs over the four testbed nodes.
"""

from __future__ import annotations

import json
from pathlib import Path

from asynciojobs import AbstractJob, Scheduler
from tui_support import drive, node, session_of, ticked, until

from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.groups import FOLD_THRESHOLD, sibling_groups
from apssh_tui.core.replay import ReplaySession
from apssh_tui.core.states import JobState

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding


def job(key, state="done", node="root@fit01", label="probe", layer=0, requires=(), error=""):
    return {"key": key, "label": label, "node": node, "parent": None, "requires": list(requires),
            "layer": layer, "state": state, "attempts": 1, "started": 100.0, "ended": 101.5,
            "result": 0 if state == "done" else 1, "error": error, "nested": False}


def write_run(base: Path) -> Path:
    """Six 'probe' siblings on fit01-06 (fit04 failed), then one 'collect' job after them."""
    probes = [job(f"probe-fit0{i}", "failed" if i == 4 else "done", f"root@fit0{i}",
                  error="exit code 1" if i == 4 else "") for i in range(1, 7)]
    collect = job("collect", "idle", "root@fit01", "collect", 1, [p["key"] for p in probes])
    run = {"scenario": "groups.yaml", "succeeded": False, "summary": "", "runs": 1,
           "jobs": probes + [collect], "connections": []}
    (base / "run").mkdir()
    (base / "run" / "run.json").write_text(json.dumps(run))
    return base / "run"


def test_sibling_groups_gather_same_layer_and_label(tmp_path):
    """Jobs with the same parent, layer and label form one group; its state is the worst of its members."""
    model = ReplaySession(write_run(tmp_path)).model

    groups = sibling_groups(list(model))

    assert list(groups) == ["group:probe-fit01"]
    group = groups["group:probe-fit01"]
    assert group.keys == [f"probe-fit0{i}" for i in range(1, 7)]
    assert group.nodes == "root@fit[01-06]"
    assert group.state == JobState.FAILED
    assert group.progress() == "1 failed, 5 done"
    assert group.requires == ""
    assert len(group.members) >= FOLD_THRESHOLD


def test_large_sibling_group_starts_folded_and_unfolds(arun, tmp_path):
    """Six siblings show as one row 'probe ×6' with their node set; space unfolds and folds them."""
    app = ApsshTui(ReplaySession(write_run(tmp_path)))
    seen = {}

    async def body(pilot):
        table = app.jobs_table
        seen["rows"] = [item.key for item, _ in table.row_items()]
        seen["cells"] = [str(table.get_cell("group:probe-fit01", column)) for column in ("state", "job", "node")]
        seen["selected"] = table.selected_keys()
        await ticked(pilot)
        seen["details"] = str(app.details.render())
        await pilot.press("space")
        seen["unfolded"] = [item.key for item, _ in table.row_items()]
        await pilot.press("space")
        seen["folded again"] = [item.key for item, _ in table.row_items()]

    drive(arun, app, body)

    assert seen["rows"] == ["group:probe-fit01", "collect"]
    assert seen["cells"] == ["failed", "▸ probe ×6", "root@fit[01-06]"]
    assert seen["selected"] == [f"probe-fit0{i}" for i in range(1, 7)]
    assert "probe on 6 nodes" in seen["details"] and "probe-fit04 root@fit04  exit code 1" in seen["details"]
    assert seen["unfolded"] == [f"probe-fit0{i}" for i in range(1, 7)] + ["collect"]
    assert seen["folded again"] == seen["rows"]


def test_next_failed_unfolds_the_group_of_the_failed_job(arun, tmp_path):
    """'n' reaches a failed job hidden in a folded group: the group unfolds and the job is selected."""
    app = ApsshTui(ReplaySession(write_run(tmp_path)))
    seen = {}

    async def body(pilot):
        await pilot.press("n")
        seen["selected"] = app.selected()
        seen["rows"] = len(app.jobs_table.row_items())

    drive(arun, app, body)

    assert seen["selected"] == "probe-fit04"
    assert seen["rows"] == 7


def test_rerun_on_a_group_row_reruns_every_member(testbed, arun, tmp_path):
    """'J' on a folded group's row runs all its jobs again, and nothing else."""
    nodes = [node(testbed, name) for name in ("node1", "node2", "node3", "node4")]
    jobs = {f"echo-{i}": SshJob(nodes[i % 4], command=f"echo sibling {i}", label="echo") for i in range(8)}
    jobs["after"] = SshJob(nodes[0], command="echo after", label="after", required=list(jobs.values()))
    app = ApsshTui(session_of(Scheduler(*jobs.values(), timeout=30), jobs))
    seen = {}

    async def body(pilot):
        assert [item.key for item, _ in app.jobs_table.row_items()] == ["group:echo-0", "after"]
        await pilot.press("s")
        assert await until(lambda: app.last_result is not None and not app.session.runner.running, pilot=pilot)
        await pilot.press("J")
        assert await until(lambda: app.session.model["echo-7"].attempts == 2
                           and not app.session.runner.running, pilot=pilot)
        await ticked(pilot, 3)
        seen["attempts"] = {key: app.session.model[key].attempts for key in jobs}
        seen["cell"] = str(app.jobs_table.get_cell("group:echo-0", "label"))

    drive(arun, app, body)

    assert seen["attempts"] == {**{f"echo-{i}": 2 for i in range(8)}, "after": 1}
    assert seen["cell"] == "8/8 done"

"""apssh_tui.core without a screen: state model, runner (run, abort, re-run), output store,
gathering, record directories, replay and the headless mode.

Every run talks to the real testbed sshd; the remote commands test for files in tmp_path
(the "remote" hosts are this machine), so a test fixes a failing condition by creating one.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import itertools
import json
import socket
import tempfile
import time
from pathlib import Path

import pytest
from asynciojobs import Scheduler
from hypothesis import given, settings
from hypothesis import strategies as st
from testbed import wait_for as until_sync
from tui_support import node, session_of, until

from apssh.sshjob import SshJob
from apssh_tui.core.gather import gather
from apssh_tui.core.headless import run_headless
from apssh_tui.core.output import OutputStore
from apssh_tui.core.record import RUN_FILE, load_run
from apssh_tui.core.replay import ReplaySession
from apssh_tui.core.runner import Runner, RunnerBusy
from apssh_tui.core.states import JobState, StateModel
from apssh_tui.core.views import Filter, OutputView


def runner_of(scheduler, jobs: dict, store: OutputStore | None = None) -> tuple[StateModel, Runner]:
    """A StateModel (keys from ``jobs``) and its Runner, output kept in memory."""
    model = StateModel(scheduler, jobs)
    return model, Runner(model, store or OutputStore(None))


def states(model: StateModel) -> dict[str, str]:
    return {record.key: record.state.value for record in model}


def attempts(model: StateModel) -> dict[str, int]:
    return {record.key: record.attempts for record in model}


def free_port(address: str = "127.0.0.11") -> int:
    """A port on ``address`` where nothing listens."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def flag_job(testbed, flag, name="node2", **kwds) -> SshJob:
    """A job that fails (exit 1) until the file ``flag`` exists."""
    return SshJob(node(testbed, name), command=f"test -f {flag} && echo flag found", **kwds)


# ---------------------------------------------------------------- the state model
def test_model_keys_come_from_names_or_are_generated(testbed):
    """Jobs named by the scenario keep their name as key; the others are named from their label and
    host (label@host), or get generated j<NN> keys without a label."""
    a = SshJob(node(testbed, "node1"), command="true", label="first")
    b = SshJob(node(testbed, "node1"), command="true", label="second", required=a)
    c = SshJob(node(testbed, "node1"), command="true", required=b)
    model = StateModel(Scheduler(a, b, c), {"alpha": a})

    assert model.record_of(a).key == "alpha"
    assert model.record_of(b).key == "second@127.0.0.11"
    assert model.record_of(c).key.startswith("j")
    assert model.record_of(b).label == "second"
    assert model.record_of(b).requires == ["alpha"]
    assert all(record.state == JobState.IDLE and record.attempts == 0 for record in model)


def test_model_layers_follow_dependencies(testbed):
    """An entry job is in layer 0, a job in 1 + the layer of its deepest requirement."""
    n = node(testbed, "node1")
    a = SshJob(n, command="true")
    b = SshJob(n, command="true", required=a)
    c = SshJob(n, command="true", required=(a, b))
    d = SshJob(n, command="true")
    model = StateModel(Scheduler(a, b, c, d), {"a": a, "b": b, "c": c, "d": d})

    assert {record.key: record.layer for record in model} == {"a": 0, "b": 1, "c": 2, "d": 0}
    assert model["c"].requires == ["a", "b"]


def test_model_children_of_a_nested_scheduler(testbed):
    """A nested scheduler is a record of its own whose jobs are its children."""
    n = node(testbed, "node1")
    pre = SshJob(n, command="true")
    i1 = SshJob(n, command="true")
    i2 = SshJob(n, command="true", required=i1)
    inner = Scheduler(i1, i2, label="inner", required=pre)
    model = StateModel(Scheduler(pre, inner), {"pre": pre, "inner": inner, "i1": i1, "i2": i2})

    assert {record.key for record in model.children(None)} == {"pre", "inner"}
    assert [record.key for record in model.children("inner")] == ["i1", "i2"]
    assert model["inner"].is_scheduler and not model["i1"].is_scheduler
    assert model["i2"].parent == "inner"
    assert model["inner"].requires == ["pre"]
    assert "total 3" in model.summary()  # the nested scheduler itself is not counted


def test_model_downstream_is_transitive(testbed):
    """downstream() holds the given jobs and every job requiring them, transitively."""
    n = node(testbed, "node1")
    a = SshJob(n, command="true")
    b = SshJob(n, command="true", required=a)
    c = SshJob(n, command="true", required=b)
    d = SshJob(n, command="true")
    model = StateModel(Scheduler(a, b, c, d), {"a": a, "b": b, "c": c, "d": d})

    assert model.downstream({"a"}) == {"a", "b", "c"}
    assert model.downstream({"b"}) == {"b", "c"}
    assert model.downstream({"d"}) == {"d"}
    assert [r.key for r in model.successors("a")] == ["b"]
    assert [r.key for r in model.predecessors("c")] == ["b"]


# ---------------------------------------------------------------- running
def test_runner_states_go_waiting_running_done(testbed, arun):
    """Every job goes idle -> waiting -> running -> done, a dependent waits while its requirement runs."""
    a = SshJob(node(testbed, "node1"), command="echo a; sleep 0.2")
    b = SshJob(node(testbed, "node2"), command="echo b", required=a)
    model, runner = runner_of(Scheduler(a, b, timeout=20), {"a": a, "b": b})
    seen: list[tuple[str, str]] = []
    b_while_a_runs = []
    model.subscribe(lambda record: seen.append((record.key, record.state.value)))
    model.subscribe(lambda record: b_while_a_runs.append(model["b"].state.value)
                    if record.key == "a" and record.state == JobState.RUNNING else None)
    assert states(model) == {"a": "idle", "b": "idle"}

    assert arun(runner.run()) is True

    assert [state for key, state in seen if key == "a"] == ["waiting", "running", "done"]
    assert [state for key, state in seen if key == "b"] == ["waiting", "running", "done"]
    assert b_while_a_runs == ["waiting"]
    assert states(model) == {"a": "done", "b": "done"}
    assert model["a"].started <= model["a"].ended <= model["b"].started
    assert model["a"].result == 0
    assert model.succeeded()
    assert model.summary() == "done 2 / failed 0 / running 0 / total 2"


def test_runner_failed_job_state_and_error(testbed, arun, tmp_path):
    """A job whose command exits non-zero ends failed, with its exit code as error; the run fails."""
    a = flag_job(testbed, tmp_path / "missing", critical=False)
    b = SshJob(node(testbed, "node1"), command="echo fine")
    model, runner = runner_of(Scheduler(a, b, timeout=20), {"a": a, "b": b})

    assert arun(runner.run()) is False

    assert states(model) == {"a": "failed", "b": "done"}
    assert model["a"].error == "exit code 1"
    assert model["a"].result == 1
    assert model.summary() == "done 1 / failed 1 / running 0 / total 2"


def test_runner_unreachable_node(testbed, arun):
    """A job on a node where nothing listens ends unreachable, with the connection error."""
    port = free_port()
    ghost = SshJob(node(testbed, "node1", port=port), command="echo never", critical=False)
    fine = SshJob(node(testbed, "node2"), command="echo fine")
    model, runner = runner_of(Scheduler(ghost, fine, timeout=20), {"ghost": ghost, "fine": fine})

    assert arun(runner.run()) is False

    assert states(model) == {"ghost": "unreachable", "fine": "done"}
    assert str(port) in model["ghost"].error


def test_scheduler_runs_twice_and_attempts_count(testbed, arun):
    """A scheduler runs a second time in full; attempts count the runs of each job."""
    a = SshJob(node(testbed, "node1"), command="echo again")
    b = SshJob(node(testbed, "node2"), command="echo too", required=a)
    store = OutputStore(None)
    model, runner = runner_of(Scheduler(a, b, timeout=20), {"a": a, "b": b}, store)

    assert arun(runner.run()) is True
    assert arun(runner.run()) is True

    assert attempts(model) == {"a": 2, "b": 2}
    assert states(model) == {"a": "done", "b": "done"}
    assert runner.runs == 2
    assert [text for _, text in store.lines("a", "127.0.0.11")] == ["again", "again"]


def test_runner_refuses_a_second_run_while_running(testbed, arun):
    """Starting while a run is going on raises RunnerBusy and leaves the first run alone."""
    a = SshJob(node(testbed, "node1"), command="sleep 0.5")
    model, runner = runner_of(Scheduler(a, timeout=20), {"a": a})

    async def scenario():
        first = asyncio.ensure_future(runner.run())
        await until(lambda: runner.running)
        with pytest.raises(RunnerBusy):
            await runner.run()
        return await first

    assert arun(scenario()) is True
    assert attempts(model) == {"a": 1}


def test_abort_kills_remote_commands_and_marks_jobs_aborted(testbed, arun):
    """abort() mid-run stops the remote commands, marks running jobs aborted and never-run ones idle."""
    a = SshJob(node(testbed, "node1"), command="sleep 41.1")
    b = SshJob(node(testbed, "node2"), command="sleep 41.2")
    c = SshJob(node(testbed, "node2"), command="echo never", required=a)
    model, runner = runner_of(Scheduler(a, b, c, timeout=30), {"a": a, "b": b, "c": c})

    async def scenario():
        task = asyncio.ensure_future(runner.run())
        assert await until(lambda: len(testbed.remote_processes("sleep 41.")) == 2)
        assert runner.abort() is True
        return await task

    assert arun(scenario()) is False

    assert states(model) == {"a": "aborted", "b": "aborted", "c": "idle"}
    assert not runner.running
    assert until_sync(lambda: testbed.remote_processes("sleep 41.") == [])
    assert not a.node.is_connected()


def test_abort_job_stops_only_that_job(testbed, arun):
    """abort_job() stops one running (non-critical) job; the other jobs run to their end."""
    a = SshJob(node(testbed, "node1"), command="sleep 42.5", critical=False)
    b = SshJob(node(testbed, "node2"), command="sleep 0.6; echo b")
    model, runner = runner_of(Scheduler(a, b, timeout=30), {"a": a, "b": b})

    async def scenario():
        task = asyncio.ensure_future(runner.run())
        assert await until(lambda: bool(testbed.remote_processes("sleep 42.5")))
        assert runner.abort_job("a") is True
        assert runner.abort_job("nope") is False
        return await task

    assert arun(scenario()) is False

    assert states(model) == {"a": "aborted", "b": "done"}
    assert until_sync(lambda: testbed.remote_processes("sleep 42.5") == [])


def test_rerun_failed_runs_only_failed_job_and_downstream(testbed, arun, tmp_path):
    """After fixing the cause, rerun_failed() runs the failed job and its downstream, nothing else."""
    flag = tmp_path / "flag"
    a = SshJob(node(testbed, "node1"), command="echo a")
    b = flag_job(testbed, flag, critical=False, required=a)
    c = SshJob(node(testbed, "node1"), command="echo c", required=b)
    d = SshJob(node(testbed, "node2"), command="echo d", required=a)
    model, runner = runner_of(Scheduler(a, b, c, d, timeout=20), {"a": a, "b": b, "c": c, "d": d})
    assert arun(runner.run()) is False
    assert states(model) == {"a": "done", "b": "failed", "c": "done", "d": "done"}
    assert runner.plan_failed() == {None: {"b", "c"}}

    flag.touch()  # fix the failing condition
    ran = []
    model.subscribe(lambda record: ran.append(record.key) if record.state == JobState.RUNNING else None)
    assert arun(runner.rerun_failed()) is True

    assert sorted(ran) == ["b", "c"]
    assert attempts(model) == {"a": 1, "b": 2, "c": 2, "d": 1}
    assert states(model) == {"a": "done", "b": "done", "c": "done", "d": "done"}


def test_rerun_failed_after_abort_runs_aborted_and_never_run_jobs(testbed, arun):
    """After an abort, rerun_failed() runs the aborted job and the one that never ran, not the done one."""
    a = SshJob(node(testbed, "node1"), command="echo quick")
    b = SshJob(node(testbed, "node2"), command="sleep 43.3")
    c = SshJob(node(testbed, "node2"), command="echo after", required=b)
    model, runner = runner_of(Scheduler(a, b, c, timeout=30), {"a": a, "b": b, "c": c})

    async def first_run():
        task = asyncio.ensure_future(runner.run())
        assert await until(lambda: model["a"].state == JobState.DONE and bool(testbed.remote_processes("sleep 43.3")))
        runner.abort()
        return await task

    assert arun(first_run()) is False
    assert states(model) == {"a": "done", "b": "aborted", "c": "idle"}
    b.commands[0].argv = ("echo now quick",)  # the slow command is fixed
    assert runner.plan_failed() == {None: {"b", "c"}}

    assert arun(runner.rerun_failed()) is True
    assert attempts(model) == {"a": 1, "b": 2, "c": 1}


def test_rerun_job_with_downstream(testbed, arun):
    """rerun(key) runs that job again and everything downstream of it, nothing upstream or aside."""
    a = SshJob(node(testbed, "node1"), command="echo a")
    b = SshJob(node(testbed, "node2"), command="echo b", required=a)
    c = SshJob(node(testbed, "node1"), command="echo c", required=b)
    d = SshJob(node(testbed, "node2"), command="echo d", required=a)
    model, runner = runner_of(Scheduler(a, b, c, d, timeout=20), {"a": a, "b": b, "c": c, "d": d})
    assert arun(runner.run()) is True

    assert arun(runner.rerun("b")) is True

    assert attempts(model) == {"a": 1, "b": 2, "c": 2, "d": 1}


def test_rerun_job_without_downstream(testbed, arun):
    """rerun(key, downstream=False) runs that job alone again."""
    a = SshJob(node(testbed, "node1"), command="echo a")
    b = SshJob(node(testbed, "node2"), command="echo b", required=a)
    c = SshJob(node(testbed, "node1"), command="echo c", required=b)
    model, runner = runner_of(Scheduler(a, b, c, timeout=20), {"a": a, "b": b, "c": c})
    assert arun(runner.run()) is True

    assert runner.plan(["b"], downstream=False) == {None: {"b"}}
    assert arun(runner.rerun("b", downstream=False)) is True

    assert attempts(model) == {"a": 1, "b": 2, "c": 1}
    assert set(b.required) == {a}  # the full graph is restored after the re-run


def test_rerun_failed_inner_job_of_nested_scheduler(testbed, arun, tmp_path):
    """A failed job inside a nested scheduler re-runs alone inside it, then what follows the scheduler."""
    flag = tmp_path / "flag"
    pre = SshJob(node(testbed, "node2"), command="echo pre")
    i1 = SshJob(node(testbed, "node1"), command="echo i1")
    i2 = flag_job(testbed, flag, name="node1", critical=False, required=i1)
    inner = Scheduler(i1, i2, label="inner", critical=False, required=pre)
    after = SshJob(node(testbed, "node2"), command="echo after", required=inner)
    jobs = {"pre": pre, "inner": inner, "i1": i1, "i2": i2, "after": after}
    model, runner = runner_of(Scheduler(pre, inner, after, timeout=20), jobs)
    assert arun(runner.run()) is False
    assert model["i2"].state == JobState.FAILED

    flag.touch()
    assert runner.plan_failed() == {None: {"inner", "after"}, "inner": {"i2"}}
    assert arun(runner.rerun_failed()) is True

    assert attempts(model) == {"pre": 1, "inner": 2, "i1": 1, "i2": 2, "after": 2}
    assert all(record.state == JobState.DONE for record in model)
    assert set(inner.jobs) == {i1, i2}  # the nested scheduler holds all its jobs again


def test_scheduler_timeout_gives_timed_out(testbed, arun):
    """A job still running when the scheduler's timeout expires ends 'timed out', its command stopped."""
    slow = SshJob(node(testbed, "node1"), command="sleep 44.4")
    model, runner = runner_of(Scheduler(slow, timeout=0.8), {"slow": slow})

    assert arun(runner.run()) is False

    assert states(model) == {"slow": "timed out"}
    assert model["slow"].error == "scheduler timeout"
    assert until_sync(lambda: testbed.remote_processes("sleep 44.4") == [])


# ---------------------------------------------------------------- output
def test_output_store_bounds_memory_and_keeps_complete_files(testbed, arun, tmp_path):
    """Memory keeps the last keep_lines lines per (job, host); the files hold all of stdout and stderr apart."""
    job = SshJob(node(testbed, "node1"), command="seq 1 50; seq 101 105 >&2")
    store = OutputStore(tmp_path / "out", keep_lines=10)
    model, runner = runner_of(Scheduler(job, timeout=20), {"chatty": job}, store)

    assert arun(runner.run()) is True

    kept = store.lines("chatty", "127.0.0.11")
    stream = store.streams[("chatty", "127.0.0.11")]
    assert len(kept) == 10
    assert stream.line_count == 55 and stream.dropped == 45
    assert all((kind == "err") == (int(text) > 100) for kind, text in kept)
    folder = tmp_path / "out" / "chatty"
    assert (folder / "127.0.0.11.out").read_text() == "".join(f"{i}\n" for i in range(1, 51))
    assert (folder / "127.0.0.11.err").read_text() == "".join(f"{i}\n" for i in range(101, 106))


def test_job_formatter_attribution_with_two_jobs_on_one_node(testbed, arun):
    """Two jobs running at once on the same node each get exactly their own lines."""
    shared = node(testbed, "node1")
    one = SshJob(shared, command="for i in 1 2 3; do echo one-$i; sleep 0.1; done")
    two = SshJob(shared, command="for i in 1 2 3; do echo two-$i; echo two-err-$i >&2; sleep 0.1; done")
    store = OutputStore(None)
    model, runner = runner_of(Scheduler(one, two, timeout=20), {"one": one, "two": two}, store)

    assert arun(runner.run()) is True

    assert model["one"].started < model["two"].ended and model["two"].started < model["one"].ended
    assert [text for _, text in store.lines("one", "127.0.0.11")] == ["one-1", "one-2", "one-3"]
    two_lines = store.lines("two", "127.0.0.11")
    assert [text for kind, text in two_lines if kind == "out"] == ["two-1", "two-2", "two-3"]
    assert [text for kind, text in two_lines if kind == "err"] == ["two-err-1", "two-err-2", "two-err-3"]


def test_output_store_search_since_and_save(tmp_path):
    """The interleaved view is searchable and readable from a sequence number; a job's view saves
    the lines its filter keeps."""
    store = OutputStore(None)
    store.add("j1", "fit01", "out", ["alpha\n", "Beta\n"])
    store.add("j2", "fit02", "err", ["beta too\n"])

    assert [entry.text for entry in store.search("BETA")] == ["Beta", "beta too"]
    assert [entry.host for entry in store.search("beta", job="j2")] == ["fit02"]
    assert [entry.text for entry in store.since(2)] == ["beta too"]
    small = OutputStore(None, keep_interleaved=2)
    small.add("j1", "fit01", "out", ["1\n", "2\n", "3\n"])
    assert small.since(0) is None and [line.text for line in small.since(1)] == ["2", "3"]
    view = OutputView(store, StateModel.from_records([]), "job", job="j1", filter=Filter("beta"))
    saved = view.save(tmp_path / "saved.txt")
    assert saved.read_text() == "# output - job j1  filter: 'beta'\nfit01: Beta\n"


def test_output_digest_does_not_depend_on_batches():
    """The same lines give the same digest whether they came in one batch or several; other lines do not."""
    store = OutputStore(None)
    store.add("probe", "fit01", "out", ["kernel Linux\n", "shell ok\n"])
    store.add("probe", "fit02", "out", ["kernel Linux\n"])
    store.add("probe", "fit02", "out", ["shell ok\n"])
    store.add("probe", "fit03", "out", ["kernel Linux\n"])
    store.add("probe", "fit03", "err", ["shell ok\n"])

    assert store.digest("probe", "fit01") == store.digest("probe", "fit02")
    assert store.digest("probe", "fit03") != store.digest("probe", "fit01")


@settings(max_examples=80, deadline=None)
@given(texts=st.lists(st.text(max_size=12), min_size=1, max_size=30), cuts=st.sets(st.integers(1, 29)))
def test_output_digest_and_record_do_not_depend_on_batches_whatever_the_text(texts, cuts):
    """Any lines (empty, with NUL or other control characters) split in any batches give the digest
    and the record file of the same lines in one batch, line by line."""
    lines = [text.replace("\n", " ") + "\n" for text in texts]
    bounds = [0, *sorted(cut for cut in cuts if cut < len(lines)), len(lines)]
    with tempfile.TemporaryDirectory() as directory:
        store = OutputStore(directory)
        store.add("probe", "whole", "out", lines)
        for start, end in itertools.pairwise(bounds):
            store.add("probe", "split", "out", lines[start:end])
        store.flush()
        one_by_one = hashlib.sha1()
        for line in lines:
            one_by_one.update(f"out\0{line}".encode("utf-8", "replace"))
        assert store.digest("probe", "split") == store.digest("probe", "whole") == one_by_one.hexdigest()
        files = Path(directory) / "probe"
        assert (files / "split.out").read_bytes() == (files / "whole.out").read_bytes() == "".join(lines).encode(
            "utf-8", "replace")


def test_lines_in_memory_are_not_tracked_by_the_garbage_collector():
    """The store keeps its lines as plain tuples, which the garbage collector stops tracking: a full
    collection does not go over 100,000 lines in memory.  Its reading methods still give Lines."""
    store = OutputStore(None)
    for batch in range(20):
        store.add("probe", f"fit{batch % 4:02d}", "out", [f"line {batch}.{index}\n" for index in range(50)])
    gc.collect()
    kept = [line for stream in store.streams.values() for line in stream.lines] + list(store.interleaved)
    assert len(kept) == 2000 and not any(gc.is_tracked(line) for line in kept)
    assert store.job_lines("probe")[0].text == "line 0.0" and store.since(998)[-1].text == "line 19.49"


# ---------------------------------------------------------------- gathering
def test_gather_groups_identical_outputs_under_a_folded_header():
    """Hosts with the same output and exit code make one group whose header folds the node set."""
    outputs = {f"fit0{i}": ("same", ["kernel Linux"], 0) for i in (1, 2, 3)}

    groups = gather(outputs)

    assert len(groups) == 1
    assert groups[0].header == "fit[01-03] (3 hosts, exit 0)"
    assert groups[0].lines == ["kernel Linux"] and groups[0].diff == []


def test_gather_separates_same_output_with_another_exit_code():
    """The same output with another exit code is another group."""
    outputs = {"fit01": ("same", ["x"], 0), "fit02": ("same", ["x"], 0), "fit03": ("same", ["x"], 1)}

    groups = gather(outputs)

    assert [group.header for group in groups] == ["fit[01-02] (2 hosts, exit 0)", "fit03 (1 host, exit 1)"]


def test_gather_diffs_the_odd_one_against_the_largest_group():
    """The largest group comes first; another group carries a unified diff against it."""
    outputs = {"fit01": ("d1", ["kernel Linux", "shell ok"], 0),
               "fit02": ("d1", ["kernel Linux", "shell ok"], 0),
               "fit03": ("d2", ["kernel Linux", "shell broken"], 0)}

    reference, odd = gather(outputs)

    assert reference.hosts == ["fit01", "fit02"] and reference.diff == []
    assert odd.hosts == ["fit03"]
    assert odd.diff[:2] == ["--- fit[01-02]", "+++ fit03"]
    assert "-shell ok" in odd.diff and "+shell broken" in odd.diff and " kernel Linux" in odd.diff


# ---------------------------------------------------------------- record and replay
def recorded_session(testbed, tmp_path, arun):
    """A finished run (one job done, one failed) of a Session writing a record directory in tmp_path."""
    ok = SshJob(node(testbed, "node1"), command="echo recorded; echo warned >&2")
    bad = flag_job(testbed, tmp_path / "missing", critical=False)
    session = session_of(Scheduler(ok, bad, timeout=20), {"ok": ok, "bad": bad}, record_base=tmp_path / "runs")
    assert arun(session.run()) is False
    return session


def test_record_directory_holds_states_attempts_exit_codes_and_output(testbed, arun, tmp_path):
    """A run writes run.json (states, attempts, exit codes, timings, connections) and per-host output files."""
    session = recorded_session(testbed, tmp_path, arun)

    directory = session.record_dir
    assert directory.parent == tmp_path / "runs" and directory.name.startswith("test-scenario-")
    data = json.loads((directory / RUN_FILE).read_text())
    assert data["succeeded"] is False and data["runs"] == 1
    assert data["summary"] == "done 1 / failed 1 / running 0 / total 2"
    jobs = {job["key"]: job for job in data["jobs"]}
    assert (jobs["ok"]["state"], jobs["ok"]["attempts"], jobs["ok"]["result"]) == ("done", 1, 0)
    assert (jobs["bad"]["state"], jobs["bad"]["result"], jobs["bad"]["error"]) == ("failed", 1, "exit code 1")
    assert jobs["ok"]["started"] <= jobs["ok"]["ended"]
    assert {c["state"] for c in data["connections"]} == {"closed"}
    assert (directory / "output" / "ok" / "127.0.0.11.out").read_text() == "recorded\n"
    assert (directory / "output" / "ok" / "127.0.0.11.err").read_text() == "warned\n"


def test_record_directory_exists_while_the_run_goes_on(testbed, arun, tmp_path):
    """run.json is written when a run starts, so a run killed midway still leaves a record."""
    slow = SshJob(node(testbed, "node1"), command="echo started; sleep 1")
    session = session_of(Scheduler(slow, timeout=20), {"slow": slow}, record_base=tmp_path / "runs")
    seen = {}

    async def scenario():
        task = asyncio.ensure_future(session.run())
        assert await until(lambda: session.model["slow"].state == JobState.RUNNING)
        seen["during"] = json.loads((session.record_dir / RUN_FILE).read_text())
        return await task

    assert arun(scenario()) is True
    assert seen["during"]["succeeded"] is None
    assert [job["key"] for job in seen["during"]["jobs"]] == ["slow"]
    assert json.loads((session.record_dir / RUN_FILE).read_text())["succeeded"] is True


def test_replay_session_reads_the_record_back(testbed, arun, tmp_path):
    """ReplaySession rebuilds states, attempts, output and connections of a recorded run; it has no runner."""
    session = recorded_session(testbed, tmp_path, arun)

    replay = ReplaySession(session.record_dir)

    assert replay.runner is None
    assert states(replay.model) == {"ok": "done", "bad": "failed"}
    assert attempts(replay.model) == {"ok": 1, "bad": 1}
    assert replay.model["bad"].error == "exit code 1"
    assert sorted(replay.store.lines("ok", "127.0.0.11")) == [("err", "warned"), ("out", "recorded")]
    assert set(replay.connections.connections) == set(session.connections.connections)
    assert replay.model.summary() == session.model.summary()


def test_load_run_rejects_what_is_not_a_record(tmp_path):
    """load_run() names the directory without run.json, and the broken run.json."""
    with pytest.raises(FileNotFoundError, match="not a record directory"):
        load_run(tmp_path)
    (tmp_path / RUN_FILE).write_text('{"jobs": [{"key": 1}]}')
    with pytest.raises(ValueError, match="unreadable record"):
        load_run(tmp_path)


# ---------------------------------------------------------------- headless
def test_headless_success_exits_0_with_progress_and_summary(testbed, arun):
    """run_headless() prints a line per transition and the summary, and returns 0 when all succeed."""
    a = SshJob(node(testbed, "node1"), command="echo a", label="first job")
    b = SshJob(node(testbed, "node2"), command="echo b", required=a)
    session = session_of(Scheduler(a, b, timeout=20), {"a": a, "b": b})
    out = io.StringIO()

    assert arun(run_headless(session, out)) == 0

    lines = out.getvalue().splitlines()
    progress = [line.split(maxsplit=1)[1] for line in lines if not line.startswith("==")]
    assert "running     a first job (root@127.0.0.11)".replace("root", testbed.user) in progress
    assert "done        a first job (root@127.0.0.11)".replace("root", testbed.user) in progress
    assert lines[-2:] == ["== done 2 / failed 0 / running 0 / total 2", "== scenario succeeded"]


def test_headless_failure_exits_1_and_names_the_failed_job(testbed, arun, tmp_path):
    """run_headless() returns 1 when a job fails, and lists it under the summary."""
    fine = SshJob(node(testbed, "node1"), command="echo fine")
    bad = flag_job(testbed, tmp_path / "missing", critical=False, label="check flag")
    session = session_of(Scheduler(fine, bad, timeout=20), {"fine": fine, "bad": bad})
    out = io.StringIO()

    assert arun(run_headless(session, out)) == 1

    text = out.getvalue()
    assert "== done 1 / failed 1 / running 0 / total 2" in text
    assert f"   failed: bad check flag ({testbed.user}@127.0.0.12) exit code 1" in text
    assert text.endswith("== scenario FAILED\n")


# ---------------------------------------------------------------- lines read back from the record
BATCHES = st.lists(st.tuples(st.sampled_from(["j1", "j2"]), st.sampled_from(["fit01", "fit02", "fit03"]),
                             st.sampled_from(["out", "err", "event", "attempt"]), st.integers(1, 25)),
                   min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(batches=BATCHES, keep_lines=st.integers(1, 30), keep_total=st.integers(1, 200),
       needle=st.sampled_from(["", "err", ".1"]))
def test_job_and_host_views_show_every_line_with_memory_bounded(batches, keep_lines, keep_total, needle):
    """Whatever the batches, the attempts and the memory limits, a job's view and a host's view show
    every line (or every line a search keeps) and every attempt separator, in the order they came
    (the older lines read back from the record), while memory keeps at most ``keep_lines`` per
    (job, host)."""
    from unittest import mock

    from apssh_tui.core import recorded

    tags = {"out": ":", "err": "!", "event": "*"}
    events = []  # (job, host or None for a separator, shown text)
    with tempfile.TemporaryDirectory() as directory, mock.patch.object(recorded, "BLOCK_LINES", 7):
        store = OutputStore(directory, keep_lines=keep_lines, keep_total=keep_total, keep_min=1)
        for number, (job, host, stream, size) in enumerate(batches):
            when = 1_000_000.0 + number / 100  # distinct times, as lines arriving one batch at a time
            if stream == "attempt":
                attempt = store.attempt(job) + 1
                store.begin_attempt(job, attempt, when)
                stamp = time.strftime("%H:%M:%S", time.localtime(when))
                events.append((job, None, f"── attempt {attempt}, {stamp} ──"))
                continue
            texts = [f"{job} {host} {stream} {number}.{index}" for index in range(size)]
            events += [(job, host, f"{tags[stream]} {text}") for text in texts if needle in text]
            store.add(job, host, stream, [text + "\n" for text in texts], when=when)
        assert all(len(stream.lines) <= keep_lines for stream in store.streams.values())
        model = StateModel.from_records([])
        search = Filter(needle)
        for job in ("j1", "j2"):
            view = OutputView(store, model, "job", job=job, filter=search)
            assert view.texts()[len(view.top):] == [text if host is None else f"{host}{text}"
                                                    for job_, host, text in events if job_ == job]
        for host in ("fit01", "fit02", "fit03"):
            view = OutputView(store, model, "host", host=host, filter=search)
            jobs = store.jobs(host)
            assert view.texts()[len(view.top):] == [
                f"[{job}] {text}" if host_ is None else f"{host} [{job}]{text}"
                for job, host_, text in events if host_ == host or (host_ is None and job in jobs)]


def test_gathered_view_groups_by_every_line_and_says_when_it_shows_only_the_last_ones(tmp_path):
    """Two hosts whose long outputs differ only in their first line are two groups, though memory
    only keeps their last lines; a note says the view shows those."""
    from apssh_tui.core.states import JobRecord

    store = OutputStore(tmp_path, keep_lines=5)
    for number, host in enumerate(("fit01", "fit02")):
        store.add(f"probe{number}", host, "out", [f"first {host}\n"] + [f"same {i}\n" for i in range(20)])
    model = StateModel.from_records([JobRecord(key=f"probe{n}", job=None, label="probe", node=f"fit0{n + 1}",
                                               state=JobState.DONE, result=0) for n in range(2)])
    view = OutputView(store, model, "gathered", job="probe0", keys=["probe0", "probe1"])

    texts = view.texts()
    assert texts[0] == "(2 hosts printed more than memory keeps: their last lines are shown; 'o' on a job " \
                       "shows every line)"
    assert sum(text.startswith("----------------") for text in texts) == 2

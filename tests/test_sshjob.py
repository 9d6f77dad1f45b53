"""SshJob against the real sshd of the testbed: command forms, critical/forever/keep_connection,
nested schedulers, labels, unreachable nodes, and aborts that kill the remote command."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest
from asynciojobs import Job, PureScheduler, Scheduler, Sequence
from helpers import CommandRecorder, RecordingFormatter, connection_keys, free_port, make_node, no_new_connections
from testbed import wait_for

from apssh import CommandFailedError, LocalNode, Run, SshConnectError, SshJob, SshNode, close_ssh_in_scheduler
from apssh.commands import AbstractCommand


async def until(predicate, timeout: float = 10.0) -> bool:
    """wait_for() from inside an event loop, without blocking it."""
    return await asyncio.to_thread(wait_for, predicate, timeout)


# ---------------------------------------------------------------- command forms
FORMS = {
    "1-list-of-commands": (lambda: {"commands": [Run("echo one"), Run("echo two")]}, 2, ["one\n", "two\n"]),
    "1-tuple-of-commands": (lambda: {"commands": (Run("echo one"), Run("echo two"))}, 2, ["one\n", "two\n"]),
    "2-one-command": (lambda: {"commands": Run("echo one")}, 1, ["one\n"]),
    "3-list-of-strings": (lambda: {"commands": ["echo", "one", 2]}, 1, ["one 2\n"]),
    "4-one-string": (lambda: {"commands": "echo one; echo two"}, 1, ["one\n", "two\n"]),
    "command-alias-list": (lambda: {"command": [Run("echo one"), Run("echo two")]}, 2, ["one\n", "two\n"]),
    "command-alias-string": (lambda: {"command": "echo one"}, 1, ["one\n"]),
}


@pytest.mark.parametrize("form", FORMS)
def test_command_forms_build_command_lists_that_run(testbed, form):
    """Each accepted form of commands/command becomes a list of command objects that all run in order."""
    build, count, expected = FORMS[form]
    node = make_node(testbed, "node1")
    job = SshJob(node, **build())
    assert isinstance(job.commands, list)
    assert len(job.commands) == count
    assert all(isinstance(cmd, AbstractCommand) for cmd in job.commands)
    assert Scheduler(job, timeout=30).run() is True
    assert job.result() == 0
    assert node.formatter.stdout() == expected


def test_list_of_strings_makes_one_run_with_joined_parts(testbed):
    """Form (3): a list of strings is the parts of ONE Run, joined with spaces."""
    job = SshJob(make_node(testbed, "node1"), commands=["tail", "-n", 1, "/etc/hostname"])
    assert len(job.commands) == 1
    assert isinstance(job.commands[0], Run)
    assert job.commands[0].command_line() == "tail -n 1 /etc/hostname"


MALFORMED = {
    "both-command-and-commands": (lambda n: SshJob(n, command="true", commands="true"), "not both"),
    "neither": (lambda n: SshJob(n), "no command given"),
    "empty-list": (lambda n: SshJob(n, commands=[]), "empty list"),
    "empty-tuple": (lambda n: SshJob(n, commands=()), "empty list"),
    "run-and-str-mixed": (lambda n: SshJob(n, commands=[Run("true"), "echo x"]), "all command objects"),
    "none-in-list": (lambda n: SshJob(n, commands=[Run("true"), None]), "None"),
    "list-in-strings": (lambda n: SshJob(n, commands=["echo", ["x"]]), "['x']"),
    "not-a-command": (lambda n: SshJob(n, commands=object()), "commands must be"),
    "dict": (lambda n: SshJob(n, commands={"cmd": "true"}), "commands must be"),
    "int-node": (lambda n: SshJob(42, command="true"), "node must be"),
    "str-node": (lambda n: SshJob("node1", command="true"), "node must be"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_job_raises_type_error_at_build_time(testbed, case):
    """A malformed SshJob raises a TypeError naming SshJob and the problem, before anything connects."""
    build, fragment = MALFORMED[case]
    host = testbed.host("node1")
    # nothing listens there: any connection attempt would fail with SshConnectError, not TypeError
    node = SshNode(host.address, port=free_port(host.address), username=testbed.user,
                   formatter=RecordingFormatter(), timeout=2)
    with pytest.raises(TypeError) as info:
        build(node)
    assert "SshJob" in str(info.value)
    assert fragment in str(info.value)
    assert node.conn is None


# ---------------------------------------------------------------- critical / non-critical
def test_defaults_are_critical_not_forever_and_closing():
    """SshJob defaults: critical=True, forever=False, keep_connection=False (not asynciojobs' defaults)."""
    job = SshJob(SshNode("localhost"), command="true")
    assert job.critical is True and job.is_critical()
    assert job.forever is False
    assert job.keep_connection is False


def test_critical_failure_raises_command_failed_error_from_scheduler_run(testbed):
    """A failing critical job stops at its failing command and makes a (critical) Scheduler.run() raise."""
    node = make_node(testbed, "node1")
    failing = SshJob(node, commands=[Run("echo before"), Run("exit 7"), Run("echo never")])
    after = SshJob(node, command="echo after", required=failing)
    with pytest.raises(CommandFailedError) as info:
        Scheduler(failing, after, timeout=30).run()
    assert info.value.retcod == 7
    assert info.value.hostname == node.hostname
    assert "exit 7" in str(info.value)
    assert node.formatter.stdout() == ["before\n"]
    assert not after.is_running()


def test_critical_failure_raises_from_co_run(testbed, arun):
    """Scheduler.co_run() raises the CommandFailedError of a failing critical job (asynciojobs semantics)."""
    node = make_node(testbed, "node1")
    scheduler = Scheduler(SshJob(node, command="exit 3"), timeout=30)
    with pytest.raises(CommandFailedError) as info:
        arun(scheduler.co_run())
    assert info.value.retcod == 3


@pytest.mark.parametrize("kind", ["PureScheduler", "non-critical Scheduler"])
def test_critical_failure_makes_non_raising_scheduler_return_false(testbed, kind):
    """A PureScheduler or non-critical Scheduler returns False, marks failed_critical and keeps the exception."""
    node = make_node(testbed, "node1")
    failing = SshJob(node, command="exit 9")
    after = SshJob(node, command="echo after", required=failing)
    scheduler = (PureScheduler(failing, after, timeout=30) if kind == "PureScheduler"
                 else Scheduler(failing, after, timeout=30, critical=False))
    assert scheduler.run() is False
    assert scheduler.failed_critical()
    assert isinstance(failing.raised_exception(), CommandFailedError)
    assert failing.raised_exception().retcod == 9
    assert node.formatter.stdout() == []


def test_non_critical_job_runs_all_commands_and_returns_last_failing_code(testbed):
    """critical=False: every command runs, the result is the last failing code, and the scheduler goes on."""
    node = make_node(testbed, "node1")
    job = SshJob(node, critical=False, commands=[
        Run("exit 3"), Run("echo middle"), Run("exit 5"), Run("echo end")])
    after = SshJob(node, command="echo after", required=job)
    assert Scheduler(job, after, timeout=30).run() is True
    assert job.raised_exception() is None
    assert job.result() == 5
    assert node.formatter.stdout() == ["middle\n", "end\n", "after\n"]


def test_non_critical_job_that_succeeds_returns_zero(testbed):
    """critical=False with only successful commands returns 0."""
    node = make_node(testbed, "node1")
    job = SshJob(node, critical=False, commands=[Run("true"), Run("echo ok")])
    assert Scheduler(job, timeout=30).run() is True
    assert job.result() == 0


# ---------------------------------------------------------------- forever
def test_forever_job_is_cancelled_at_the_end_and_its_remote_command_killed(testbed):
    """A forever=True job does not hold the scheduler; when it ends, its remote command is killed."""
    pattern = "sleep 4343"
    assert not testbed.remote_processes(pattern)
    node = make_node(testbed, "node1")
    forever = SshJob(node, command=pattern, forever=True)
    seen = []

    async def watch():
        seen.append(await asyncio.to_thread(wait_for, lambda: testbed.remote_processes(pattern), 10))
        return seen[0]

    assert Scheduler(forever, Job(watch(), label="watch"), timeout=30).run() is True
    assert seen == [True]  # the remote command was running while the finite job ran
    assert wait_for(lambda: not testbed.remote_processes(pattern))
    assert not forever.is_done()


# ---------------------------------------------------------------- verbose
@pytest.mark.parametrize("job_verbose, expected", [
    (True, ["echo a", "echo b"]),
    (False, []),
    (None, ["echo b"]),
])
def test_job_verbose_overrides_commands_verbose(testbed, job_verbose, expected):
    """verbose=True/False on the job overrides each command's verbose; None leaves them as given."""
    node = make_node(testbed, "node1", formatter=CommandRecorder())
    job = SshJob(node, verbose=job_verbose, commands=[Run("echo a", verbose=False), Run("echo b", verbose=True)])
    assert Scheduler(job, timeout=30).run() is True
    announced = [cmd for cmd in ["echo a", "echo b"] if any(cmd in text for text in node.formatter.announces)]
    assert announced == expected
    # verbose never changes what runs
    assert node.formatter.stdout() == ["a\n", "b\n"]


# ---------------------------------------------------------------- keep_connection
def test_keep_connection_false_closes_connection_when_scheduler_ends(testbed):
    """keep_connection=False (default): no connection to the server remains after Scheduler.run()."""
    host = testbed.host("node1")
    before = connection_keys(testbed)
    node = make_node(testbed, "node1")
    assert Scheduler(SshJob(node, command="echo hi"), timeout=30).run() is True
    assert node.formatter.stdout() == ["hi\n"]
    assert not node.is_connected()
    assert node.conn is None
    assert no_new_connections(testbed, before, [host])


def test_keep_connection_false_closes_inside_co_run(testbed, arun):
    """keep_connection=False: the connection is closed by the end of co_run(), in the same event loop."""
    host = testbed.host("node1")
    before = connection_keys(testbed)
    node = make_node(testbed, "node1")

    async def main():
        assert await Scheduler(SshJob(node, command="true"), timeout=30).co_run() is True
        return node.is_connected(), await until(lambda: not connection_keys(testbed, [host]) - before)

    assert arun(main()) == (False, True)


def test_keep_connection_true_keeps_connection_open(testbed, arun):
    """keep_connection=True: the connection to the server is still up after co_run(), until closed."""
    host = testbed.host("node1")
    before = connection_keys(testbed)
    node = make_node(testbed, "node1")

    async def main():
        try:
            assert await Scheduler(SshJob(node, command="true", keep_connection=True), timeout=30).co_run()
            mine = [c for c in testbed.established_connections(host) if c.client_pid == os.getpid()]
            return node.is_connected(), len(mine)
        finally:
            await node.close()

    assert arun(main()) == (True, 1)
    assert no_new_connections(testbed, before, [host])


def test_node_closed_at_scheduler_end_reconnects_in_next_scheduler(testbed, arun):
    """A node closed by a scheduler's shutdown reconnects transparently for a later scheduler (same loop)."""
    node = make_node(testbed, "node1")

    async def main():
        assert await Scheduler(SshJob(node, command="echo first"), timeout=30).co_run()
        assert not node.is_connected()
        assert await Scheduler(SshJob(node, command="echo second"), timeout=30).co_run()

    arun(main())
    assert node.formatter.stdout() == ["first\n", "second\n"]


@pytest.mark.parametrize("keep", [False, True], ids=["close", "keep_connection"])
def test_same_nodes_in_two_successive_sync_runs(testbed, keep):
    """The same nodes (one behind a gateway) work in two Scheduler.run() calls, i.e. two event loops."""
    before = connection_keys(testbed)
    formatter = RecordingFormatter()
    gateway = make_node(testbed, "gw1", formatter=formatter)
    direct = make_node(testbed, "node1", formatter=formatter)
    behind = make_node(testbed, "node2", gateway=gateway, formatter=formatter)

    def scheduler(word):
        return Scheduler(Sequence(SshJob(direct, command=f"echo {word}-direct", keep_connection=keep),
                                  SshJob(behind, command=f"echo {word}-behind", keep_connection=keep)),
                         timeout=30)

    assert scheduler("first").run() is True
    last = scheduler("second")
    assert last.run() is True
    assert formatter.stdout() == ["first-direct\n", "first-behind\n", "second-direct\n", "second-behind\n"]
    close_ssh_in_scheduler(last)
    # the connections opened by the first (finished) loop are gone as well
    assert no_new_connections(testbed, before)


# ---------------------------------------------------------------- nested schedulers
def test_nested_scheduler_runs_sshjobs_in_order_and_closes(testbed):
    """SshJobs in a Scheduler nested in a Scheduler run in sequence, and all connections close at the end."""
    before = connection_keys(testbed)
    formatter = RecordingFormatter()
    n1 = make_node(testbed, "node1", formatter=formatter)
    n2 = make_node(testbed, "node2", formatter=formatter)
    inner = Scheduler(Sequence(SshJob(n2, command="echo inner-1"), SshJob(n2, command="echo inner-2")))
    outer = Scheduler(Sequence(SshJob(n1, command="echo outer-1"), inner, SshJob(n1, command="echo outer-2")),
                      timeout=30)
    assert outer.run() is True
    assert formatter.stdout() == ["outer-1\n", "inner-1\n", "inner-2\n", "outer-2\n"]
    assert no_new_connections(testbed, before)


def test_nested_critical_failure_aborts_outer_scheduler(testbed):
    """A failing critical SshJob in a nested Scheduler aborts the outer one with CommandFailedError."""
    n1, n2 = make_node(testbed, "node1"), make_node(testbed, "node2")
    inner = Scheduler(SshJob(n2, command="exit 4"))
    last = SshJob(n1, command="echo never")
    outer = Scheduler(Sequence(SshJob(n1, command="echo first"), inner, last), timeout=30)
    with pytest.raises(CommandFailedError) as info:
        outer.run()
    assert info.value.retcod == 4
    assert info.value.hostname == n2.hostname
    assert n1.formatter.stdout() == ["first\n"]
    assert not last.is_running()


# ---------------------------------------------------------------- labels
def test_text_label_shows_first_command_and_how_many_more():
    """text_label(): the first command's label_line, plus '.. + N' when there are N others (as apssh 0.27)."""
    node = SshNode("localhost")
    assert SshJob(node, command="echo a").text_label() == "echo a"
    assert SshJob(node, commands=[Run("echo a"), Run("echo b"), Run("echo c")]).text_label() == "echo a.. + 2"
    assert SshJob(node, commands=Run("echo a", label="say a")).text_label() == "say a"


def test_graph_label_names_the_node_then_every_command():
    """graph_label(): user@host, then one line per command, labels honoured (as apssh 0.27);
    it is what Scheduler.dot_format() shows."""
    job = SshJob(SshNode("localhost", username="guest"), commands=[Run("echo a"), Run("echo b", label="second")])
    assert job.graph_label() == "guest@localhost\necho a\nsecond"
    assert "label=\"guest@localhost\necho a\nsecond\"" in Scheduler(job).dot_format()


def test_details_names_node_and_commands(testbed, capsys):
    """details(): the node's description then each command; printed by Scheduler.list(details=True)."""
    node = make_node(testbed, "node1")
    job = SshJob(node, commands=[Run("echo a"), Run("echo b")])
    lines = job.details().splitlines()
    assert lines[0] == f"{node.describe()}:"
    assert node.hostname in lines[0] and str(node.port) in lines[0]
    assert [line.strip() for line in lines[1:]] == ["echo a", "echo b"]
    Scheduler(job).list(details=True)
    assert "echo a" in capsys.readouterr().out


def test_repr_result_follows_the_job_outcome(testbed):
    """repr_result(): not done, then the result, or the exception (marked critical or not)."""
    node = make_node(testbed, "node1")
    ok = SshJob(node, command="true")
    soft = SshJob(node, command="exit 5", critical=False)
    hard = SshJob(node, command="exit 6")
    assert "not done" in ok.repr_result()
    assert Scheduler(Sequence(ok, soft), timeout=30).run() is True
    assert "0" in ok.repr_result() and "not done" not in ok.repr_result()
    assert "5" in soft.repr_result() and "exception" not in soft.repr_result().lower()
    assert PureScheduler(hard, timeout=30).run() is False
    text = hard.repr_result()
    assert "CRIT" in text and "CommandFailedError" in text and "exit 6" in text


# ---------------------------------------------------------------- unreachable node
def test_unreachable_node_raises_ssh_connect_error_not_command_failed(testbed):
    """A node nobody answers for makes the job raise SshConnectError (not CommandFailedError), nothing runs."""
    host = testbed.host("node1")
    node = SshNode(host.address, port=free_port(host.address), username=testbed.user,
                   formatter=RecordingFormatter(), timeout=5)
    job = SshJob(node, commands=[Run("echo one"), Run("echo two")])
    with pytest.raises(SshConnectError) as info:
        Scheduler(job, timeout=30).run()
    assert not isinstance(info.value, CommandFailedError)
    assert host.address in str(info.value)
    assert node.formatter.stdout() == []


def test_unreachable_node_in_non_critical_job_is_kept_as_its_exception(testbed):
    """With critical=False, an unreachable node leaves SshConnectError as the job's exception; others go on."""
    host = testbed.host("node1")
    node = SshNode(host.address, port=free_port(host.address), username=testbed.user,
                   formatter=RecordingFormatter(), timeout=5)
    job = SshJob(node, command="echo one", critical=False)
    other = make_node(testbed, "node2")
    assert Scheduler(job, SshJob(other, command="echo other"), timeout=30).run() is True
    assert isinstance(job.raised_exception(), SshConnectError)
    assert other.formatter.stdout() == ["other\n"]


# ---------------------------------------------------------------- abort
def test_cancelling_the_job_task_kills_the_remote_command(testbed, arun):
    """Cancelling the task running an SshJob kills its remote command, within the same event loop."""
    pattern = "sleep 4241"
    assert not testbed.remote_processes(pattern)
    node = make_node(testbed, "node1")
    job = SshJob(node, command=pattern)

    async def main():
        task = asyncio.ensure_future(job.co_run())
        try:
            assert await until(lambda: testbed.remote_processes(pattern))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await until(lambda: not testbed.remote_processes(pattern))
        finally:
            await node.close()

    assert arun(main()) is True


def test_cancelling_scheduler_co_run_kills_the_remote_command(testbed, arun):
    """Cancelling the task running scheduler.co_run() kills the remote command (by the loop's end:
    asynciojobs does not cancel its job tasks itself, asyncio.run() does)."""
    pattern = "sleep 4242"
    assert not testbed.remote_processes(pattern)
    before = connection_keys(testbed)
    node = make_node(testbed, "node1")
    scheduler = Scheduler(SshJob(node, command=pattern), timeout=60)

    async def main():
        task = asyncio.ensure_future(scheduler.co_run())
        assert await until(lambda: testbed.remote_processes(pattern))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    assert wait_for(lambda: not testbed.remote_processes(pattern))
    # an aborted scheduler never shut down: its connection is closed explicitly
    close_ssh_in_scheduler(scheduler)
    assert no_new_connections(testbed, before)


def test_cancel_kills_every_process_of_a_compound_remote_command(testbed, arun):
    """An abort kills the whole remote command line (shell and children), so what follows never runs."""
    pattern = "sleep 4240"
    assert not testbed.remote_processes(pattern)
    node = make_node(testbed, "node1")
    job = SshJob(node, command=f"{pattern}; echo never")

    async def main():
        task = asyncio.ensure_future(job.co_run())
        try:
            assert await until(lambda: len(testbed.remote_processes(pattern)) == 2)  # shell + sleep
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await until(lambda: not testbed.remote_processes(pattern))
        finally:
            await node.close()

    assert arun(main()) is True
    assert "never\n" not in node.formatter.stdout()


def test_ctrl_c_during_scheduler_run_kills_the_remote_command(testbed):
    """SIGINT (Ctrl-C) during a sync Scheduler.run() raises KeyboardInterrupt and kills the remote command."""
    pattern = "sleep 4239"
    assert not testbed.remote_processes(pattern)
    before = connection_keys(testbed)
    node = make_node(testbed, "node1")
    scheduler = Scheduler(SshJob(node, command=pattern), timeout=60)
    found = []

    def interrupt():
        found.append(wait_for(lambda: testbed.remote_processes(pattern), timeout=10))
        if found[0]:
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            scheduler.run()
    finally:
        thread.join()
    assert found == [True]
    assert wait_for(lambda: not testbed.remote_processes(pattern))
    close_ssh_in_scheduler(scheduler)
    assert no_new_connections(testbed, before)


def test_local_node_job_runs_through_sshjob():
    """An SshJob on a LocalNode runs its commands locally and returns 0."""
    formatter = RecordingFormatter()
    job = SshJob(LocalNode(formatter=formatter), commands=[Run("echo local"), Run("true")])
    assert Scheduler(job, timeout=30).run() is True
    assert job.result() == 0
    assert formatter.stdout() == ["local\n"]

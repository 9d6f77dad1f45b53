"""Service without systemd: the fallback backend (a detached process group, a pid file, a log file).

The testbed's sshd servers run on a machine without systemd, so ``backend="auto"`` must pick the
fallback there; most tests run both with "auto" and with ``backend="process"`` forced.  What the
daemons really do is checked on the machine itself (``testbed.remote_processes``, psutil), not only
through exit codes.  The remote login is the testbed user, so the files live in its real
``~/.apssh-remote/services``; each test uses its own service id and removes them.
"""

from __future__ import annotations

import os

import psutil
import pytest
from helpers import make_node
from service_helpers import Remote, unique_id
from testbed import wait_for

from apssh import Capture, Deferred, Run, Service, SshJob
from apssh.service import PROCESS_DIR

ENVIRON = {"SPACES": "x y  z", "QUOTES": "it's \"quoted\"", "SHELLY": "$HOME `id` ; a | b & * \\ end",
           "NEWLINE": "line 1\nline 2", "EMPTY": ""}


@pytest.fixture(params=["auto", "process"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def remote(testbed, arun):
    """A Remote on testbed node1; the services of the test are stopped and their files removed at its end."""
    remote = Remote(make_node(testbed, "node1"))
    remote.services = []
    yield remote

    async def cleanup():
        for service in remote.services:
            await remote.step(service.stop_command())
            await remote.sh(f"rm -f ~/{PROCESS_DIR}/{service.service_id}.log")
        await remote.close()
    arun(cleanup())


def service(remote: Remote, command, **kwds) -> Service:
    """A Service with a fresh id, stopped and cleaned up by the ``remote`` fixture."""
    kwds.setdefault("service_id", unique_id())
    made = Service(command, **kwds)
    remote.services.append(made)
    return made


def alive(testbed, pattern: str) -> list[psutil.Process]:
    return testbed.remote_processes(pattern)


def cmdlines(testbed, pattern: str) -> list[list[str]]:
    """The command lines of the live processes matching ``pattern`` (those ending meanwhile left out)."""
    found = []
    for proc in alive(testbed, pattern):
        try:
            found.append(proc.cmdline())
        except psutil.Error:
            continue
    return found


# ---------------------------------------------------------------- start / stop
def test_auto_backend_without_systemd_keeps_pid_and_log_files(remote, testbed, arun):
    """backend='auto' without systemd: the daemon's process group id goes to ~/.apssh-remote/services/ID.pid."""
    web = service(remote, "exec sleep 4401")

    async def main():
        started = await remote.step(web.start_command())
        files = await remote.out(f"cd ~/{PROCESS_DIR} && ls {web.service_id}.*")
        return started, files, await remote.out(f"cat ~/{PROCESS_DIR}/{web.service_id}.pid")

    started, files, pid = arun(main())
    assert started.result == 0
    assert files.split() == [f"{web.service_id}.log", f"{web.service_id}.pid"]
    (daemon,) = alive(testbed, "sleep 4401")
    assert os.getpgid(daemon.pid) == int(pid)


def test_start_detaches_the_command_in_a_session_of_its_own(remote, testbed, arun, backend):
    """start_command() returns while the daemon runs on, leader of its own session and process group."""
    web = service(remote, "exec sleep 4402", backend=backend)

    started = arun(remote.step(web.start_command()))
    assert started.result == 0
    (daemon,) = alive(testbed, "sleep 4402")
    assert os.getsid(daemon.pid) == os.getpgid(daemon.pid) == daemon.pid


def test_daemon_outlives_the_ssh_connection(remote, testbed, arun, backend):
    """The daemon keeps running once the SSH connection that started it is closed."""
    web = service(remote, "exec sleep 4403", backend=backend)

    async def main():
        await remote.step(web.start_command())
        await remote.close()

    arun(main())
    assert wait_for(lambda: not testbed.established_connections(testbed.host("node1")))
    assert len(alive(testbed, "sleep 4403")) == 1


def test_stop_kills_the_whole_group_and_leaves_no_process(remote, testbed, arun, backend):
    """stop_command() ends the daemon and its children before returning, and removes the pid file."""
    web = service(remote, "sleep 4404 & sleep 4405; wait", backend=backend)

    async def main():
        await remote.step(web.start_command())
        assert wait_for(lambda: len(alive(testbed, "sleep 440")) == 3)  # the shell and both sleeps
        stopped = await remote.step(web.stop_command())
        return stopped, alive(testbed, "sleep 440"), await remote.sh(f"ls ~/{PROCESS_DIR}/{web.service_id}.pid")

    stopped, left, (code, _) = arun(main())
    assert stopped.result == 0
    assert left == []  # right when stop returns: it waits for the processes to go
    assert code != 0


def test_stop_of_a_service_not_running_succeeds(remote, arun, backend):
    """Stopping a service never started succeeds (exit 0)."""
    web = service(remote, "exec sleep 4406", backend=backend)

    async def main():
        return await remote.step(web.stop_command()), await remote.sh(web.stop_command().command_line())

    stopped, (code, _) = arun(main())
    assert (stopped.result, code) == (0, 0)


# ---------------------------------------------------------------- status / journal
def test_status_reports_an_active_service_and_its_group(remote, testbed, arun, backend):
    """status_command() of a running service prints 'ID: active, process group N' and exits 0."""
    web = service(remote, "exec sleep 4407", backend=backend)

    async def main():
        await remote.step(web.start_command())
        return await remote.step(web.status_command()), await remote.sh(web.status_command().command_line())

    status, (code, _) = arun(main())
    (daemon,) = alive(testbed, "sleep 4407")
    assert status.stdout == f"{web.service_id}: active, process group {daemon.pid}\n"
    assert code == 0


@pytest.mark.parametrize("started", [True, False], ids=["stopped", "never-started"])
def test_status_exits_3_when_not_running(remote, arun, backend, started):
    """status_command() of a stopped (or never started) service prints 'ID: inactive', exit 3, an answer."""
    web = service(remote, "exec sleep 4408", backend=backend)

    async def main():
        if started:
            await remote.step(web.start_command())
            await remote.step(web.stop_command())
        return await remote.step(web.status_command()), await remote.sh(web.status_command().command_line())

    status, (code, output) = arun(main())
    assert (status.result, status.stdout) == (0, f"{web.service_id}: inactive\n")
    assert (code, output) == (3, f"{web.service_id}: inactive\n")


def test_status_with_output_writes_it_to_a_remote_file(remote, arun, backend, tmp_path):
    """status_command(output=F) prints nothing and writes the status to F (a name with spaces and a quote)."""
    web = service(remote, "exec sleep 4409", backend=backend)
    output = tmp_path / "status of 'web'.txt"  # the testbed's sshd runs on this very machine

    async def main():
        await remote.step(web.start_command())
        return await remote.step(web.status_command(output=str(output)))

    status = arun(main())
    assert (status.result, status.stdout) == (0, "")
    assert output.read_text().startswith(f"{web.service_id}: active, process group ")


def test_journal_shows_stdout_and_stderr_of_the_service(remote, testbed, arun, backend):
    """journal_command() shows what the daemon wrote on stdout and stderr."""
    web = service(remote, "echo to-stdout; echo to-stderr >&2; exec sleep 4410", backend=backend)

    async def main():
        await remote.step(web.start_command())
        await remote.wait_until(web.journal_command().command_line(), lambda out: "to-stderr" in out)
        return await remote.step(web.journal_command()), await remote.step(web.journal_command(since="-1h"))

    journal, since = arun(main())
    assert (journal.result, journal.stdout) == (0, "to-stdout\nto-stderr\n")
    assert since.stdout == journal.stdout  # the log has no timestamps: 'since' cannot filter it


def test_journal_keeps_the_output_of_earlier_runs(remote, arun, backend):
    """As journalctl does, the journal of a restarted service still shows what the earlier run printed."""
    web = service(remote, "echo run-$$; exec sleep 4411", backend=backend)

    async def main():
        for runs in (1, 2):
            await remote.step(web.start_command())
            await remote.wait_until(web.journal_command().command_line(),
                                    lambda out, runs=runs: out.count("run-") == runs)
        return await remote.step(web.journal_command())

    lines = arun(main()).stdout.splitlines()
    assert len(lines) == 2 and len(set(lines)) == 2 and all(line.startswith("run-") for line in lines)


# ---------------------------------------------------------------- options
def test_environ_values_arrive_intact(remote, testbed, arun, backend):
    """environ: every value (spaces, quotes, $, backquotes, backslash, newline, empty) reaches the daemon as is."""
    web = service(remote, "exec sleep 4412", environ=ENVIRON, backend=backend)

    arun(remote.step(web.start_command()))
    (daemon,) = alive(testbed, "sleep 4412")
    environ = daemon.environ()
    assert {name: environ.get(name) for name in ENVIRON} == ENVIRON


@pytest.mark.parametrize("tty", [True, False])
def test_tty_gives_the_command_a_terminal_and_stop_ends_it(remote, testbed, arun, backend, tty):
    """tty=True runs the command on a pseudo-terminal (script); stop ends it all, the command under script too."""
    web = service(remote, "tty; exec sleep 4413", tty=tty, backend=backend)

    async def main():
        await remote.step(web.start_command())
        journal = await remote.wait_until(web.journal_command().command_line(),
                                          lambda out: "/dev/pts/" in out or "not a tty" in out)
        before = cmdlines(testbed, "sleep 4413")
        await remote.step(web.stop_command())
        return journal, before, alive(testbed, "sleep 4413")

    journal, before, after = arun(main())
    assert ("/dev/pts/" in journal) is tty
    assert ("not a tty" in journal) is not tty
    # with tty, the command runs under script(1) in a session of its own
    assert before.count(["sleep", "4413"]) == 1
    assert after == []


def test_deferred_command_is_filled_from_a_capture(remote, arun, backend):
    """A Deferred command gets the value captured by an earlier Run of the same scenario when it starts."""
    from apssh import Variables

    variables = Variables()
    web = service(remote, Deferred("echo got {{word}}; exec sleep 4414", variables), backend=backend)

    async def main():
        capture = SshJob(remote.node, commands=Run("echo captured-4414", capture=Capture("word", variables)),
                         keep_connection=True)
        start = SshJob(remote.node, commands=web.start_command(), keep_connection=True, required=capture)
        ok = await remote.steps(capture, start)
        return ok, await remote.wait_until(web.journal_command().command_line(), lambda out: "got" in out)

    ok, journal = arun(main())
    assert ok is True
    assert journal == "got captured-4414"


# ---------------------------------------------------------------- twice, and failures
def test_second_start_with_stop_if_running_replaces_the_daemon(remote, testbed, arun, backend):
    """A second start (stop_if_running, the default) ends the running daemon and starts a new one."""
    web = service(remote, "exec sleep 4415", backend=backend)

    async def main():
        await remote.step(web.start_command())
        first = [proc.pid for proc in alive(testbed, "sleep 4415")]
        again = await remote.step(web.start_command())
        return first, again, [proc.pid for proc in alive(testbed, "sleep 4415")]

    first, again, second = arun(main())
    assert again.result == 0
    assert len(first) == 1 and len(second) == 1 and first != second


def test_second_start_without_stop_if_running_fails_and_keeps_the_first(remote, testbed, arun, backend):
    """Without stop_if_running, starting a running service again fails (exit 1) and leaves it running."""
    web = service(remote, "exec sleep 4416", backend=backend, stop_if_running=False)

    async def main():
        await remote.step(web.start_command())
        first = [proc.pid for proc in alive(testbed, "sleep 4416")]
        return first, await remote.step(web.start_command()), [proc.pid for proc in alive(testbed, "sleep 4416")]

    first, again, second = arun(main())
    assert again.result == 1
    assert again.stderr == f"service {web.service_id} is already running\n"
    assert len(first) == 1 and second == first


def test_failing_command_is_reported_inactive_with_its_error(remote, testbed, arun, backend):
    """A command that fails at once: start only launches it (success); status then says inactive (exit 3)
    even if its zombie lingers (this machine's init does not reap orphans), the journal holds its error,
    and a start without stop_if_running works again."""
    web = service(remote, "echo cannot-start >&2; exit 7", backend=backend, stop_if_running=False)

    async def main():
        started = await remote.step(web.start_command())
        journal = await remote.wait_until(web.journal_command().command_line(), lambda out: out != "")
        code = await remote.wait_until(f"( {web.status_command().command_line()} ) >/dev/null; echo $?",
                                       lambda out: out == "3")
        return started, journal, code, await remote.step(web.start_command())

    started, journal, code, again = arun(main())
    assert started.result == 0
    assert journal == "cannot-start"
    assert code == "3"
    assert again.result == 0

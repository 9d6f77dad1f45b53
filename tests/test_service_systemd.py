"""Service on a REAL systemd host: a Debian tree booted with systemd-nspawn (fixture ``systemd_host``).

Each test starts its own unit (a unique service id) through apssh commands run in SshJobs, then checks
the unit with ``systemctl is-active`` / ``systemctl show`` / ``ps`` run over the same SSH connection,
not only the exit codes.  The Services use the default backend ("auto"), which must pick systemd
there.  Root only: skipped with a reason otherwise (see tests/systemd_host.py).
"""

from __future__ import annotations

import pytest
from service_helpers import Remote, unique_id

from apssh import Capture, Deferred, Run, Service, SshJob, SshNode, Variables

# values a shell could mangle: spaces, both quotes, $, backquotes, backslash, newline
ENVIRON = {"SPACES": "x y  z", "QUOTES": "it's \"quoted\"", "SHELLY": "$HOME `id` ; a | b & * \\ end",
           "NEWLINE": "line 1\nline 2", "EMPTY": ""}


@pytest.fixture
def remote(systemd_host, arun):
    """A Remote on the systemd host; the units of the test are stopped and reset at its end."""
    node = SshNode(systemd_host.address, port=systemd_host.port, username=systemd_host.user,
                   known_hosts=systemd_host.known_hosts, host_key_policy="strict")
    remote = Remote(node)
    remote.units = []
    yield remote

    async def cleanup():
        for unit in remote.units:
            await remote.sh(f"systemctl stop {unit}.service; systemctl reset-failed {unit}.service")
        await remote.close()
    arun(cleanup())


def service(remote: Remote, command, **kwds) -> Service:
    """A Service with a fresh id, cleaned up by the ``remote`` fixture."""
    kwds.setdefault("service_id", unique_id())
    remote.units.append(kwds["service_id"])
    return Service(command, **kwds)


async def show(remote: Remote, service_id: str, *properties: str) -> dict[str, str]:
    """``systemctl show -p ...`` of the unit, as a dict."""
    text = await remote.out(f"systemctl show {' '.join('-p ' + p for p in properties)} {service_id}.service")
    return dict(line.split("=", 1) for line in text.splitlines())


async def is_active(remote: Remote, service_id: str) -> str:
    return await remote.out(f"systemctl is-active {service_id}.service")


def printed(journal: str) -> list[str]:
    """The messages of the service itself in journalctl's output (systemd's own lines, which quote the
    command line, left out)."""
    return [line.split("]: ", 1)[1] for line in journal.splitlines() if "]: " in line and " systemd[1]: " not in line]


async def processes(remote: Remote, pattern: str) -> list[str]:
    """Live processes of the systemd host whose command line contains ``pattern`` (``ps`` itself excluded)."""
    # the bracket keeps the pattern out of this command line, so pgrep never matches its own shell
    regex = pattern[:-1] + f"[{pattern[-1]}]"
    return (await remote.out(f"pgrep -a -f '{regex}'")).splitlines()


# ---------------------------------------------------------------- start / stop / status / journal
def test_start_makes_an_active_transient_unit_running_the_command(remote, arun):
    """start_command() runs the command as an active transient unit ID.service (backend auto picks systemd)."""
    web = service(remote, "exec sleep 4301")

    async def main():
        started = await remote.step(web.start_command())
        state = await show(remote, web.service_id, "ActiveState", "SubState", "Transient", "Type", "MainPID")
        return started, state, await is_active(remote, web.service_id), await processes(remote, "sleep 4301")

    started, state, active, procs = arun(main())
    assert started.result == 0
    assert active == "active"
    assert (state["ActiveState"], state["SubState"], state["Transient"], state["Type"]) == \
        ("active", "running", "yes", "simple")
    assert [line.split()[0] for line in procs] == [state["MainPID"]]


def test_stop_ends_the_unit_and_leaves_no_process(remote, arun):
    """stop_command() stops the unit: no longer active nor loaded, and no process of it left (children too)."""
    web = service(remote, "sleep 4302 & sleep 4303; wait")

    async def main():
        await remote.step(web.start_command())
        before = await processes(remote, "sleep 430")
        stopped = await remote.step(web.stop_command())
        state = await show(remote, web.service_id, "ActiveState", "LoadState")
        return before, stopped, await is_active(remote, web.service_id), state, await processes(remote, "sleep 430")

    before, stopped, active, state, after = arun(main())
    assert len(before) == 3  # the shell and both sleeps
    assert stopped.result == 0
    assert active == "inactive"
    assert state == {"ActiveState": "inactive", "LoadState": "not-found"}  # a transient unit is gone
    assert after == []


def test_stop_of_a_service_not_running_succeeds(remote, arun):
    """Stopping a service never started (systemctl exit 5, unit not loaded) counts as success."""
    web = service(remote, "sleep 4304")

    async def main():
        return await remote.step(web.stop_command()), await remote.sh(web.stop_command().command_line())

    stopped, (code, _) = arun(main())
    assert code == 5
    assert stopped.result == 0


def test_status_prints_the_systemctl_status_of_the_unit(remote, arun):
    """status_command() prints systemctl status: unit name, active (running), and the command."""
    web = service(remote, "exec sleep 4305")

    async def main():
        await remote.step(web.start_command())
        return await remote.step(web.status_command())

    status = arun(main())
    assert status.result == 0
    assert f"{web.service_id}.service" in status.stdout
    assert "Active: active (running)" in status.stdout
    assert "sleep 4305" in status.stdout


def test_status_with_output_writes_it_to_a_remote_file(remote, arun):
    """status_command(output=F) prints nothing and writes the status to remote file F (a name with spaces)."""
    web = service(remote, "exec sleep 4306")
    output = f"/tmp/status of {web.service_id}.txt"

    async def main():
        await remote.step(web.start_command())
        status = await remote.step(web.status_command(output=output))
        return status, await remote.out(f"cat '{output}'; rm -f '{output}'")

    status, written = arun(main())
    assert (status.result, status.stdout) == (0, "")
    assert f"{web.service_id}.service" in written and "Active: active (running)" in written


def test_status_of_a_stopped_service_is_an_answer_not_a_failure(remote, arun):
    """status_command() of a stopped service: systemctl says 3 (inactive) or 4 (no such unit), the Run succeeds."""
    web = service(remote, "exec sleep 4307")

    async def main():
        await remote.step(web.start_command())
        await remote.step(web.stop_command())
        return await remote.step(web.status_command()), await remote.sh(web.status_command().command_line())

    status, (code, _) = arun(main())
    assert code in (3, 4)
    assert status.result == 0


def test_journal_shows_what_the_service_printed(remote, arun):
    """journal_command() shows the lines the service wrote on stdout and stderr."""
    web = service(remote, "echo to-stdout-4308; echo to-stderr-4308 >&2; exec sleep 4308")

    async def main():
        await remote.step(web.start_command())
        await remote.wait_until(f"journalctl -u {web.service_id}.service -o cat",
                                lambda out: "to-stderr-4308" in out.splitlines())
        return await remote.step(web.journal_command())

    journal = arun(main())
    assert journal.result == 0
    assert printed(journal.stdout) == ["to-stdout-4308", "to-stderr-4308"]


def test_journal_since_shows_only_later_lines(remote, arun):
    """journal_command(since=T) leaves out what the service printed before T, and shows what came after."""
    go = f"/tmp/{unique_id()}.go"
    web = service(remote, f"echo before-4309; while [ ! -e {go} ]; do sleep 0.05; done; echo after-4309; "
                          f"exec sleep 4309")
    journal = f"journalctl -u {web.service_id}.service -o cat"

    async def main():
        await remote.step(web.start_command())
        await remote.wait_until(journal, lambda out: "before-4309" in out.splitlines())
        since = await remote.out("date '+%Y-%m-%d %H:%M:%S.%6N'")
        await remote.sh(f"touch {go}")
        await remote.wait_until(journal, lambda out: "after-4309" in out.splitlines())
        await remote.sh(f"rm -f {go}")
        return await remote.step(web.journal_command()), await remote.step(web.journal_command(since=since))

    everything, later = arun(main())
    assert printed(everything.stdout) == ["before-4309", "after-4309"]
    assert later.result == 0
    assert printed(later.stdout) == ["after-4309"]


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("tty", [True, False])
def test_tty_gives_the_command_a_terminal(remote, arun, tty):
    """tty=True runs the command on a pseudo-terminal (tty prints /dev/pts/N); without it there is none."""
    web = service(remote, "tty; exec sleep 4310", tty=tty)

    async def main():
        await remote.step(web.start_command())
        output = await remote.wait_until(f"journalctl -u {web.service_id}.service -o cat",
                                         lambda out: "/dev/pts/" in out or "not a tty" in out)
        stopped = await remote.step(web.stop_command())
        return output, await is_active(remote, web.service_id), stopped, await processes(remote, "sleep 4310")

    output, active, stopped, left = arun(main())
    assert ("/dev/pts/" in output) is tty
    assert ("not a tty" in output) is not tty
    assert (active, stopped.result, left) == ("inactive", 0, [])


def test_systemd_type_forking_tracks_a_daemon_that_forks_away(remote, arun):
    """systemd_type='forking': the unit stays active once the command has forked a daemon and exited."""
    web = service(remote, "sleep 4311 >/dev/null 2>&1 &", systemd_type="forking")

    async def main():
        started = await remote.step(web.start_command())
        state = await show(remote, web.service_id, "ActiveState", "SubState", "Type", "MainPID")
        procs = await processes(remote, "sleep 4311")
        await remote.step(web.stop_command())
        return started, state, procs, await is_active(remote, web.service_id), await processes(remote, "sleep 4311")

    started, state, procs, active_after, left = arun(main())
    assert started.result == 0
    assert (state["ActiveState"], state["SubState"], state["Type"]) == ("active", "running", "forking")
    assert [line.split()[0] for line in procs] == [state["MainPID"]]  # the forked daemon, guessed as main
    assert (active_after, left) == ("inactive", [])


def test_systemd_type_simple_ends_with_its_command(remote, arun):
    """systemd_type='simple' (default): a command that forks and exits ends the unit, and its children with it."""
    web = service(remote, "sleep 4312 >/dev/null 2>&1 &")

    async def main():
        started = await remote.step(web.start_command())
        active = await remote.wait_until(f"systemctl is-active {web.service_id}.service",
                                         lambda out: out not in ("active", "deactivating"))
        return started, active, await processes(remote, "sleep 4312")

    started, active, left = arun(main())
    assert started.result == 0
    assert active == "inactive"
    assert left == []


def test_environ_values_arrive_intact(remote, arun):
    """environ: every value (spaces, quotes, $, backquotes, backslash, newline, empty) reaches the service as is."""
    web = service(remote, "exec sleep 4313", environ=ENVIRON)

    async def main():
        await remote.step(web.start_command())
        pid = (await show(remote, web.service_id, "MainPID"))["MainPID"]
        return (await remote.sh(f"cat /proc/{pid}/environ"))[1]

    environ = dict(item.split("=", 1) for item in arun(main()).split("\0") if item)
    assert {name: environ.get(name) for name in ENVIRON} == ENVIRON


def test_deferred_command_is_filled_from_a_capture(remote, arun):
    """A Deferred command gets the value captured by an earlier Run of the same scenario when it starts."""
    variables = Variables()
    value = "captured-4314"
    web = service(remote, Deferred("echo got {{word}}; exec sleep 4314", variables))

    async def main():
        capture = SshJob(remote.node, commands=Run("echo", value, capture=Capture("word", variables)),
                         keep_connection=True)
        start = SshJob(remote.node, commands=web.start_command(), keep_connection=True, required=capture)
        ok = await remote.steps(capture, start)
        journal = await remote.wait_until(f"journalctl -u {web.service_id}.service -o cat",
                                          lambda out: f"got {value}" in out.splitlines())
        return ok, journal, await is_active(remote, web.service_id)

    ok, journal, active = arun(main())
    assert ok is True
    assert variables.word == value
    assert f"got {value}" in journal.splitlines()
    assert active == "active"


# ---------------------------------------------------------------- twice, and failures
def test_second_start_with_stop_if_running_replaces_the_unit(remote, arun):
    """A second start (stop_if_running, the default) stops the running unit and starts a new one."""
    web = service(remote, "exec sleep 4315")

    async def main():
        await remote.step(web.start_command())
        first = await show(remote, web.service_id, "MainPID", "InvocationID")
        again = await remote.step(web.start_command())
        second = await show(remote, web.service_id, "MainPID", "InvocationID")
        return first, again, second, await is_active(remote, web.service_id), await processes(remote, "sleep 4315")

    first, again, second, active, procs = arun(main())
    assert again.result == 0
    assert active == "active"
    assert second["InvocationID"] != first["InvocationID"]
    assert [line.split()[0] for line in procs] == [second["MainPID"]]  # the first one is gone


def test_second_start_without_stop_if_running_fails_and_keeps_the_first(remote, arun):
    """Without stop_if_running, starting a running service again fails and leaves the running unit alone."""
    web = service(remote, "exec sleep 4316", stop_if_running=False)

    async def main():
        await remote.step(web.start_command())
        first = await show(remote, web.service_id, "InvocationID")
        again = await remote.step(web.start_command())
        return first, again, await show(remote, web.service_id, "InvocationID"), await is_active(remote, web.service_id)

    first, again, second, active = arun(main())
    assert again.result == 1
    assert "already" in again.stderr
    assert (second, active) == (first, "active")


def test_failing_command_leaves_a_failed_unit_with_its_error(remote, arun):
    """A command that fails at once: start only launches it (success), then the unit is failed with its exit
    code, status says so (exit 3, an answer) and the journal holds its error message."""
    web = service(remote, "echo cannot-start-4317 >&2; exit 7")

    async def main():
        started = await remote.step(web.start_command())
        failed = await remote.wait_until(f"systemctl is-failed {web.service_id}.service", lambda out: out == "failed")
        state = await show(remote, web.service_id, "ActiveState", "Result", "ExecMainStatus")
        status = await remote.step(web.status_command())
        code, _ = await remote.sh(web.status_command().command_line())
        return started, failed, state, status, code, await remote.step(web.journal_command())

    started, failed, state, status, code, journal = arun(main())
    assert started.result == 0
    assert failed == "failed"
    assert state == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "7"}
    assert (status.result, code) == (0, 3)
    assert "status=7" in status.stdout
    assert printed(journal.stdout) == ["cannot-start-4317"]


@pytest.mark.parametrize("stop_if_running", [True, False])
def test_start_after_a_failure_needs_stop_if_running(remote, arun, stop_if_running):
    """stop_if_running also resets a failed unit, so the same id starts again; without it systemd-run refuses."""
    service_id = unique_id()
    failing = service(remote, "exit 7", service_id=service_id)
    working = Service("exec sleep 4318", service_id=service_id, stop_if_running=stop_if_running)

    async def main():
        await remote.step(failing.start_command())
        await remote.wait_until(f"systemctl is-failed {service_id}.service", lambda out: out == "failed")
        return await remote.step(working.start_command()), await is_active(remote, service_id)

    restarted, active = arun(main())
    if stop_if_running:
        assert (restarted.result, active) == (0, "active")
    else:
        assert restarted.result == 1
        assert active == "failed"


def test_stop_if_running_replaces_a_unit_still_activating(remote, arun):
    """stop_if_running also stops a unit caught while activating (a forking command that has not returned)."""
    service_id = unique_id()
    remote.units.append(service_id)
    forking = Service("sleep 4320 >/dev/null 2>&1 &", service_id=service_id, systemd_type="forking")

    async def main():
        # a previous run left a forking unit whose command never returns: 'activating' for 90 s
        await remote.sh(f"systemd-run --no-block --unit={service_id} --service-type=forking sleep 4319")
        stuck = await remote.wait_until(f"systemctl is-active {service_id}.service", lambda out: out == "activating")
        started = await remote.step(forking.start_command())
        return (stuck, started, await is_active(remote, service_id),
                await processes(remote, "sleep 4319"), await processes(remote, "sleep 4320"))

    stuck, started, active, old, new = arun(main())
    assert stuck == "activating"
    assert (started.result, active) == (0, "active")
    assert old == [] and len(new) == 1


def test_process_backend_forced_on_a_systemd_host_makes_no_unit(remote, arun):
    """backend='process' on a systemd host: the daemon runs detached, without any systemd unit."""
    web = service(remote, "exec sleep 4321", backend="process")

    async def main():
        started = await remote.step(web.start_command())
        status = await remote.step(web.status_command())
        load = (await show(remote, web.service_id, "LoadState"))["LoadState"]
        running = await processes(remote, "sleep 4321")
        await remote.step(web.stop_command())
        return started, status, load, running, await processes(remote, "sleep 4321")

    started, status, load, running, left = arun(main())
    assert started.result == 0
    assert status.stdout.startswith(f"{web.service_id}: active")
    assert load == "not-found"
    assert len(running) == 1 and left == []

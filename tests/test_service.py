"""Service: the command lines it produces are POSIX sh with every value shell-quoted.

This machine has no running systemd, so systemd-run / systemctl / journalctl are never run for real:
each systemd line is checked by dash (``sh -n``) and then RUN by dash with a PATH holding only
recording stubs of those programs, so that the argv they receive shows how the shell really split
the line.  Running the services on a real systemd host belongs to a later issue.  The fallback
backend without systemd (``backend="process"``) runs for real, on the testbed's sshd.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import jinja2
import pytest
from asynciojobs import Scheduler, Sequence
from helpers import RecordingFormatter, make_node
from testbed import wait_for

from apssh import Capture, Deferred, LocalNode, Run, Service, SshJob, Variables

DASH = "/usr/bin/dash" if Path("/usr/bin/dash").exists() else "/bin/sh"
STUBBED = ("systemd-run", "systemctl", "journalctl", "script")

# values with everything a shell could mangle: spaces, both quotes, $, backquotes, ;|&, globs, newline
NASTY = "it's a \"test\" $HOME `id` ; echo pwned | cat & * \\ \n end"
COMMAND = "python3 -m http.server 8000 --directory '/srv/my site' \"$HOME\" 2>&1 | tee -a ~/log; echo $((1+1))"
ENVIRON = {"SPACES": "x y  z", "QUOTES": "it's \"quoted\"", "NASTY": NASTY, "EMPTY": ""}


class Stubs:
    """A directory of stub programs recording their argv (one JSON list per call) in ``log``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.log = directory / "calls.jsonl"
        directory.mkdir()
        stub = directory / "stub.py"
        stub.write_text(f"""#!{sys.executable}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open({str(self.log)!r}, "a") as out:
    out.write(json.dumps([name] + sys.argv[1:]) + "\\n")
if name == "systemctl" and sys.argv[1:2] == ["is-active"]:
    sys.exit(0 if os.environ.get("STUB_ACTIVE") == "1" else 3)
if name == "systemctl" and "status" in sys.argv:
    print("stub status of", sys.argv[-1])
""")
        stub.chmod(0o755)
        for name in STUBBED:
            (directory / name).symlink_to(stub)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def run(self, line: str, *, active: bool = False, system_path: bool = False) -> subprocess.CompletedProcess:
        """Run ``line`` with dash in a private HOME (also the cwd).

        PATH holds the stubs ONLY (so no real systemd program can run), or the stubs first then
        the system directories when ``system_path`` is set.
        """
        home = self.directory.parent
        path = str(self.directory) + (":/usr/local/bin:/usr/bin:/bin" if system_path else "")
        env = {"PATH": path, "HOME": str(home), "STUB_ACTIVE": "1" if active else "0"}
        return subprocess.run([DASH, "-c", line], env=env, cwd=home, capture_output=True, text=True,
                              timeout=30, check=False)


@pytest.fixture
def stubs(tmp_path) -> Stubs:
    return Stubs(tmp_path / "bin")


def start_argv(unit: str, command: str, *, systemd_type: str = "simple", environ=None) -> list[str]:
    """The argv systemd-run must receive."""
    return (["systemd-run", f"--unit={unit}", f"--service-type={systemd_type}"]
            + [f"--setenv={name}={value}" for name, value in (environ or {}).items()]
            + ["/bin/sh", "-c", command])


def all_lines(tmp_path, backend: str = "systemd") -> dict[str, str]:
    """Every kind of command line a Service produces for ``backend``, with nasty values."""
    def service(**kwds):
        return Service(COMMAND, service_id="web", backend=backend, **kwds)
    full = service(environ=ENVIRON)
    return {
        "start-stop-if-running": full.start_command().command_line(),
        "start-plain": service(stop_if_running=False).start_command().command_line(),
        "start-tty": service(tty=True, environ=ENVIRON).start_command().command_line(),
        "start-forking": service(systemd_type="forking").start_command().command_line(),
        "stop": full.stop_command().command_line(),
        "status": full.status_command().command_line(),
        "status-output": full.status_command(output=str(tmp_path / "status of 'web'.txt")).command_line(),
        "journal": full.journal_command().command_line(),
        "journal-since": full.journal_command(since="2024-01-01 10:00:00").command_line(),
    }


LINE_KINDS = ["start-stop-if-running", "start-plain", "start-tty", "start-forking", "stop", "status",
              "status-output", "journal", "journal-since"]


@pytest.mark.parametrize("backend", ["systemd", "process", "auto"])
@pytest.mark.parametrize("kind", LINE_KINDS)
def test_every_line_is_accepted_by_dash(tmp_path, kind, backend):
    """`sh -n -c LINE` with dash (a strict POSIX sh) accepts every line a Service produces, for every backend."""
    line = all_lines(tmp_path, backend)[kind]
    result = subprocess.run([DASH, "-n", "-c", line], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", LINE_KINDS)
def test_every_systemd_line_runs_under_dash_without_error(tmp_path, stubs, kind):
    """Every systemd line runs to the end under dash (no bash-only syntax, no stray quote), calling only stubs."""
    result = stubs.run(all_lines(tmp_path)[kind])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert stubs.calls(), "the line called none of the systemd programs"


def test_start_line_passes_every_value_intact(stubs):
    """Without stop_if_running, the line is one systemd-run call whose argv carries unit, type,
    environment values and command exactly, whatever quotes or spaces they hold."""
    service = Service(COMMAND, service_id="web", environ=ENVIRON, stop_if_running=False, backend="systemd")
    line = service.start_command().command_line()
    expected = start_argv("web", COMMAND, environ=ENVIRON)
    assert shlex.split(line) == expected  # shlex round trip
    assert stubs.run(line).returncode == 0
    assert stubs.calls() == [expected]  # and what dash really does


@pytest.mark.parametrize("active", [False, True], ids=["inactive", "active"])
def test_start_with_stop_if_running_stops_an_active_unit_first(stubs, active):
    """stop_if_running: an active unit is stopped, a failed one reset, then systemd-run starts it again."""
    service = Service(COMMAND, service_id="web", environ=ENVIRON, backend="systemd")
    assert stubs.run(service.start_command().command_line(), active=active).returncode == 0
    *before, start = stubs.calls()
    assert start == start_argv("web", COMMAND, environ=ENVIRON)
    # only systemctl calls about this very unit come first (queries allowed), ending with reset-failed
    assert all(call[0] == "systemctl" and call[-1] == "web.service" for call in before)
    assert before[-1] == ["systemctl", "reset-failed", "web.service"]
    if active:
        assert ["systemctl", "stop", "web.service"] in before


def test_tty_wraps_the_command_in_script_quoted_twice(stubs):
    """tty=True: /bin/sh -c receives `script -qfec COMMAND /dev/null`, and that line splits back to COMMAND."""
    service = Service(COMMAND, service_id="web", tty=True, stop_if_running=False, backend="systemd")
    assert stubs.run(service.start_command().command_line()).returncode == 0
    (call,) = stubs.calls()
    assert call[:3] == ["systemd-run", "--unit=web", "--service-type=simple"]
    assert call[3:5] == ["/bin/sh", "-c"]
    inner = call[5]
    assert shlex.split(inner) == ["script", "-qfec", COMMAND, "/dev/null"]
    assert stubs.run(inner).returncode == 0
    assert stubs.calls()[-1] == ["script", "-qfec", COMMAND, "/dev/null"]


@pytest.mark.parametrize("systemd_type", ["simple", "exec", "forking", "oneshot", "notify", "dbus", "idle"])
def test_systemd_type_is_passed_to_systemd_run(stubs, systemd_type):
    """systemd_type becomes --service-type=TYPE."""
    service = Service("sleep 1", service_id="typed", systemd_type=systemd_type, stop_if_running=False,
                      backend="systemd")
    assert stubs.run(service.start_command().command_line()).returncode == 0
    assert stubs.calls() == [start_argv("typed", "sleep 1", systemd_type=systemd_type)]


def test_stop_line_stops_the_unit(stubs):
    """stop_command() runs `systemctl stop ID.service`."""
    assert stubs.run(Service("true", service_id="web", backend="systemd").stop_command().command_line()).returncode == 0
    assert stubs.calls() == [["systemctl", "stop", "web.service"]]


def test_status_line_writes_the_status_to_the_output_file(stubs, tmp_path):
    """status_command(output=F) runs systemctl status and redirects its output to F, a name with spaces and quotes."""
    output = tmp_path / "status of 'web' \"now\".txt"
    line = Service("true", service_id="web", backend="systemd").status_command(output=str(output)).command_line()
    assert stubs.run(line).returncode == 0
    assert stubs.calls() == [["systemctl", "--no-pager", "--full", "status", "web.service"]]
    assert output.read_text() == "stub status of web.service\n"


def test_status_line_without_output_prints_the_status(stubs):
    """status_command() without output prints the status on stdout."""
    result = stubs.run(Service("true", service_id="web", backend="systemd").status_command().command_line())
    assert result.stdout == "stub status of web.service\n"


@pytest.mark.parametrize("since", [None, "2024-01-01 10:00:00", "it's -1h"])
def test_journal_line_passes_since(stubs, since):
    """journal_command(since=S) runs journalctl for the unit, with --since=S kept as one argument."""
    line = Service("true", service_id="web", backend="systemd").journal_command(since=since).command_line()
    assert stubs.run(line).returncode == 0
    expected = ["journalctl", "--no-pager", "--unit=web.service"] + ([f"--since={since}"] if since else [])
    assert stubs.calls() == [expected]


def test_commands_are_runs_with_labels_and_tolerated_answers():
    """The *_command() methods return Run objects; stop tolerates 'not loaded' (5), status 'inactive' (3, 4)."""
    service = Service("true", service_id="web", verbose=True)
    start, stop, status = service.start_command(), service.stop_command(), service.status_command()
    assert all(isinstance(cmd, Run) for cmd in (start, stop, status, service.journal_command()))
    assert "web" in start.label_line() and "web" in stop.label_line()
    assert start.verbose is True
    assert stop.is_success(5) and not stop.is_success(1)
    assert status.is_success(3) and status.is_success(4) and not status.is_success(1)
    assert service.start_command(label="go").label_line() == "go"
    assert service.stop_command(allowed_exits=[7]).is_success(7)


# ---------------------------------------------------------------- Deferred
def test_deferred_command_is_rendered_at_run_time_then_quoted(stubs):
    """A Deferred command is rendered when the Run starts (not before), then quoted like a plain one."""
    variables = Variables()
    service = Service(Deferred("logger -t web {{msg}}", variables), service_id="web", stop_if_running=False,
                      backend="systemd")
    start = service.start_command()
    with pytest.raises(jinja2.UndefinedError):
        start.command_line()  # nothing to render yet
    variables.msg = NASTY
    line = start.command_line()
    assert stubs.run(line).returncode == 0
    assert stubs.calls() == [start_argv("web", f"logger -t web {NASTY}")]
    variables.msg = "second value"
    assert shlex.split(start.command_line())[-1] == "logger -t web second value"


def test_deferred_service_from_a_value_captured_on_a_real_node(testbed, tmp_path, monkeypatch):
    """End to end: a value captured over SSH feeds a Deferred Service command, which dash runs quoted."""
    stubs = Stubs(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(stubs.directory))  # the LocalNode's /bin/sh only finds the stubs
    variables = Variables()
    value = "it's a \"test\" $HOME ; `id`"
    node = make_node(testbed, "node1")
    service = Service(Deferred("echo {{msg}}", variables), service_id="captured", stop_if_running=False,
                      backend="systemd")
    scheduler = Scheduler(Sequence(
        SshJob(node, commands=Run("printf '%s\\n'", shlex.quote(value), capture=Capture("msg", variables))),
        SshJob(LocalNode(formatter=RecordingFormatter()), commands=service.start_command())), timeout=30)
    assert scheduler.run() is True
    assert variables.msg == value
    assert stubs.calls() == [start_argv("captured", f"echo {value}")]


# ---------------------------------------------------------------- invalid arguments
@pytest.mark.parametrize("systemd_type", ["bogus", "", "Simple", None])
def test_invalid_systemd_type_raises(systemd_type):
    """An unknown systemd_type raises ValueError naming the valid ones."""
    with pytest.raises(ValueError, match="simple"):
        Service("true", service_id="web", systemd_type=systemd_type)


@pytest.mark.parametrize("service_id", ["", " ", "a/b", "has space", "it's", "a;b", "x" * 300, "é", None, 42])
def test_invalid_service_id_raises(service_id):
    """A service_id that is not a systemd unit name raises ValueError at build time."""
    with pytest.raises(ValueError, match="service_id"):
        Service("true", service_id=service_id)


@pytest.mark.parametrize("service_id", ["web", "my-web_2.0", "getty@tty1", "a:b", "x" * 247])
def test_valid_service_ids_are_accepted(service_id):
    """Unit names with the characters systemd allows are accepted, and appear as ID.service."""
    assert f"{service_id}.service" in Service("true", service_id=service_id).stop_command().command_line()


def test_invalid_command_or_environment_raises():
    """A command that is neither str nor Deferred raises TypeError; a bad variable name raises ValueError."""
    with pytest.raises(TypeError):
        Service(["sleep", "1"], service_id="web")
    for name in ("1BAD", "has space", "A=B", ""):
        with pytest.raises(ValueError):
            Service("true", service_id="web", environ={name: "x"})


# ---------------------------------------------------------------- backends without systemd
def unique_id() -> str:
    return f"apssh-test-{uuid.uuid4().hex[:12]}"


def test_auto_backend_picks_what_the_host_has(stubs):
    """backend='auto' decides on the host: systemd when /run/systemd/system exists, else the process backend."""
    line = Service("sleep 1", service_id="web").status_command().command_line()
    result = stubs.run(line, system_path=True)  # the stubs shadow the real systemd programs
    if Path("/run/systemd/system").is_dir():
        assert stubs.calls() == [["systemctl", "--no-pager", "--full", "status", "web.service"]]
    else:
        assert stubs.calls() == []
        assert (result.returncode, result.stdout) == (3, "web: inactive\n")


def run_on(node, arun, *commands) -> list[str]:
    """Run ``commands`` in one SshJob (connection kept) and return the stdout lines they printed."""
    node.formatter.records.clear()

    async def main():
        return await Scheduler(SshJob(node, commands=list(commands), keep_connection=True), timeout=30).co_run()

    assert arun(main()) is True
    return node.formatter.stdout()


def test_process_backend_runs_a_daemon_on_a_real_node(testbed, arun):
    """backend='process' on the testbed's sshd: start detaches the command with its environment, status
    and journal report on it, stop kills its whole process group (shell and children)."""
    pattern = "sleep 4251"
    service = Service(f"echo \"started with $GREETING\"; {pattern}; echo never", service_id=unique_id(),
                      environ={"GREETING": "it's a \"greeting\""}, backend="process")
    node = make_node(testbed, "node1")
    try:
        run_on(node, arun, service.start_command())
        assert wait_for(lambda: len(testbed.remote_processes(pattern)) == 2)  # sh -c ... and sleep
        status, *journal = run_on(node, arun, service.status_command(), service.journal_command())
        assert status.startswith(f"{service.service_id}: active")
        assert journal == ["started with it's a \"greeting\"\n"]
        run_on(node, arun, service.stop_command())
        assert wait_for(lambda: not testbed.remote_processes(pattern))
        status, *journal = run_on(node, arun, service.status_command(), service.journal_command())
        assert status == f"{service.service_id}: inactive\n"
        assert journal == ["started with it's a \"greeting\"\n"]  # "never": the whole group was killed
    finally:
        run_on(node, arun, service.stop_command())
        arun(node.close())


@pytest.mark.parametrize("stop_if_running", [True, False])
def test_process_backend_second_start(testbed, arun, stop_if_running):
    """A second start replaces the running daemon (stop_if_running), or fails without touching it."""
    pattern = "sleep 4253"
    service = Service(pattern, service_id=unique_id(), backend="process", stop_if_running=stop_if_running)
    node = make_node(testbed, "node1")

    def sleeps() -> list[int]:
        return [proc.pid for proc in testbed.remote_processes(pattern) if proc.name() == "sleep"]

    try:
        run_on(node, arun, service.start_command())
        assert wait_for(lambda: len(sleeps()) == 1)
        first = sleeps()
        again = SshJob(node, commands=service.start_command(), keep_connection=True, critical=False)
        assert arun(Scheduler(again, timeout=30).co_run()) is True
        if stop_if_running:
            assert again.result() == 0
            assert wait_for(lambda: len(sleeps()) == 1 and sleeps() != first)
        else:
            assert again.result() == 1
            assert any("already running" in line for line in node.formatter.stderr())
            assert sleeps() == first
    finally:
        run_on(node, arun, service.stop_command())
        arun(node.close())
    assert wait_for(lambda: not testbed.remote_processes(pattern))


def test_process_backend_on_a_local_node_works_from_any_directory(tmp_path, monkeypatch):
    """On a LocalNode (whose commands run in the local cwd), the process backend keeps its files in $HOME."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    service = Service("sleep 4254", service_id=unique_id(), backend="process")
    formatter = RecordingFormatter()
    node = LocalNode(formatter=formatter)
    try:
        assert Scheduler(SshJob(node, commands=[service.start_command(), service.status_command()]),
                         timeout=30).run() is True
        assert formatter.stdout()[0].startswith(f"{service.service_id}: active")
    finally:
        assert Scheduler(SshJob(node, commands=[service.stop_command(), service.status_command()]),
                         timeout=30).run() is True
    assert formatter.stdout()[-1] == f"{service.service_id}: inactive\n"
    assert list(elsewhere.iterdir()) == []
    assert (home / ".apssh-remote" / "services" / f"{service.service_id}.log").exists()

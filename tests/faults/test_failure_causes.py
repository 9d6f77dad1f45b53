"""Issue 11.6: every failure says why, in the summary, the -m marks and the TUI record.

What the user sees: a session killed under a running command is "connection lost", a server
that stops answering is "server not responding to keepalive after N s" (within a bound set
by --keepalive), a closed port is "unreachable (connection refused)"; never "None". A
missing -k file is a usage error (exit 2).
"""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import psutil
from testbed import wait_for

from apssh.apssh import Apssh

from .support import HANG_BOUND, finish, hp, session_tree, signal_all
from .support import start_tool as start


def wait_started(testbed, outdir: Path, target: str, token: str) -> None:
    """Until the remote command runs and its first line has reached DIR/<target>."""
    out = outdir / target
    assert wait_for(lambda: len(testbed.remote_processes(f"sleep {token}")) == 1
                    and out.is_file() and out.read_text() == "started\n", timeout=HANG_BOUND)


def test_killed_session_is_connection_lost(testbed, tmp_path, hygiene):
    """The server side of the session dies under a running command: "connection lost" in the
    summary and the mark, exit 1, and the line received before is kept."""
    target = hp(testbed, "node1")
    outdir = tmp_path / "out"
    process = start(testbed, "apssh", "-m", "-o", str(outdir), "-t", target,
                    f"echo started; sleep {hygiene.token}", cwd=tmp_path)
    wait_started(testbed, outdir, target, hygiene.token)
    dying = session_tree(testbed, f"sleep {hygiene.token}")
    signal_all(dying, signal.SIGSTOP)  # the host's side dies at once: no exit status is sent
    signal_all(dying, signal.SIGKILL)
    _, err = finish(process)
    assert process.returncode == 1, err
    assert f"1 connection lost: {target}" in err
    assert "None" not in err
    assert (outdir / "1failed" / target).read_text() == "connection lost\n"
    assert (outdir / target).read_text() == "started\n"


def test_silent_server_is_reported_after_keepalives(testbed, tmp_path, hygiene):
    """The server stops answering (its session frozen): with --keepalive 1,2 the run ends and says
    "server not responding to keepalive after 2 s"."""
    target = hp(testbed, "node2")
    outdir = tmp_path / "out"
    process = start(testbed, "apssh", "--keepalive", "1,2", "-m", "-o", str(outdir), "-t", target,
                    f"echo started; sleep {hygiene.token}", cwd=tmp_path)
    wait_started(testbed, outdir, target, hygiene.token)
    frozen = session_tree(testbed, f"sleep {hygiene.token}")
    signal_all(frozen, signal.SIGSTOP)
    try:
        _, err = finish(process)
    finally:
        signal_all(frozen, signal.SIGKILL)  # the dead host, gone for good
        psutil.wait_procs([p for p in frozen if p.is_running()], timeout=10)
    cause = "server not responding to keepalive after 2 s"
    assert process.returncode == 1, err
    assert f"1 {cause}: {target}" in err
    assert (outdir / "1failed" / target).read_text() == f"{cause}\n"


def test_refused_port_says_connection_refused(testbed, tmp_path, capsys):
    """A closed port: "unreachable (connection refused)" in the summary, the cause in the mark."""
    from helpers import free_port

    dead = f"127.0.0.31:{free_port('127.0.0.31')}"
    outdir = tmp_path / "out"
    assert Apssh().main("-m", "-o", str(outdir), "-t", dead, "true") == 1
    assert f"1 unreachable (connection refused): {dead}" in capsys.readouterr().err
    assert (outdir / "1failed" / dead).read_text() == "unreachable: connection refused\n"


def test_missing_key_file_is_a_usage_error(testbed, capsys):
    """-k naming a file that does not exist: exit 2, the message names it; nothing connects."""
    logins = testbed.count_log(testbed.host("node1"), "Connection from")
    assert Apssh().main("-k", "/nonexistent/key", "-t", hp(testbed, "node1"), "true") == 2
    assert "apssh: -k/--key: key file not found: /nonexistent/key" in capsys.readouterr().err
    assert testbed.count_log(testbed.host("node1"), "Connection from") == logins


def test_bad_keepalive_is_a_usage_error(capsys):
    """--keepalive takes INTERVAL[,COUNT]: anything else is a usage error naming the option."""
    assert Apssh().main("--keepalive", "soon", "-t", "h", "true") == 2
    assert "--keepalive" in capsys.readouterr().err


def test_tui_record_says_connection_lost(testbed, tmp_path, hygiene):
    """apssh-tui --headless: a job whose session dies is unreachable in run.json with "connection lost"."""
    node1 = testbed.host("node1")
    scenario = tmp_path / "scenario.yaml"
    marker = tmp_path / "started"
    scenario.write_text(textwrap.dedent(f"""\
        nodes:
          - id: n
            hostname: "{node1.address}"
            port: {node1.port}
            username: {testbed.user}
            known_hosts: {testbed.all_known_hosts}
        jobs:
          - id: long
            node: n
            command: touch {marker}; sleep {hygiene.token}
        """))
    records = tmp_path / "records"
    process = start(testbed, "apssh-tui", "--headless", "--record-dir", str(records), str(scenario), cwd=tmp_path)
    assert wait_for(lambda: marker.exists() and len(testbed.remote_processes(f"sleep {hygiene.token}")) == 1,
                    timeout=HANG_BOUND)
    dying = session_tree(testbed, f"sleep {hygiene.token}")
    signal_all(dying, signal.SIGSTOP)
    signal_all(dying, signal.SIGKILL)
    out, _ = finish(process)
    assert process.returncode == 1, out
    (record,) = records.iterdir()
    (job,) = [j for j in json.loads((record / "run.json").read_text())["jobs"] if j["label"] != "scheduler"]
    assert job["state"] == "unreachable"
    assert "connection lost" in job["error"]

"""Issue 11.3: ending a run: --timeout, Ctrl-C (SIGINT), SIGTERM and SIGHUP.

What the user sees: the command returns (within a generous bound, never hangs), the remote
commands still running are killed, the summary and the -m marks are written and name the
cause ("timed out after 2s", "interrupted by SIGTERM"), no traceback; what was received
before the stop is in the -o files.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from testbed import wait_for

from .support import HANG_BOUND, finish, hp
from .support import start_tool as command

VENV_BIN = Path(sys.executable).parent
# a run that ends on its own never takes this long: reaching it means the command hung
# long enough for a fast host to connect and finish on a loaded machine
RUN_TIMEOUT = "20"


def test_timeout_stops_hung_hosts_and_reports_them(testbed, tmp_path, hygiene):
    """--timeout: the host that finished is ok, the hung one is killed and reported timed out,
    in the summary and in its -m mark."""
    fast, hung = hp(testbed, "node1"), hp(testbed, "node2")
    outdir = tmp_path / "out"
    script = f'case "$SSH_CONNECTION" in *" 127.0.0.12 "*) sleep {hygiene.token};; esac; echo done'
    process = command(testbed, "apssh", "--timeout", RUN_TIMEOUT, "-m", "-o", str(outdir), "-t", fast,
                      "-t", hung, script, cwd=tmp_path)
    _, err = finish(process)
    assert process.returncode == 1, err
    assert f"1 ok, 1 timed out after {RUN_TIMEOUT}s: {hung}" in err
    assert "Traceback" not in err
    assert (outdir / "0ok" / fast).read_text() == "0\n"
    assert (outdir / "1failed" / hung).read_text() == f"timed out after {RUN_TIMEOUT}s\n"
    assert not testbed.remote_processes(hygiene.token)


def test_timeout_marks_targets_never_started(testbed, tmp_path, hygiene):
    """-w 1 and two hung targets: the second never starts before the timeout, and says so."""
    first, second = hp(testbed, "node1"), hp(testbed, "node2")
    process = command(testbed, "apssh", "-w", "1", "--timeout", "3", "-t", first, "-t", second,
                      f"sleep {hygiene.token}", cwd=tmp_path)
    _, err = finish(process)
    assert process.returncode == 1
    assert f"1 timed out after 3s: {first}" in err
    assert f"1 not started (timed out after 3s): {second}" in err


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_kills_remote_commands_and_writes_summary_and_marks(testbed, tmp_path, hygiene, signame):
    """A signal while commands run: remote commands killed, summary and marks written, no traceback,
    exit status 128 + the signal number."""
    targets = [hp(testbed, "node1"), hp(testbed, "node3")]
    outdir = tmp_path / "out"
    process = command(testbed, "apssh", "-m", "-o", str(outdir), *(a for t in targets for a in ("-t", t)),
                      f"echo started; sleep {hygiene.token}", cwd=tmp_path)
    try:
        # both commands run, and their first line has been received (it must survive the stop)
        assert wait_for(lambda: len(testbed.remote_processes(f"sleep {hygiene.token}")) == 2
                        and all((outdir / t).is_file() and (outdir / t).read_text() == "started\n" for t in targets),
                        timeout=HANG_BOUND)
        process.send_signal(getattr(signal, signame))
        _, err = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + getattr(signal, signame), err
    assert "Traceback" not in err
    assert f"2 interrupted by {signame}: " in err
    for target in targets:
        assert (outdir / "1failed" / target).read_text() == f"interrupted by {signame}\n"
        assert (outdir / target).read_text() == "started\n"
    assert wait_for(lambda: not testbed.remote_processes(hygiene.token), timeout=HANG_BOUND)


@pytest.mark.parametrize("tool", ["appush", "appull"])
def test_timeout_applies_to_copies(testbed, tmp_path, tool, hygiene):
    """appush/appull take --timeout too: a copy stuck on a remote fifo is stopped and reported."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    local = tmp_path / "local.txt"
    local.write_text("data\n")
    target = hp(testbed, "node1")
    paths = [str(local), f"@:{fifo}"] if tool == "appush" else [f"@:{fifo}", str(tmp_path / "copy")]
    process = command(testbed, tool, "--timeout", "3", "-t", target, *paths, cwd=tmp_path)
    try:
        _, err = finish(process)
    finally:
        # the SFTP server stays blocked opening the fifo until someone opens the other end
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
    assert process.returncode == 1, err
    assert f"1 timed out after 3s: {target}" in err

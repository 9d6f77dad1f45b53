"""Helpers shared by the fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testbed import Testbed

VENV_BIN = Path(sys.executable).parent
#: how long a command under test may take before it is taken for hung (a bound, not a timing check)
HANG_BOUND = 120


def start_tool(testbed: Testbed, tool: str, *argv: str, cwd: Path) -> subprocess.Popen:
    """The installed ``tool`` started with ``argv`` in its own process group, output captured."""
    env = {**os.environ, "HOME": str(testbed.home)}
    return subprocess.Popen([str(VENV_BIN / tool), *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def finish(process: subprocess.Popen) -> tuple[str, str]:
    """The output of ``process`` once it ended; killed (and the test failed) if it hangs."""
    try:
        return process.communicate(timeout=HANG_BOUND)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise


def hp(testbed: Testbed, name: str) -> str:
    """``address:port`` of testbed host ``name``, as a -t target."""
    host = testbed.host(name)
    return f"{host.address}:{host.port}"


def session_tree(testbed: Testbed, pattern: str) -> list:
    """The server side of the SSH session running the remote process matching ``pattern``: every
    process from the per-connection sshd down to that process (the listener excluded)."""
    import psutil

    listeners = {host.pid for host in testbed.hosts}
    (leaf,) = testbed.remote_processes(pattern)
    tree = [leaf]
    parent = leaf.parent()
    while parent is not None and parent.pid not in listeners and parent.pid != 1:
        tree.append(parent)
        parent = parent.parent()
    assert parent is not None and parent.pid in listeners, "the session is not served by a testbed sshd"
    return [proc for proc in tree if isinstance(proc, psutil.Process)]


def signal_all(processes: list, signum: int) -> None:
    """Send ``signum`` to each of ``processes`` (those already gone are skipped)."""
    import psutil

    for proc in processes:
        try:
            proc.send_signal(signum)
        except psutil.NoSuchProcess:
            pass

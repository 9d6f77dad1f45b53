"""Issue 11.7: local limits are not remote failures.

What the user sees: with a low open-file limit and a window wider than it allows, every host
still runs (the limit is raised, or the window lowered with a message); a local error is never
reported as a host's state.

There is no many-host fixture: 255 distinct targets are names h001..h255 that ~/.ssh/config
maps (HostName, Port) round-robin onto the testbed's four nodes.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
HOSTS = 255
HANG_BOUND = 600


@pytest.fixture
def many_names_home(testbed, tmp_path) -> Path:
    """A HOME whose ~/.ssh/config names HOSTS aliases of the four nodes; yields the HOME."""
    home = tmp_path / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copy(testbed.client_key, ssh / "id_ed25519")
    (ssh / "id_ed25519").chmod(0o600)
    lines = []
    for index in range(1, HOSTS + 1):
        node = testbed.nodes[index % len(testbed.nodes)]
        lines += [f"Host h{index:03d}", f"    HostName {node.address}", f"    Port {node.port}"]
    (ssh / "config").write_text("\n".join(lines) + "\n")
    return home


def run_with_limit(home: Path, cwd: Path, soft: int, hard: int) -> subprocess.CompletedProcess:
    """apssh -w 255 on the 255 aliases, in a process whose open-file limit is (soft, hard)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([str(VENV_BIN / "apssh"), "-w", str(HOSTS), "--host-key-policy", "ignore",
                           "-t", f"h[001-{HOSTS}]", "echo alive"], cwd=cwd, env=env, text=True,
                          capture_output=True, preexec_fn=limit, timeout=HANG_BOUND)


def test_low_soft_limit_is_raised(testbed, many_names_home, tmp_path):
    """Soft limit 256, hard limit higher, -w 255: the soft limit is raised, every host runs."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 1024, "this test needs a hard open-file limit above 1024"
    result = run_with_limit(many_names_home, tmp_path, 256, hard)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"apssh: {HOSTS} targets, {HOSTS} ok" in result.stderr
    assert result.stdout.count(":alive\n") == HOSTS
    assert "Too many open files" not in result.stderr


def test_window_lowered_to_fit_a_hard_limit(testbed, many_names_home, tmp_path):
    """Soft and hard limits 256, -w 255: the window is lowered with a message, every host runs,
    none is reported unreachable for a local reason."""
    result = run_with_limit(many_names_home, tmp_path, 256, 256)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "apssh: -w 255 lowered to " in result.stderr
    assert "open-file limit (256)" in result.stderr
    assert f"apssh: {HOSTS} targets, {HOSTS} ok" in result.stderr
    assert "unreachable" not in result.stderr

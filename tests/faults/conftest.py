"""Fixtures of the fault suite: every fault test leaves nothing behind.

``hygiene`` (autouse) snapshots, before each test, the connections to the testbed hosts,
this process's file descriptors and the remote copy directories (``~/.apssh-remote`` of
every login), and checks afterwards that the test added none of them and that no remote
process carrying the test's token (``hygiene.token``, to put in remote commands, e.g.
``sleep {token}``) is alive.
"""

from __future__ import annotations

import os
import pwd
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from helpers import connection_keys
from testbed import Testbed, wait_for

# generous bound for the leftovers of a test to go away (connections close asynchronously)
SETTLE_SECONDS = 30.0


def remote_copy_dirs(testbed: Testbed) -> set[Path]:
    """Every entry of ``~/.apssh-remote`` of the logins the testbed serves."""
    entries = set()
    for user in filter(None, [testbed.user, testbed.second_user]):
        directory = Path(pwd.getpwnam(user).pw_dir) / ".apssh-remote"
        if directory.is_dir():
            entries.update(directory.iterdir())
    return entries


def open_fds() -> set[str]:
    """What this process's file descriptors point to."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            continue
    return found


@dataclass
class Hygiene:
    """What a fault test must leave as it found it; see the module doc."""

    testbed: Testbed | None
    token: str = field(default_factory=lambda: f"{secrets.randbelow(10**6) + 10**6}.{secrets.randbelow(10**4)}")
    connections: set = field(default_factory=set)
    fds: set = field(default_factory=set)
    copies: set = field(default_factory=set)

    def snapshot(self) -> None:
        if self.testbed is not None and self.testbed.started:
            self.connections = connection_keys(self.testbed)
            self.copies = remote_copy_dirs(self.testbed)
        self.fds = open_fds()

    def leaked_copies(self) -> set[Path]:
        """Copy directories made since the snapshot that no live process uses: other test
        sessions on this machine (same root login) have theirs in use while they run."""
        new = remote_copy_dirs(self.testbed) - self.copies
        if not new:
            return new
        in_use = set()
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            words = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            in_use.update(path for path in new if path.name in words)
        return new - in_use

    def leftovers(self) -> list[str]:
        """What the test left behind, once things had time to settle ([] when clean)."""
        problems = []
        bed = self.testbed
        if bed is not None and bed.started:
            if not wait_for(lambda: not connection_keys(bed) - self.connections, timeout=SETTLE_SECONDS):
                problems.append(f"connections still established: {connection_keys(bed) - self.connections}")
            if not wait_for(lambda: not bed.remote_processes(self.token), timeout=SETTLE_SECONDS):
                problems.append(f"remote processes alive: {[p.cmdline() for p in bed.remote_processes(self.token)]}")
            if not wait_for(lambda: not self.leaked_copies(), timeout=SETTLE_SECONDS):
                problems.append(f"remote files left: {self.leaked_copies()}")
        # sockets of the connections above are the fds that matter; pipes/files too
        if not wait_for(lambda: not open_fds() - self.fds, timeout=SETTLE_SECONDS):
            problems.append(f"file descriptors leaked: {sorted(open_fds() - self.fds)}")
        return problems


@pytest.fixture(autouse=True)
def hygiene(request) -> Hygiene:
    """Checks that the test leaves no connection, fd, remote process or remote copy behind."""
    bed = request.getfixturevalue("testbed") if "testbed" in request.fixturenames else None
    state = Hygiene(bed)
    state.snapshot()
    yield state
    problems = state.leftovers()
    assert not problems, "; ".join(problems)

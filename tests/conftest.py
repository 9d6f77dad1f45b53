"""Pytest fixtures for the apssh test suite: real private sshd servers on loopback.

* ``isolated_home`` (session, autouse): points ``$HOME`` at a private directory
  holding a fresh client key and an empty known_hosts, and removes
  ``SSH_AUTH_SOCK``/``SSH_AGENT_PID``, for the whole session, so no test ever
  reads or writes the real ``~/.ssh`` or uses an agent. Restored at the end.
* ``testbed`` (session): the started :class:`testbed.Testbed` (4 nodes, 3 gateways),
  started on first use and stopped at the end of the session.
* ``known_hosts_file`` (function): a fresh known_hosts file with every testbed host.
* ``arun`` : :func:`testbed.run_async`, to call ``asyncio.run`` with a timeout
  from plain sync tests (this project does not use pytest-asyncio).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed import Testbed, run_async

# environment variables the session overrides; restored afterwards
_ISOLATED_VARIABLES = ("HOME", "SSH_AUTH_SOCK", "SSH_AGENT_PID")


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """The (not yet started) session Testbed, whose client HOME is now ``$HOME``."""
    bed = Testbed(tmp_path_factory.mktemp("testbed"))
    bed.setup_client()
    saved = {name: os.environ.get(name) for name in _ISOLATED_VARIABLES}
    os.environ["HOME"] = str(bed.home)
    os.environ.pop("SSH_AUTH_SOCK", None)
    os.environ.pop("SSH_AGENT_PID", None)
    try:
        yield bed
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def testbed(isolated_home: Testbed) -> Iterator[Testbed]:
    """The running testbed: all sshd started once per session, stopped at its end."""
    isolated_home.start()
    try:
        yield isolated_home
    finally:
        isolated_home.stop()


@pytest.fixture
def known_hosts_file(testbed: Testbed, tmp_path: Path) -> Path:
    """Path of a fresh known_hosts file (in tmp_path) listing every testbed host."""
    return testbed.write_known_hosts(tmp_path / "known_hosts")


@pytest.fixture(scope="session")
def arun():
    """``arun(coro, timeout=60.0)`` runs ``coro`` with ``asyncio.run`` and returns its result."""
    return run_async


# ---------------------------------------------------------------- a real systemd host (issue 5)
@pytest.fixture(scope="session")
def systemd_host(isolated_home: Testbed, tmp_path_factory: pytest.TempPathFactory):
    """A booted Debian tree with a real systemd (tests/systemd_host.py), reachable as root over SSH.

    Skipped only when not root. As root, a failure to provision or boot it FAILS the tests that
    use it. The first use provisions the cached tree if needed (about 1-2 minutes, progress on
    the terminal); later sessions reuse it. Attributes: ``address``, ``port``, ``user``,
    ``known_hosts`` (a file listing its host key), ``pid`` (of systemd-nspawn).
    """
    import sys

    import systemd_host as module

    if os.geteuid() != 0:
        pytest.skip("the systemd host needs root (debootstrap, systemd-nspawn): run the tests as root")

    def log(text: str) -> None:
        # progress on the real terminal, even under pytest's capture
        print(text, file=sys.__stderr__, flush=True)

    failure = None
    try:
        module.provision(log=log)
        host = module.SystemdHost(tmp_path_factory.mktemp("systemd-host"), isolated_home.client_pubkey, log=log)
        host.start()
    except (module.SystemdHostError, OSError, subprocess.SubprocessError) as exc:
        failure = f"systemd host: {exc}"
    if failure is not None:  # root: a host that cannot be provisioned or booted is a failure, not a skip
        pytest.fail(failure, pytrace=False)
    host.known_hosts = host.base / "known_hosts"
    host.known_hosts.write_text(host.known_hosts_entry + "\n")
    try:
        yield host
    finally:
        host.stop()

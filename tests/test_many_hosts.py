"""About 100 hosts (issue 8): one sshd listening on up to 16 loopback addresses, stock limits.

Every host answers through the ``apssh`` command and through the library, with one connection
each, counted on the server side (each sshd logs the address a connection came in on).
"""

from __future__ import annotations

import shutil

import pytest
from asynciojobs import Scheduler
from helpers import RecordingFormatter
from testbed import MAX_LISTEN_ADDRESSES

from apssh import SshJob, SshNode
from apssh.apssh import Apssh

HOSTS = 100
# every address a host: 127.0.2.1 .. 127.0.2.100
ADDRESSES = [f"127.0.2.{i}" for i in range(1, HOSTS + 1)]


@pytest.fixture(scope="module")
def many_hosts(testbed):
    """``[(address, port, server)]`` for 100 hosts served by 7 sshd (16 addresses each at most)."""
    servers = []
    try:
        for start in range(0, HOSTS, MAX_LISTEN_ADDRESSES):
            servers.append(testbed.start_server(f"many{start}", ADDRESSES[start:start + MAX_LISTEN_ADDRESSES]))
        yield [(address, server.port, server) for server in servers for address in server.addresses]
    finally:
        for server in servers:
            testbed.stop_server(server)


def login(testbed) -> str:
    """The second user when there is one: its /bin/sh reads no rc file (root's may be slow)."""
    return testbed.second_user or testbed.user


def accepted(testbed, hosts) -> dict[str, int]:
    """Connections each host's sshd accepted on its address so far."""
    return {address: testbed.count_log(server, f"on {address} port {port}") for address, port, server in hosts}


@pytest.fixture
def private_home(testbed, tmp_path, monkeypatch):
    """A HOME with the client key and an empty known_hosts, so that 100 new hosts land there."""
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o700)
    shutil.copy(testbed.client_key, ssh / "id_ed25519")
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_every_host_answers_through_the_command_with_one_connection_each(testbed, many_hosts, private_home, capsys):
    """apssh -t <100 targets> prints each host's own address, one connection per host."""
    before = accepted(testbed, many_hosts)
    targets = [f"{login(testbed)}@{address}:{port}" for address, port, _ in many_hosts]

    status = Apssh().main("-t", " ".join(targets), 'set -- $SSH_CONNECTION; echo "answer $3"')

    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    # the prefix keeps the port (not 22), and each host answers with its own address
    assert sorted(lines) == sorted(f"{address}:{port}:answer {address}" for address, port, _ in many_hosts)
    after = accepted(testbed, many_hosts)
    assert {address: after[address] - before[address] for address in after} == dict.fromkeys(ADDRESSES, 1)
    assert len((private_home / ".ssh" / "known_hosts").read_text().splitlines()) == HOSTS


def test_every_host_answers_through_the_library_with_one_connection_each(testbed, many_hosts, tmp_path):
    """100 SshNode, two jobs each, in one scheduler: each host answers, one connection per host."""
    before = accepted(testbed, many_hosts)
    formatter = RecordingFormatter()
    known = tmp_path / "known_hosts"
    scheduler = Scheduler(timeout=120)
    for address, port, _ in many_hosts:
        node = SshNode(address, port=port, username=login(testbed), known_hosts=known, formatter=formatter)
        first = SshJob(node, command='set -- $SSH_CONNECTION; echo "first $3"', scheduler=scheduler)
        SshJob(node, command='set -- $SSH_CONNECTION; echo "second $3"', scheduler=scheduler, required=first)

    assert scheduler.run() is True

    expected = [f"first {a}\n" for a in ADDRESSES] + [f"second {a}\n" for a in ADDRESSES]
    assert sorted(formatter.stdout()) == sorted(expected)
    after = accepted(testbed, many_hosts)
    assert {address: after[address] - before[address] for address in after} == dict.fromkeys(ADDRESSES, 1)

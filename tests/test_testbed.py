"""The testbed itself works: checked with the OpenSSH client and asyncssh, not apssh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import asyncssh
import pytest
from testbed import Testbed, wait_for

HOST_NAMES = ["node1", "node2", "node3", "node4", "gw1", "gw2", "gw3"]


def ssh(testbed: Testbed, *args, **kwargs) -> subprocess.CompletedProcess:
    """Run the OpenSSH client built by testbed.ssh_command, capturing text output."""
    return subprocess.run(testbed.ssh_command(*args, **kwargs),
                          check=False, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name", HOST_NAMES)
def test_every_host_answers(testbed: Testbed, known_hosts_file: Path, name: str):
    host = testbed.host(name)
    result = ssh(testbed, host, "echo ok", known_hosts=known_hosts_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_chain_through_two_gateways(testbed: Testbed, known_hosts_file: Path):
    node, gw1, gw2 = testbed.host("node1"), testbed.host("gw1"), testbed.host("gw2")
    forwarded_before = testbed.count_log(gw2, f"target {node.address} port {node.port}")
    # hold the session open (sleep) while we look at the TCP connections
    proc = subprocess.Popen(
        testbed.ssh_command(node, "echo ok; exec sleep 2.017", jumps=[gw1, gw2],
                            known_hosts=known_hosts_file),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ok\n", proc.stderr.read()
        assert testbed.connection_came_through(node, gw2)
        assert testbed.connection_came_through(gw2, gw1)
        assert not testbed.connection_came_through(node, gw1)
        assert testbed.count_log(gw2, f"target {node.address} port {node.port}") == forwarded_before + 1
        assert [p.cmdline() for p in testbed.remote_processes("sleep 2.017")] == [["sleep", "2.017"]]
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    # once the client is gone, the forwarded connection is closed too
    assert wait_for(lambda: not testbed.connection_came_through(node, gw2))


def test_second_user_has_writable_home(testbed: Testbed):
    if testbed.second_user is None:
        pytest.skip("second user needs root")
    result = ssh(testbed, testbed.host("node2"), 'id -un; cd "$HOME" && touch probe && pwd',
                 user=testbed.second_user)
    assert result.returncode == 0, result.stderr
    name, home = result.stdout.split()
    assert name == testbed.second_user
    assert (Path(home) / "probe").exists()


def test_fingerprints_match_ssh_keygen_and_asyncssh(testbed: Testbed, known_hosts_file: Path,
                                                    arun):
    for host in testbed.hosts:
        listing = subprocess.run(["ssh-keygen", "-lf", str(host.host_key_path)],
                                 capture_output=True, text=True, check=True).stdout
        assert listing.split()[1] == host.fingerprint

    async def server_fingerprint(host):
        async with asyncssh.connect(host.address, host.port, known_hosts=str(known_hosts_file),
                                    username=testbed.user) as conn:
            return conn.get_server_host_key().get_fingerprint()

    node = testbed.host("node3")
    assert arun(server_fingerprint(node)) == node.fingerprint


def test_session_is_isolated(testbed: Testbed):
    assert os.environ["HOME"] == str(testbed.home)
    assert "SSH_AUTH_SOCK" not in os.environ
    assert testbed.client_key.exists() and testbed.client_pubkey.exists()
    # ~ resolves into the testbed (other tests may record hosts in this known_hosts)
    assert Path("~/.ssh/known_hosts").expanduser() == testbed.known_hosts
    assert testbed.known_hosts.exists()
    assert all(testbed.sshd_pids(host) for host in testbed.hosts)

"""A failing gateway is tried once (issue 11, item 1), and failures say why (item 6, connection side)."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from helpers import RecordingFormatter, free_port, make_node

from apssh.nodes import SshNode
from apssh.sshproxy import SshConnectError


class SilentListener:
    """Accepts TCP connections and never says a word; counts what it accepted."""

    def __init__(self, address: str = "127.0.0.34"):
        self.sock = socket.create_server((address, 0))
        self.address, self.port = self.sock.getsockname()
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent():
    listener = SilentListener()
    try:
        yield listener
    finally:
        listener.close()


def test_silent_gateway_is_tried_once_for_twenty_nodes(testbed, arun, silent):
    """20 nodes behind a gateway that accepts TCP and never speaks, timeout 2 s: all fail, each
    message names the gateway, and the gateway got one connection attempt, not one per node."""
    gateway = SshNode(silent.address, port=silent.port, username=testbed.user, timeout=2,
                      formatter=RecordingFormatter())
    nodes = [SshNode(f"10.1.0.{i}", username=testbed.user, gateway=gateway, timeout=2,
                     formatter=RecordingFormatter()) for i in range(20)]

    async def main():
        return await asyncio.gather(*(node.run("true") for node in nodes), return_exceptions=True)

    results = arun(main(), timeout=60)
    assert all(isinstance(result, SshConnectError) for result in results)
    assert all(f"gateway {silent.address} failed" in str(result) for result in results)
    assert len(silent.accepted) == 1


def test_gateway_refusing_authentication_gets_one_login_attempt(testbed, arun, tmp_path):
    """A gateway that refuses our key, in front of 10 nodes: one connection to it, not one per node."""
    gw1 = testbed.host("gw1")
    wrong_key = tmp_path / "wrong"
    import asyncssh

    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong_key))
    gateway = make_node(testbed, "gw1", keys=[wrong_key], known_hosts=testbed.all_known_hosts)
    nodes = [SshNode(f"10.1.1.{i}", username=testbed.user, gateway=gateway, formatter=RecordingFormatter())
             for i in range(10)]
    before = testbed.count_log(gw1, f"on {gw1.address} port {gw1.port}")

    async def main():
        return await asyncio.gather(*(node.run("true") for node in nodes), return_exceptions=True)

    results = arun(main(), timeout=60)
    assert all(isinstance(r, SshConnectError) and "permission denied" in str(r) for r in results)
    assert testbed.count_log(gw1, f"on {gw1.address} port {gw1.port}") - before == 1


def test_closed_port_says_connection_refused(testbed, arun):
    """Connecting to a port where nothing listens: SshConnectError saying "connection refused"."""
    node = SshNode("127.0.0.11", port=free_port("127.0.0.11"), username=testbed.user,
                   formatter=RecordingFormatter())
    with pytest.raises(SshConnectError, match="connection refused"):
        arun(node.run("true"))


def kill_sshd_sessions(testbed, host) -> None:
    """SIGKILL the per-connection sshd processes of ``host``: the connection drops, no exit status."""
    import psutil

    for pid in testbed.sshd_pids(host) - {host.pid}:
        try:
            process = psutil.Process(pid)
            if process.name() == "sshd":
                process.kill()
        except psutil.NoSuchProcess:
            pass


def plain_login(testbed) -> str:
    """The second user when there is one: its /bin/sh starts fast (root's rc files may not)."""
    return testbed.second_user or testbed.user


async def run_while(testbed, node, command: str, hurt) -> object:
    """Run ``command`` on ``node``; once it runs remotely, call ``hurt()``; return its status."""
    task = asyncio.ensure_future(node.run(command))
    while not testbed.remote_processes(command) and not task.done():
        await asyncio.sleep(0.05)
    hurt()
    status = await task
    await node.close()
    return status


def test_connection_lost_sets_failure_reason(testbed, arun):
    """A server whose session processes die while a command runs: run() returns None,
    failure_reason says the connection was lost, and the formatter got it as an event."""
    host = testbed.start_server("going-away", ["127.0.0.35"])
    node = SshNode(host.address, port=host.port, username=plain_login(testbed),
                   known_hosts=testbed.base / "known_hosts_faults", formatter=RecordingFormatter())

    try:
        assert arun(run_while(testbed, node, "sleep 31", lambda: kill_sshd_sessions(testbed, host)),
                    timeout=60) is None
    finally:
        testbed.stop_server(host)
    assert node.failure_reason and "connection" in node.failure_reason
    assert any(message == node.failure_reason for _, message in node.formatter.events)


def test_server_not_answering_keepalives_is_reported(testbed, arun):
    """A server whose session processes are frozen (SIGSTOP) answers no keepalive: with
    keepalive_interval=1 and keepalive_count_max=2 the run ends with None and says so."""
    import os
    import signal

    host = testbed.start_server("frozen", ["127.0.0.36"])
    node = SshNode(host.address, port=host.port, username=plain_login(testbed), keepalive_interval=1,
                   keepalive_count_max=2, known_hosts=testbed.base / "known_hosts_faults",
                   formatter=RecordingFormatter())
    frozen: list[int] = []

    def freeze():
        for pid in testbed.sshd_pids(host) - {host.pid}:
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)

    try:
        assert arun(run_while(testbed, node, "sleep 32", freeze), timeout=60) is None
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        testbed.stop_server(host)
    assert node.failure_reason == "server not responding to keepalive after 2 s"


def test_keepalive_defaults_notice_a_dead_peer_within_about_a_minute():
    node = SshNode("h", ssh_config=None)
    assert (node.keepalive_interval, node.keepalive_count_max) == (15, 4)

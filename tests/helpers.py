"""Shared helpers for the apssh tests: node builders and recording formatters."""

from __future__ import annotations

from apssh.formatters import STDERR, STDOUT, Formatter
from apssh.nodes import SshNode
from apssh.sshproxy import SshProxy


class RecordingFormatter(Formatter):
    """Keeps every ``(datatype, line)`` received, the number of ``lines()`` calls, and events."""

    def __init__(self):
        super().__init__("@line@", verbose=True)
        self.records: list[tuple[object, str]] = []
        self.calls = 0
        self.events: list[tuple[str, str]] = []

    def lines(self, lines, datatype, hostname, username=None):
        self.calls += 1
        self.records.extend((datatype, line) for line in lines)

    def event(self, hostname, message):
        self.events.append((hostname, message))

    def stdout(self) -> list[str]:
        """The stdout lines received, in order."""
        return [line for datatype, line in self.records if datatype == STDOUT]

    def stderr(self) -> list[str]:
        """The stderr lines received, in order."""
        return [line for datatype, line in self.records if datatype == STDERR]


def make_node(testbed, name: str, *, cls=SshNode, gateway: SshProxy | None = None,
              formatter: Formatter | None = None, **kwds) -> SshProxy:
    """An SshNode (or ``cls``) for testbed host ``name``, logged in as the testbed user."""
    host = testbed.host(name)
    kwds.setdefault("username", testbed.user)
    return cls(host.address, port=host.port, gateway=gateway,
               formatter=formatter if formatter is not None else RecordingFormatter(), **kwds)


def make_chain(testbed, names: list[str], **kwds) -> list[SshProxy]:
    """Nodes for ``names`` in order, each one the gateway of the next (first is direct).

    Host keys are checked against the testbed's full known_hosts file (see known_node).
    """
    kwds.setdefault("known_hosts", testbed.all_known_hosts)
    chain: list[SshProxy] = []
    for name in names:
        chain.append(make_node(testbed, name, gateway=chain[-1] if chain else None, **kwds))
    return chain


class CommandRecorder(RecordingFormatter):
    """A RecordingFormatter that also keeps announces and the command line of each session apart."""

    def __init__(self):
        super().__init__()
        self.announces: list[str] = []
        self.commands: list[str] = []

    def announce(self, hostname, message):
        self.announces.append(message)

    def session_start(self, hostname, command):
        self.commands.append(command)


def run_jobs(*jobs, timeout: float = 30) -> bool:
    """Run ``jobs`` in one (critical) asynciojobs Scheduler: True, or the failing job's exception raised."""
    from asynciojobs import Scheduler

    return Scheduler(*jobs, timeout=timeout).run()


# ---- connection and resource probes (test_sshjob, test_topology, test_resources)
class CloseRecorder(RecordingFormatter):
    """A RecordingFormatter that also records, in order, the host of each connection that closes."""

    def __init__(self):
        super().__init__()
        self.closed: list[str] = []

    def connection_lost(self, hostname, exc, username=None):
        self.closed.append(hostname)
        super().connection_lost(hostname, exc, username)


def open_fds() -> int:
    """Number of file descriptors this process has open."""
    import os

    return len(os.listdir("/proc/self/fd"))


def connection_keys(testbed, hosts=None) -> set[tuple]:
    """``(client, server)`` of every ESTABLISHED TCP connection to the testbed hosts (default: all).

    Both ends are looked at (as in ``testbed.established_connections``), in one scan.
    """
    import psutil

    targets = {host.endpoint for host in (testbed.hosts if hosts is None else hosts)}
    keys = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_ESTABLISHED or not conn.raddr:
            continue
        local, remote = (conn.laddr.ip, conn.laddr.port), (conn.raddr.ip, conn.raddr.port)
        if remote in targets:
            keys.add((local, remote))
        elif local in targets:
            keys.add((remote, local))
    return keys


def no_new_connections(testbed, before: set[tuple], hosts=None, timeout: float = 5.0) -> bool:
    """Wait until no ESTABLISHED connection to the testbed hosts exists besides those in ``before``."""
    from testbed import wait_for

    return wait_for(lambda: not connection_keys(testbed, hosts) - before, timeout=timeout)


def free_port(address: str) -> int:
    """A TCP port on ``address`` where nothing listens (bound, then released)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def known_node(testbed, name: str, **kwds) -> SshProxy:
    """Like make_node, but checking host keys against the testbed's full known_hosts file.

    Nothing is ever written to ``~/.ssh/known_hosts``, which tests of host key handling
    expect to find empty.
    """
    kwds.setdefault("known_hosts", testbed.all_known_hosts)
    return make_node(testbed, name, **kwds)


def hops_of(node) -> list:
    """``node``'s explicit gateways, first hop first, then ``node`` itself."""
    chain = [node]
    while getattr(chain[0], "gateway", None) is not None:
        chain.insert(0, chain[0].gateway)
    return chain


async def run_expecting(node, exception, command: str = "true"):
    """Run ``command`` on ``node``, which must raise ``exception``.

    Returns ``(the exception, [is_connected() of each hop of hops_of(node)])``, the states
    being read right after the failure. The node and its gateways are closed in any case,
    so that a run that wrongly succeeds leaves no connection behind for later tests.
    """
    import pytest

    chain = hops_of(node)
    try:
        with pytest.raises(exception) as info:
            await node.run(command)
        return info.value, [hop.is_connected() for hop in chain]
    finally:
        for hop in reversed(chain):
            await hop.close()


def connection_snapshot(testbed) -> set[tuple]:
    """Client endpoints of every ESTABLISHED connection to any testbed host, right now."""
    return {conn.client for host in testbed.hosts for conn in testbed.established_connections(host)}


def came_through(testbed, node_name: str, gateway_name: str, before: set[tuple]) -> bool:
    """testbed.connection_came_through, ignoring connections in ``before`` (left by earlier tests).

    True when some connection to ``node_name`` opened since ``before`` exists and every such
    connection was opened by ``gateway_name``'s sshd (none by this test process).
    """
    gateway_pids = testbed.sshd_pids(testbed.host(gateway_name))
    new = [conn for conn in testbed.established_connections(testbed.host(node_name))
           if conn.client not in before]
    return bool(new) and all(conn.client_pid in gateway_pids for conn in new)

"""Within stock OpenSSH limits (issue 8, point 2): sshd allows 10 sessions per connection.

The testbed servers run with sshd's defaults (MaxSessions 10). Jobs beyond the limit wait for
a free session; SFTP and an abort's kill command always have a slot.
"""

from __future__ import annotations

import asyncio

from asynciojobs import Scheduler
from helpers import RecordingFormatter, connection_keys, make_node, no_new_connections
from testbed import wait_for

from apssh import Pull, Push, SshJob, limit_handshakes


def test_fifty_jobs_at_once_on_one_node_with_push_and_pull(testbed, tmp_path):
    """50 jobs at once on one node (stock MaxSessions 10), 5 Push and 5 Pull among them: all succeed."""
    node1 = testbed.host("node1")
    before = connection_keys(testbed)
    formatter = RecordingFormatter()
    node = make_node(testbed, "node1", formatter=formatter, known_hosts=testbed.all_known_hosts)
    remote_dir = f"apssh-limits-{tmp_path.name}"
    source = tmp_path / "payload.txt"
    source.write_text("payload\n")
    scheduler = Scheduler(timeout=120)
    setup = SshJob(node, command=f"mkdir -p {remote_dir} && echo pulled > {remote_dir}/remote.txt",
                   scheduler=scheduler)
    for i in range(40):
        SshJob(node, command=f"sleep 0.3; echo run{i}", scheduler=scheduler, required=setup)
    for i in range(5):
        SshJob(node, commands=[Push(source, f"{remote_dir}/pushed{i}.txt")], scheduler=scheduler, required=setup)
        SshJob(node, commands=[Pull(f"{remote_dir}/remote.txt", tmp_path / f"pulled{i}.txt")],
               scheduler=scheduler, required=setup)
    accepted_before = testbed.count_log(node1, f"on {node1.address} port {node1.port}")

    assert scheduler.run() is True

    assert sorted(line for line in formatter.stdout() if line.startswith("run")) == \
        sorted(f"run{i}\n" for i in range(40))
    assert all((tmp_path / f"pulled{i}.txt").read_text() == "pulled\n" for i in range(5))
    assert testbed.count_log(node1, f"on {node1.address} port {node1.port}") - accepted_before == 1
    assert no_new_connections(testbed, before)


def test_max_sessions_is_configurable_per_node(testbed, tmp_path):
    """A server with MaxSessions 3 and a node with max_sessions=3: 12 jobs at once all succeed
    (one command at a time, two slots kept for SFTP and kill)."""
    host = testbed.start_server("maxsessions3", ["127.0.0.31"], sshd_extra="MaxSessions 3\n")
    try:
        formatter = RecordingFormatter()
        node = make_node_for(testbed, host, formatter=formatter, max_sessions=3)
        scheduler = Scheduler(*[SshJob(node, command=f"sleep 0.1; echo {i}") for i in range(12)], timeout=120)
        assert scheduler.run() is True
        assert sorted(formatter.stdout()) == sorted(f"{i}\n" for i in range(12))
    finally:
        testbed.stop_server(host)


def test_more_sessions_than_the_server_allows_says_session_refused(testbed, arun):
    """A node told max_sessions=10 against a server with MaxSessions 1: the command that does
    not get a session fails, and says the server refused the session."""
    host = testbed.start_server("maxsessions1", ["127.0.0.32"], sshd_extra="MaxSessions 1\n")
    try:
        node = make_node_for(testbed, host, formatter=RecordingFormatter())

        async def main():
            results = await asyncio.gather(node.run("sleep 1"), node.run("sleep 1"))
            reason = node.failure_reason
            await node.close()
            return sorted(results, key=lambda r: r is None), reason

        (first, second), reason = arun(main())
        assert (first, second) == (0, None)
        assert "session refused by the server" in reason
        assert any("session refused by the server" in message for _, message in node.formatter.events)
    finally:
        testbed.stop_server(host)


def test_sftp_and_abort_have_a_slot_while_commands_fill_the_connection(testbed, arun, tmp_path):
    """With all 8 command slots busy, a Push still goes through (SFTP slot), and aborting the
    commands stops them all (the kill command has a slot of its own)."""
    node = make_node(testbed, "node2", known_hosts=testbed.all_known_hosts)
    source = tmp_path / "f.txt"
    source.write_text("x\n")

    async def main():
        await node.connect_lazy()
        sleepers = [asyncio.ensure_future(node.run(f"sleep 47.{i}")) for i in range(8)]
        while len(testbed.remote_processes("sleep 47.")) < 8:
            await asyncio.sleep(0.05)
        await asyncio.wait_for(node.put_file_s([source], "apssh-slot-test.txt"), 20)
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
        await node.close()

    arun(main(), timeout=60)
    assert wait_for(lambda: testbed.remote_processes("sleep 47.") == [])


def make_node_for(testbed, host, **kwds):
    """An SshNode for an extra server of the testbed, logged in as the testbed user."""
    from apssh import SshNode

    kwds.setdefault("known_hosts", testbed.base / "known_hosts_extra")
    return SshNode(host.address, port=host.port, username=testbed.user, **kwds)


class InFlight(RecordingFormatter):
    """Counts the handshakes under way (``connecting`` said, neither made nor failed yet) across
    every node that shares it, and the most seen at once."""

    def __init__(self):
        super().__init__()
        self.now = 0
        self.most = 0

    def connecting(self, hostname, username, via):
        self.now += 1
        self.most = max(self.most, self.now)

    def connection_made(self, hostname, username, direct):
        self.now -= 1

    def connection_failed(self, hostname, username, reason):
        self.now -= 1


def test_limit_handshakes_bounds_the_connections_set_up_at_once(testbed, arun):
    """With limit_handshakes(2), seven nodes connected at once never have more than two handshakes
    under way, and all of them connect."""
    names = [host.name for host in testbed.nodes + testbed.gateways]
    formatter = InFlight()
    nodes = [make_node(testbed, name, formatter=formatter, known_hosts=testbed.all_known_hosts) for name in names]

    async def main():
        limit_handshakes(2)
        try:
            await asyncio.gather(*(node.connect_lazy() for node in nodes))
            return [node.is_connected() for node in nodes]
        finally:
            limit_handshakes(None)
            await asyncio.gather(*(node.close() for node in nodes))

    connected = arun(main())

    assert len(nodes) >= 5 and connected == [True] * len(nodes)
    assert formatter.most == 2 and formatter.now == 0


def test_limit_handshakes_says_what_a_limit_is():
    """A limit that is not a positive number of connections is refused, naming the value."""
    for wrong in (0, -3, 2.5, "16"):
        try:
            limit_handshakes(wrong)
        except ValueError as exc:
            assert repr(wrong) in str(exc)
        else:
            raise AssertionError(f"limit_handshakes({wrong!r}) was accepted")
    limit_handshakes(None)

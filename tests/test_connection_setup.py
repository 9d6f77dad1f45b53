"""Per-process setup done once (issue 8, point 3) and host keys per host and port (point 4)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil

import asyncssh
import pytest
from helpers import RecordingFormatter

from apssh import _options, _sshconfig
from apssh._hostkeys import known_hosts_file
from apssh.nodes import SshNode
from apssh.sshproxy import HostKeyError


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting what is sent to its threads."""

    def __init__(self):
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)


def test_keys_known_hosts_and_config_are_read_once_and_no_thread_per_connection(testbed, arun, tmp_path):
    """4 nodes connected twice: the key file is read once, known_hosts parsed once (and kept in
    step with the 4 entries accept-new appends), the config parsed once per host, and nothing
    goes to executor threads."""
    key = tmp_path / "id_ed25519"
    shutil.copy(testbed.client_key, key)
    config = tmp_path / "config"
    config.write_text("Host *\n    ServerAliveCountMax 4\n")
    known = tmp_path / "known_hosts"
    known.write_text("# recorded by accept-new below\n")
    nodes = [SshNode(h.address, port=h.port, username=testbed.user, keys=[key], known_hosts=known,
                     ssh_config=config, formatter=RecordingFormatter()) for h in testbed.nodes]
    counts = {}

    async def round_trip():
        executor = CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        statuses = await asyncio.gather(*(node.run("true") for node in nodes))
        await asyncio.gather(*(node.close() for node in nodes))
        return statuses, executor.submitted

    parses_before, keys_before = _sshconfig.parses, _options.key_loads
    statuses, submitted = arun(round_trip())
    counts["first"] = (_options.key_loads - keys_before, known_hosts_file(known).loads, submitted)
    statuses_again, submitted_again = arun(round_trip())
    counts["second"] = (_options.key_loads - keys_before, known_hosts_file(known).loads, submitted_again)

    assert statuses == statuses_again == [0, 0, 0, 0]
    assert counts == {"first": (1, 1, 0), "second": (1, 1, 0)}
    assert _sshconfig.parses - parses_before <= len(nodes)  # once per host, at construction
    assert len(known.read_text().splitlines()) == 1 + 4


@pytest.fixture
def two_ports(testbed):
    """Two sshd on one address, two ports, two host keys."""
    first = testbed.start_server("port-a", ["127.0.0.33"])
    second = testbed.start_server("port-b", ["127.0.0.33"])
    try:
        yield first, second
    finally:
        testbed.stop_server(first)
        testbed.stop_server(second)


def node_on(testbed, host, known, **kwds):
    return SshNode(host.address, port=host.port, username=testbed.user, known_hosts=known,
                   formatter=RecordingFormatter(), **kwds)


async def run_true(node):
    try:
        return await node.run("true")
    finally:
        await node.close()


def test_two_servers_on_one_address_are_recorded_apart(testbed, arun, tmp_path, two_ports):
    """accept-new records both servers under [addr]:port, although an entry for the address
    alone (port 22) with another key exists: it says nothing about other ports."""
    first, second = two_ports
    known = tmp_path / "known_hosts"
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    known.write_text(f"127.0.0.33 {other[0]} {other[1]}\n")

    assert arun(run_true(node_on(testbed, first, known))) == 0
    assert arun(run_true(node_on(testbed, second, known))) == 0
    assert known.read_text().splitlines()[1:] == [first.known_hosts_entry, second.known_hosts_entry]
    # recorded: both pass the strict policy now
    assert arun(run_true(node_on(testbed, first, known, host_key_policy="strict"))) == 0
    assert arun(run_true(node_on(testbed, second, known, host_key_policy="strict"))) == 0


@pytest.mark.parametrize("changed", [0, 1])
def test_a_really_changed_key_on_either_port_is_refused(testbed, arun, tmp_path, two_ports, changed):
    """The key on record for one port differs from what that server offers: CHANGED, refused;
    the other port is still accepted."""
    known = tmp_path / "known_hosts"
    wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    lines = [host.known_hosts_entry for host in two_ports]
    lines[changed] = f"{lines[changed].split()[0]} {wrong[0]} {wrong[1]}"
    known.write_text("\n".join(lines) + "\n")

    with pytest.raises(HostKeyError, match="CHANGED"):
        arun(run_true(node_on(testbed, two_ports[changed], known)))
    assert arun(run_true(node_on(testbed, two_ports[1 - changed], known))) == 0


def test_hosts_without_a_config_file_share_one_empty_config(tmp_path):
    """With no ssh config file, the options of 200 hosts are one object (nothing in them depends on
    the host); with a file, each host gets its own (Host blocks match by name)."""
    shared = {id(_sshconfig.host_config([], "me", f"node{i}", None, 22)) for i in range(200)}
    config = tmp_path / "config"
    config.write_text("Host node1\n    User alice\n")
    own = [_sshconfig.host_config([config], "me", name, None, 22) for name in ("node1", "node2")]
    assert len(shared) == 1
    assert own[0].get("User") == "alice"
    assert own[1].get("User") is None


def test_a_relative_known_hosts_path_follows_the_working_directory(tmp_path, monkeypatch):
    """known_hosts='hosts' means ./hosts in the directory current at each call, even though the
    lookup of a path already seen is kept."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    first = known_hosts_file("hosts")
    monkeypatch.chdir(tmp_path / "b")
    second = known_hosts_file("hosts")
    assert first.path == tmp_path / "a" / "hosts"
    assert second.path == tmp_path / "b" / "hosts"
    assert known_hosts_file("hosts") is second

"""Host key checking against the real sshd of the testbed: accept-new, strict, ignore, known_hosts."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest
from helpers import RecordingFormatter, make_node, run_expecting

from apssh.nodes import SshNode
from apssh.sshproxy import HostKeyError, SshConnectError, SshProxy


def wrong_entry(host) -> str:
    """A known_hosts line for ``host`` with a key that is not its own."""
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    pattern = host.known_hosts_entry.split()[0]
    return f"{pattern} {other[0]} {other[1]}\n"


async def run_true(node) -> int | None:
    """Run ``true`` on ``node`` and close it, even when the run raises."""
    try:
        return await node.run("true")
    finally:
        await node.close()


def test_accept_new_records_unknown_host_in_home_known_hosts(testbed, arun, tmp_path, monkeypatch):
    """By default an unknown host is accepted and recorded in ~/.ssh/known_hosts as [addr]:port."""
    monkeypatch.setenv("HOME", str(tmp_path))
    host = testbed.host("node1")
    known_hosts = tmp_path / ".ssh" / "known_hosts"
    assert not known_hosts.exists()

    status = arun(run_true(make_node(testbed, "node1", keys=[testbed.client_key])))

    assert status == 0
    assert known_hosts.read_text().splitlines() == [host.known_hosts_entry]
    assert host.known_hosts_entry.startswith(f"[{host.address}]:{host.port} ssh-ed25519 ")


def test_recorded_host_is_accepted_again_without_new_entry(testbed, arun, tmp_path):
    """A host recorded by accept-new is accepted by later connections, and recorded once."""
    known_hosts = tmp_path / "known_hosts"
    first = arun(run_true(make_node(testbed, "node2", known_hosts=known_hosts)))
    second = arun(run_true(make_node(testbed, "node2", known_hosts=known_hosts,
                                     host_key_policy="strict")))
    assert (first, second) == (0, 0)
    assert known_hosts.read_text().splitlines() == [testbed.host("node2").known_hosts_entry]


def test_known_hosts_parameter_points_at_another_file(testbed, arun, tmp_path, monkeypatch):
    """known_hosts= is where the new host is recorded, even if ~/.ssh/known_hosts knows it; that one is untouched."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    testbed.write_known_hosts(home / ".ssh" / "known_hosts")
    before = (home / ".ssh" / "known_hosts").read_text()
    monkeypatch.setenv("HOME", str(home))
    elsewhere = tmp_path / "sub" / "my_known_hosts"

    status = arun(run_true(make_node(testbed, "node3", keys=[testbed.client_key], known_hosts=elsewhere)))

    assert status == 0
    assert elsewhere.read_text().splitlines() == [testbed.host("node3").known_hosts_entry]
    assert (home / ".ssh" / "known_hosts").read_text() == before


def test_known_hosts_parameter_is_used_for_checking(testbed, arun, tmp_path, known_hosts_file):
    """A host listed in the known_hosts= file passes the strict policy, and the file is not changed."""
    before = known_hosts_file.read_text()
    status = arun(run_true(make_node(testbed, "node4", known_hosts=known_hosts_file,
                                     host_key_policy="strict")))
    assert status == 0
    assert known_hosts_file.read_text() == before


@pytest.mark.parametrize("policy", ["accept-new", "strict"])
def test_changed_key_is_refused_with_a_way_out(testbed, arun, tmp_path, policy):
    """A key that differs from the recorded one gives HostKeyError naming host, fingerprint and ssh-keygen -R."""
    host = testbed.host("node1")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(wrong_entry(host))
    before = known_hosts.read_text()

    async def scenario():
        node = make_node(testbed, "node1", known_hosts=known_hosts, host_key_policy=policy)
        return await run_expecting(node, HostKeyError)

    error, [connected] = arun(scenario())
    message = str(error)
    assert host.address in message
    assert host.fingerprint in message
    assert "ssh-keygen -R" in message
    assert error.hostname == host.address
    assert not connected
    assert known_hosts.read_text() == before


def test_strict_refuses_unknown_host(testbed, arun, tmp_path):
    """host_key_policy='strict' refuses a host missing from known_hosts, and records nothing."""
    host = testbed.host("node2")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(testbed.known_hosts_text([testbed.host("node1")]))
    before = known_hosts.read_text()

    async def scenario():
        node = make_node(testbed, "node2", known_hosts=known_hosts, host_key_policy="strict")
        return await run_expecting(node, HostKeyError)

    error, _ = arun(scenario())
    assert host.address in str(error)
    assert host.fingerprint in str(error)
    assert "strict" in str(error)
    assert known_hosts.read_text() == before


def test_strict_refuses_unknown_host_without_known_hosts_file(testbed, arun, tmp_path, monkeypatch):
    """host_key_policy='strict' with a known_hosts= file that does not exist refuses the host."""
    # ~/.ssh/known_hosts lists the host: it must not be consulted instead of the missing file
    (tmp_path / ".ssh").mkdir()
    testbed.write_known_hosts(tmp_path / ".ssh" / "known_hosts")
    monkeypatch.setenv("HOME", str(tmp_path))
    known_hosts = tmp_path / "absent"

    async def scenario():
        node = make_node(testbed, "node2", known_hosts=known_hosts, host_key_policy="strict",
                         keys=[testbed.client_key])
        return await run_expecting(node, HostKeyError)

    arun(scenario())
    assert not known_hosts.exists()


def test_ignore_accepts_changed_key(testbed, arun, tmp_path):
    """host_key_policy='ignore' connects even when the recorded key differs, and keeps the file."""
    host = testbed.host("node3")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(wrong_entry(host))
    before = known_hosts.read_text()
    status = arun(run_true(make_node(testbed, "node3", known_hosts=known_hosts, host_key_policy="ignore")))
    assert status == 0
    assert known_hosts.read_text() == before


def test_ignore_accepts_unknown_host(testbed, arun, tmp_path):
    """host_key_policy='ignore' connects to a host missing from known_hosts."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    status = arun(run_true(make_node(testbed, "node4", known_hosts=known_hosts, host_key_policy="ignore")))
    assert status == 0


@pytest.mark.parametrize("cls", [SshProxy, SshNode])
def test_invalid_policy_raises_value_error(testbed, cls):
    """An unknown host_key_policy is refused at construction with ValueError listing the choices."""
    host = testbed.host("node1")
    with pytest.raises(ValueError) as info:
        cls(host.address, port=host.port, host_key_policy="yes")
    assert "accept-new" in str(info.value) and "strict" in str(info.value) and "ignore" in str(info.value)


def test_concurrent_first_connections_accept_and_record_once(testbed, arun, tmp_path):
    """Two nodes reaching the same unknown host at once both connect; the key is recorded once."""
    known_hosts = tmp_path / "known_hosts"

    async def scenario():
        nodes = [make_node(testbed, "node4", known_hosts=known_hosts) for _ in range(2)]
        return await asyncio.gather(*(run_true(node) for node in nodes))

    assert arun(scenario()) == [0, 0]
    assert known_hosts.read_text().splitlines() == [testbed.host("node4").known_hosts_entry]


def test_changed_key_of_node_behind_gateway(testbed, arun, tmp_path):
    """Behind a gateway, the node's own changed key gives HostKeyError naming the node."""
    node_host = testbed.host("node1")
    known_hosts = testbed.write_known_hosts(tmp_path / "known_hosts", [testbed.host("gw1")])
    with open(known_hosts, "a") as out:
        out.write(wrong_entry(node_host))

    async def scenario():
        gateway = make_node(testbed, "gw1", known_hosts=known_hosts)
        node = make_node(testbed, "node1", gateway=gateway, known_hosts=known_hosts)
        return await run_expecting(node, HostKeyError)

    error, [gateway_connected, _] = arun(scenario())
    assert node_host.fingerprint in str(error)
    assert error.hostname == node_host.address
    assert not gateway_connected


def test_changed_key_of_gateway(testbed, arun, tmp_path):
    """A gateway whose key changed gives a HostKeyError naming the gateway and its fingerprint."""
    gateway_host = testbed.host("gw1")
    known_hosts = testbed.write_known_hosts(tmp_path / "known_hosts", [testbed.host("node1")])
    with open(known_hosts, "a") as out:
        out.write(wrong_entry(gateway_host))

    async def scenario():
        gateway = make_node(testbed, "gw1", known_hosts=known_hosts)
        node = make_node(testbed, "node1", gateway=gateway, known_hosts=known_hosts)
        return await run_expecting(node, SshConnectError)

    error, _ = arun(scenario())
    assert isinstance(error, HostKeyError)
    assert f"gateway {gateway_host.address}" in str(error)
    assert gateway_host.fingerprint in str(error)
    assert "ssh-keygen -R" in str(error)


def test_new_host_key_reported_as_event(testbed, arun, tmp_path):
    """Recording a new host key is reported to the formatter as an event with the fingerprint."""
    formatter = RecordingFormatter()
    arun(run_true(make_node(testbed, "node2", known_hosts=tmp_path / "kh", formatter=formatter)))
    assert any(testbed.host("node2").fingerprint in message for _, message in formatter.events)


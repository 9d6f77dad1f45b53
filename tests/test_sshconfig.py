"""SshProxy honours the OpenSSH client config (~/.ssh/config or ssh_config=): aliases and ProxyJump chains."""

from __future__ import annotations

import asyncio
import logging
import os

import asyncssh
import pytest
from helpers import RecordingFormatter, came_through, connection_snapshot
from testbed import Testbed

from apssh.nodes import SshNode
from apssh.sshproxy import SshConnectError, SshProxy


def host_block(testbed: Testbed, alias: str, name: str, *, user: str | None = None,
               jump: str | None = None) -> str:
    """A ``Host`` block giving ``alias`` the address and port of testbed host ``name``."""
    host = testbed.host(name)
    lines = [f"Host {alias}", f"    HostName {host.address}", f"    Port {host.port}"]
    if user:
        lines.append(f"    User {user}")
    if jump:
        lines.append(f"    ProxyJump {jump}")
    return "\n".join(lines) + "\n"


def common_block(testbed: Testbed) -> str:
    """Defaults for every host: the testbed user and key."""
    return f"Host *\n    User {testbed.user}\n    IdentityFile {testbed.client_key}\n"


def my_connections(testbed: Testbed, name: str) -> set:
    """Established connections to testbed host ``name`` opened by this very process."""
    return {c.client for c in testbed.established_connections(testbed.host(name))
            if c.client_pid == os.getpid()}


def other_user(testbed: Testbed) -> str:
    """The second login user when there is one, else the testbed user."""
    return testbed.second_user or testbed.user


async def run_lines(proxy: SshProxy, command: str) -> tuple[int | None, list[str]]:
    """Run ``command`` on ``proxy`` with a fresh recording formatter; close; return status and stdout."""
    formatter = RecordingFormatter()
    try:
        status = await proxy.run(command, formatter=formatter)
    finally:
        await proxy.close()
    return status, formatter.stdout()


def test_alias_with_hostname_port_user(testbed, arun, tmp_path):
    """A Host alias in ssh_config= gives HostName, Port and User to SshProxy."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "myalias", "node1", user=other_user(testbed)) + common_block(testbed))
    proxy = SshProxy("myalias", ssh_config=config, known_hosts=tmp_path / "known_hosts",
                     formatter=RecordingFormatter())
    assert proxy.username == other_user(testbed)

    status, lines = arun(run_lines(proxy, "id -un; echo $APSSH_TESTBED_HOST"))

    assert status == 0
    assert lines == [f"{other_user(testbed)}\n", "node1\n"]


def test_home_ssh_config_is_read_by_default(testbed, arun, tmp_path, monkeypatch):
    """Without ssh_config=, ~/.ssh/config is read: alias, port, user and IdentityFile all apply."""
    monkeypatch.setenv("HOME", str(tmp_path))
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    # no ~/.ssh/id_* here: the key can only come from IdentityFile
    (ssh_dir / "config").write_text(host_block(testbed, "homealias", "node2", user=other_user(testbed))
                                    + common_block(testbed))
    proxy = SshProxy("homealias", formatter=RecordingFormatter())

    status, lines = arun(run_lines(proxy, "id -un; echo $APSSH_TESTBED_HOST"))

    assert status == 0
    assert lines == [f"{other_user(testbed)}\n", "node2\n"]
    assert (ssh_dir / "known_hosts").read_text().count(testbed.host("node2").host_key_line) == 1


def test_explicit_arguments_beat_config(testbed, arun, tmp_path):
    """username= and port= given to SshProxy win over User and Port of the config."""
    node = testbed.host("node3")
    config = tmp_path / "config"
    config.write_text(f"Host {node.address}\n    Port 1\n    User nobody-here\n" + common_block(testbed))
    proxy = SshProxy(node.address, username=testbed.user, port=node.port, ssh_config=config,
                     known_hosts=tmp_path / "known_hosts")

    status, lines = arun(run_lines(proxy, "id -un"))

    assert status == 0
    assert lines == [f"{testbed.user}\n"]


def test_two_hop_proxyjump_chain_from_config(testbed, arun, tmp_path):
    """Host nodeX ProxyJump gw2alias, Host gw2alias ProxyJump gw1alias: the command goes through both."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "gw1alias", "gw1")
                      + host_block(testbed, "gw2alias", "gw2", jump="gw1alias")
                      + host_block(testbed, "nodeX", "node3", jump="gw2alias")
                      + common_block(testbed))
    node3, gw2 = testbed.host("node3"), testbed.host("gw2")
    forwarded_before = testbed.count_log(gw2, f"target {node3.address} port {node3.port}")
    formatter = RecordingFormatter()

    async def scenario():
        before = connection_snapshot(testbed)
        proxy = SshProxy("nodeX", ssh_config=config, known_hosts=tmp_path / "known_hosts",
                         formatter=formatter)
        task = asyncio.ensure_future(proxy.run("echo $APSSH_TESTBED_HOST; sleep 0.5"))
        while not formatter.stdout():
            if task.done():
                break
            await asyncio.sleep(0.02)
        proofs = {
            "node_via_gw2": came_through(testbed, "node3", "gw2", before),
            "gw2_via_gw1": came_through(testbed, "gw2", "gw1", before),
            "node_not_via_gw1": not came_through(testbed, "node3", "gw1", before),
            "gw1_direct": len(my_connections(testbed, "gw1") - before) == 1,
        }
        status = await task
        await proxy.close()
        return status, proofs

    status, proofs = arun(scenario())
    assert status == 0
    assert formatter.stdout() == ["node3\n"]
    assert proofs == {"node_via_gw2": True, "gw2_via_gw1": True, "node_not_via_gw1": True, "gw1_direct": True}
    assert testbed.count_log(gw2, f"target {node3.address} port {node3.port}") == forwarded_before + 1


def test_config_chain_reported_by_effective_gateway_and_hop_names(testbed, tmp_path):
    """effective_gateway(), hop_names() and distance() report a ProxyJump chain read from the config."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "gw1alias", "gw1")
                      + host_block(testbed, "gw2alias", "gw2", jump="gw1alias")
                      + host_block(testbed, "nodeX", "node3", jump="gw2alias")
                      + common_block(testbed))
    proxy = SshProxy("nodeX", ssh_config=config)
    gateway = proxy.effective_gateway()
    assert gateway is not None and gateway.hostname == "gw2alias"
    assert gateway.effective_gateway().hostname == "gw1alias"
    assert gateway.effective_gateway().effective_gateway() is None
    assert proxy.hop_names() == ["gw1alias", "gw2alias", "nodeX"]
    assert proxy.distance() == 3


def test_comma_separated_proxyjump_list(testbed, arun, tmp_path):
    """ProxyJump gw1alias,gw2alias chains the hops in that order."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "gw1alias", "gw1") + host_block(testbed, "gw2alias", "gw2")
                      + host_block(testbed, "nodeY", "node4", jump="gw1alias,gw2alias")
                      + common_block(testbed))
    formatter = RecordingFormatter()

    async def scenario():
        before = connection_snapshot(testbed)
        proxy = SshProxy("nodeY", ssh_config=config, known_hosts=tmp_path / "known_hosts",
                         formatter=formatter)
        task = asyncio.ensure_future(proxy.run("echo up; sleep 0.5"))
        while not formatter.stdout() and not task.done():
            await asyncio.sleep(0.02)
        proofs = (came_through(testbed, "node4", "gw2", before), came_through(testbed, "gw2", "gw1", before))
        status = await task
        await proxy.close()
        return status, proofs, proxy.hop_names()

    status, proofs, hops = arun(scenario())
    assert status == 0
    assert proofs == (True, True)
    assert hops == ["gw1alias", "gw2alias", "nodeY"]


def test_config_gateway_shared_by_nodes(testbed, arun, tmp_path):
    """Two aliases that ProxyJump through the same gateway share one connection to it."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "gwshared", "gw3")
                      + host_block(testbed, "n1", "node1", jump="gwshared")
                      + host_block(testbed, "n2", "node2", jump="gwshared")
                      + common_block(testbed))
    formatter = RecordingFormatter()

    async def scenario():
        before = connection_snapshot(testbed)
        proxies = [SshProxy(name, ssh_config=config, known_hosts=tmp_path / "known_hosts", formatter=formatter)
                   for name in ("n1", "n2")]
        tasks = [asyncio.ensure_future(proxy.run("echo up; sleep 0.5")) for proxy in proxies]
        while len(formatter.stdout()) < 2 and not all(task.done() for task in tasks):
            await asyncio.sleep(0.02)
        opened = my_connections(testbed, "gw3") - before
        through = [came_through(testbed, name, "gw3", before) for name in ("node1", "node2")]
        statuses = await asyncio.gather(*tasks)
        for proxy in proxies:
            await proxy.close()
        return opened, through, statuses, my_connections(testbed, "gw3") - before

    opened, through, statuses, left = arun(scenario())
    assert statuses == [0, 0]
    assert len(opened) == 1
    assert through == [True, True]
    assert not left


def test_looping_proxyjump_is_refused_naming_hops(testbed, arun, tmp_path):
    """A ProxyJump loop in the config raises SshConnectError naming the hops, instead of recursing."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "loopa", "node1", jump="loopb")
                      + host_block(testbed, "loopb", "node2", jump="loopa")
                      + common_block(testbed))
    proxy = SshProxy("loopa", ssh_config=config, known_hosts=tmp_path / "known_hosts")
    before = connection_snapshot(testbed)
    with pytest.raises(SshConnectError) as info:
        proxy.hop_names()
    assert "loop" in str(info.value).lower()
    assert "loopa" in str(info.value) and "loopb" in str(info.value)

    async def scenario():
        with pytest.raises(SshConnectError) as info:
            await proxy.connect_lazy()
        return info.value

    error = arun(scenario(), timeout=20)
    assert "loopa" in str(error) and "loopb" in str(error)
    assert not (my_connections(testbed, "node1") | my_connections(testbed, "node2")) - before


def test_sshnode_explicit_username_beats_config_user(testbed, arun, tmp_path):
    """SshNode(username=...) logs in as that user even if the config names another User."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "cfgnode", "node4", user="nobody-here") + common_block(testbed))
    node = SshNode("cfgnode", username=testbed.user, ssh_config=config, known_hosts=tmp_path / "known_hosts")

    status, lines = arun(run_lines(node, "id -un"))

    assert status == 0
    assert lines == [f"{testbed.user}\n"]


def test_sshnode_without_username_takes_config_user(testbed, arun, tmp_path):
    """SshNode with no username logs in as the config's User for that host (root only without one)."""
    if testbed.second_user is None:
        pytest.skip("needs root to create the second login user")
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "cfgnode", "node4", user=testbed.second_user) + common_block(testbed))
    node = SshNode("cfgnode", ssh_config=config, known_hosts=tmp_path / "known_hosts")
    plain = SshNode("127.0.0.14", ssh_config=config)

    status, lines = arun(run_lines(node, "id -un"))

    assert node.username == testbed.second_user and plain.username == "root"
    assert status == 0
    assert lines == [f"{testbed.second_user}\n"]


async def negotiated_ciphers(proxy: SshProxy) -> tuple[str, str]:
    """The ciphers (client to server, server to client) of ``proxy``'s connection; closes it."""
    try:
        conn = await proxy.connect_lazy()
        return conn.get_extra_info("send_cipher"), conn.get_extra_info("recv_cipher")
    finally:
        await proxy.close()


def test_default_cipher_is_aes128_gcm(testbed, arun, tmp_path):
    """Without Ciphers in the ssh config, the connection uses aes128-gcm (faster here than
    asyncssh's own first choice, chacha20-poly1305), in both directions."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "plain", "node1") + common_block(testbed))
    proxy = SshProxy("plain", ssh_config=config, known_hosts=testbed.all_known_hosts)

    assert arun(negotiated_ciphers(proxy)) == ("aes128-gcm@openssh.com", "aes128-gcm@openssh.com")


@pytest.mark.parametrize("ciphers, expected", [
    ("chacha20-poly1305@openssh.com", "chacha20-poly1305@openssh.com"),
    ("aes256-ctr,aes128-gcm@openssh.com", "aes256-ctr"),
])
def test_ciphers_of_the_ssh_config_win(testbed, arun, tmp_path, ciphers, expected):
    """A Ciphers line in the ssh config chooses the cipher, as with ssh; apssh's default does not apply."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "chosen", "node1") + f"    Ciphers {ciphers}\n" + common_block(testbed))
    proxy = SshProxy("chosen", ssh_config=config, known_hosts=testbed.all_known_hosts)

    assert arun(negotiated_ciphers(proxy)) == (expected, expected)


def negotiated_kex(arun, caplog, proxy: SshProxy) -> list[str]:
    """The key exchange algorithms asyncssh began with on ``proxy``'s connection (its debug log)."""
    asyncssh.set_debug_level(2)
    caplog.set_level(logging.DEBUG, logger="asyncssh")
    try:
        arun(negotiated_ciphers(proxy))
    finally:
        asyncssh.set_debug_level(1)
    marker = "Key exchange alg: "
    return [message.split(marker)[1] for message in (record.getMessage() for record in caplog.records)
            if marker in message]


def test_default_key_exchange_is_x25519_based(testbed, arun, caplog, tmp_path):
    """Without KexAlgorithms in the ssh config, the key exchange is asyncssh's first choice that
    the server has, as with ssh: X25519 (curve25519, or a post-quantum hybrid with it on a newer
    OpenSSH), not a NIST curve."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "plain", "node1") + common_block(testbed))
    proxy = SshProxy("plain", ssh_config=config, known_hosts=testbed.all_known_hosts)

    [kex] = negotiated_kex(arun, caplog, proxy)
    assert "25519" in kex and "nistp" not in kex


def test_key_exchange_of_the_ssh_config_wins(testbed, arun, caplog, tmp_path):
    """A KexAlgorithms line in the ssh config chooses the key exchange (README: P-256 saves the
    server's slow reference X25519 on OpenSSH 9.2)."""
    config = tmp_path / "config"
    config.write_text(host_block(testbed, "chosen", "node1") + "    KexAlgorithms ecdh-sha2-nistp256\n"
                      + common_block(testbed))
    proxy = SshProxy("chosen", ssh_config=config, known_hosts=testbed.all_known_hosts)

    assert negotiated_kex(arun, caplog, proxy) == ["ecdh-sha2-nistp256"]

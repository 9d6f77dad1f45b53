"""Identity and lifetime (issue 8, point 5): a node is its whole hop chain; ProxyJump gateways
are shared only between nodes with the same options."""

from __future__ import annotations

import asyncio

from helpers import RecordingFormatter, make_node

from apssh.nodes import SshNode


def accepted(testbed, host) -> int:
    return testbed.count_log(host, f"on {host.address} port {host.port}")


def test_same_address_behind_two_gateways_is_two_nodes(testbed, arun):
    """One address reached through gw1 and through gw2 (two sites, one private address): two
    connections, each through its own gateway, both answer."""
    node1 = testbed.host("node1")
    gw1 = make_node(testbed, "gw1", known_hosts=testbed.all_known_hosts)
    gw2 = make_node(testbed, "gw2", known_hosts=testbed.all_known_hosts)
    site1 = make_node(testbed, "node1", gateway=gw1, known_hosts=testbed.all_known_hosts)
    site2 = make_node(testbed, "node1", gateway=gw2, known_hosts=testbed.all_known_hosts)
    before = accepted(testbed, node1)

    async def main():
        statuses = await asyncio.gather(site1.run("true"), site2.run("true"))
        distinct = site1.conn is not site2.conn
        await asyncio.gather(site1.close(), site2.close())
        return statuses, distinct

    assert arun(main()) == ([0, 0], True)
    assert accepted(testbed, node1) - before == 2
    assert testbed.count_log(testbed.host("gw1"), f"target {node1.address} port {node1.port}") >= 1
    assert testbed.count_log(testbed.host("gw2"), f"target {node1.address} port {node1.port}") >= 1


def jump_config(testbed, tmp_path):
    """An ssh config where node1 and node2 jump through gw3; returns it and gw3."""
    config = tmp_path / "config"
    gw = testbed.host("gw3")
    config.write_text(f"Host {testbed.nodes[0].address} {testbed.nodes[1].address}\n"
                      f"    ProxyJump {testbed.user}@{gw.address}:{gw.port}\n"
                      f"Host *\n    User {testbed.user}\n    IdentityFile {testbed.client_key}\n")
    return config, gw


def node_behind_jump(testbed, config, index, **kwds):
    host = testbed.nodes[index]
    return SshNode(host.address, port=host.port, ssh_config=config, known_hosts=testbed.all_known_hosts,
                   formatter=RecordingFormatter(), **kwds)


async def run_both(nodes):
    statuses = await asyncio.gather(*(node.run("true") for node in nodes))
    await asyncio.gather(*(node.close() for node in nodes))
    return statuses


def test_proxyjump_gateway_is_shared_by_nodes_with_the_same_options(testbed, arun, tmp_path):
    """Two nodes whose ssh config jumps through gw3, same options: one connection to gw3."""
    config, gw = jump_config(testbed, tmp_path)
    nodes = [node_behind_jump(testbed, config, index) for index in (0, 1)]
    before = accepted(testbed, gw)
    assert arun(run_both(nodes)) == [0, 0]
    assert accepted(testbed, gw) - before == 1


def test_proxyjump_gateway_is_not_shared_between_different_options(testbed, arun, tmp_path):
    """Same ProxyJump, different options (connect timeout): each node has its own gateway connection."""
    config, gw = jump_config(testbed, tmp_path)
    nodes = [node_behind_jump(testbed, config, 0, timeout=20), node_behind_jump(testbed, config, 1, timeout=25)]
    before = accepted(testbed, gw)
    assert arun(run_both(nodes)) == [0, 0]
    assert accepted(testbed, gw) - before == 2

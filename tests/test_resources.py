"""Resources: SshNode constructions open nothing, and a run with gateways leaves no connection,
no sshd session and no file descriptor behind."""

from __future__ import annotations

import gc

import pytest
from asynciojobs import Scheduler
from helpers import connection_keys, make_node, no_new_connections, open_fds
from testbed import wait_for

from apssh import SshJob, SshNode, close_ssh_in_scheduler


def settled_fds() -> int:
    """Open fds once garbage is collected."""
    gc.collect()
    return open_fds()


def gateway_scheduler(testbed, keep_connection: bool) -> Scheduler:
    """4 nodes behind gateways: node1, node2 via gw1; node3 via gw1-gw2; node4 via gw1-gw2-gw3."""
    gw1 = make_node(testbed, "gw1")
    gw2 = make_node(testbed, "gw2", gateway=gw1)
    gw3 = make_node(testbed, "gw3", gateway=gw2)
    nodes = [make_node(testbed, "node1", gateway=gw1), make_node(testbed, "node2", gateway=gw1),
             make_node(testbed, "node3", gateway=gw2), make_node(testbed, "node4", gateway=gw3)]
    return Scheduler(*(SshJob(node, command="echo $APSSH_TESTBED_HOST", keep_connection=keep_connection)
                       for node in nodes), timeout=30)


def session_pids(testbed) -> set[int]:
    """Pids of every sshd session process (children of the testbed listeners)."""
    return {pid for host in testbed.hosts for pid in testbed.sshd_pids(host) - {host.pid}}


def test_100_sshnode_constructions_leak_no_file_descriptor(testbed, tmp_path):
    """Building 100 SshNodes (with gateways and an ssh config file) opens no file descriptor."""
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    ServerAliveInterval 10\n")
    host, gateway_host = testbed.host("node1"), testbed.host("gw1")
    baseline = settled_fds()
    nodes = []
    for index in range(50):
        gateway = SshNode(gateway_host.address, port=gateway_host.port, username=testbed.user)
        nodes.append(SshNode(host.address, port=host.port, username=testbed.user, gateway=gateway,
                             ssh_config=str(config) if index % 2 else ()))
    assert len(nodes) == 50  # plus their 50 gateways
    assert open_fds() == baseline  # nothing open while they exist...
    del nodes, gateway
    assert settled_fds() == baseline  # ...nor after they are gone


@pytest.mark.parametrize("keep", [False, True], ids=["closed-by-jobs", "keep_connection"])
def test_no_connection_remains_after_a_run_through_gateways(testbed, keep):
    """After a scheduler with 4 nodes behind gateways ends (plus close_ssh_in_scheduler),
    no ESTABLISHED connection to any testbed server and no sshd session process remain."""
    before = connection_keys(testbed)
    sessions_before = session_pids(testbed)
    scheduler = gateway_scheduler(testbed, keep)
    assert scheduler.run() is True
    close_ssh_in_scheduler(scheduler)
    assert no_new_connections(testbed, before)
    assert wait_for(lambda: not session_pids(testbed) - sessions_before)


@pytest.mark.parametrize("keep", [False, True], ids=["closed-by-jobs", "keep_connection"])
def test_open_fds_return_to_baseline_after_a_run(testbed, keep):
    """The number of open file descriptors returns to its baseline after a run and its close."""
    warm_up = gateway_scheduler(testbed, keep)  # first use imports and caches things for good
    assert warm_up.run() is True
    close_ssh_in_scheduler(warm_up)
    baseline = settled_fds()
    scheduler = gateway_scheduler(testbed, keep)
    assert scheduler.run() is True
    close_ssh_in_scheduler(scheduler)
    assert wait_for(lambda: settled_fds() == baseline), (settled_fds(), baseline)

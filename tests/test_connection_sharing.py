"""A connection is never closed under a job that uses it (issue 8, point 1).

Nested schedulers running side by side on one node, several jobs per node, nodes one and
two hops away, one SshNode shared or several SshNode objects for the same host: every job
succeeds, each server sees one connection per distinct node and gateway during the run, and
none is left after the outermost run ends.
"""

from __future__ import annotations

import asyncio

import pytest
from asynciojobs import Scheduler
from helpers import RecordingFormatter, connection_keys, make_node, no_new_connections

from apssh import Run, SshJob


def accepted(testbed, host) -> int:
    """Connections ``host``'s sshd accepted so far (its log says so for each)."""
    return testbed.count_log(host, f"on {host.address} port {host.port}")


def build(testbed, *, depth: int, jobs_per_inner: int, hops: int, shared: bool):
    """A top scheduler holding 4 inner schedulers (depth 1) or 2 x 2 (depth 2) on node1."""
    formatter = RecordingFormatter()
    gateway = make_node(testbed, "gw1", formatter=formatter, known_hosts=testbed.all_known_hosts) if hops == 2 else None

    def node():
        return make_node(testbed, "node1", gateway=gateway, formatter=formatter,
                         known_hosts=testbed.all_known_hosts)

    one = node()
    top = Scheduler(timeout=60)
    parents = [top] if depth == 1 else [Scheduler(scheduler=top) for _ in range(2)]
    index = 0
    for parent in parents:
        for _ in range(4 // len(parents)):
            inner = Scheduler(scheduler=parent)
            for _ in range(jobs_per_inner):
                i = index
                SshJob(node=one if shared else node(), scheduler=inner,
                       commands=[Run(f"sleep 0.{i % 4}; echo a{i}"), Run(f"echo b{i}")])
                index += 1
    return top, formatter, index


GRID = [pytest.param(depth, per, hops, shared,
                     id=f"depth{depth}-jobs{per}-hops{hops}-{'shared' if shared else 'objects'}")
        for depth in (1, 2) for per in (1, 2) for hops in (1, 2) for shared in (True, False)]


@pytest.mark.parametrize(("depth", "jobs_per_inner", "hops", "shared"), GRID)
def test_nested_schedulers_share_one_connection_per_node_and_gateway(testbed, depth, jobs_per_inner, hops, shared):
    """Every job of side-by-side nested schedulers succeeds; one connection per node and gateway
    is opened during the run; none is left when the outermost run ends."""
    before = connection_keys(testbed)
    node1, gw1 = testbed.host("node1"), testbed.host("gw1")
    accepted_before = {node1: accepted(testbed, node1), gw1: accepted(testbed, gw1)}
    top, formatter, count = build(testbed, depth=depth, jobs_per_inner=jobs_per_inner, hops=hops, shared=shared)

    assert top.run() is True

    assert sorted(formatter.stdout()) == sorted([f"a{i}\n" for i in range(count)] + [f"b{i}\n" for i in range(count)])
    assert accepted(testbed, node1) - accepted_before[node1] == 1
    assert accepted(testbed, gw1) - accepted_before[gw1] == (1 if hops == 2 else 0)
    assert no_new_connections(testbed, before)


def test_issue_snippet_four_inner_schedulers_on_one_node(testbed):
    """The issue's snippet: 4 inner schedulers side by side on one node all succeed."""
    formatter = RecordingFormatter()
    node = make_node(testbed, "node2", formatter=formatter, known_hosts=testbed.all_known_hosts)
    top = Scheduler(timeout=60)
    for i in range(4):
        inner = Scheduler(scheduler=top)
        SshJob(node=node, scheduler=inner, commands=[Run(f"sleep 0.{i}; echo a{i}"), Run(f"echo b{i}")])
    assert top.run() is True
    assert sorted(formatter.stdout()) == sorted([f"a{i}\n" for i in range(4)] + [f"b{i}\n" for i in range(4)])


def test_a_later_inner_scheduler_reuses_the_connection(testbed):
    """An inner scheduler that runs after another one finished (it requires it) still finds the
    connection open: the run holds it while a job of the run is still pending."""
    node3 = testbed.host("node3")
    before = connection_keys(testbed)
    accepted_before = accepted(testbed, node3)
    formatter = RecordingFormatter()
    node = make_node(testbed, "node3", formatter=formatter, known_hosts=testbed.all_known_hosts)
    top = Scheduler(timeout=60)
    first = Scheduler(scheduler=top)
    SshJob(node=node, scheduler=first, command="echo first")
    second = Scheduler(scheduler=top, required=first)
    SshJob(node=node, scheduler=second, command="echo second")

    assert top.run() is True

    assert formatter.stdout() == ["first\n", "second\n"]
    assert accepted(testbed, node3) - accepted_before == 1
    assert no_new_connections(testbed, before)


def test_keep_connection_keeps_its_node_open_after_the_run(testbed, arun):
    """keep_connection=True: the node's connection is still open after the outermost run; close() ends it."""
    node4 = testbed.host("node4")
    before = connection_keys(testbed)
    node = make_node(testbed, "node4", known_hosts=testbed.all_known_hosts)
    other = make_node(testbed, "node3", known_hosts=testbed.all_known_hosts)

    async def main():
        top = Scheduler(timeout=60)
        for _ in range(2):
            inner = Scheduler(scheduler=top)
            SshJob(node=node, scheduler=inner, command="true", keep_connection=True)
            SshJob(node=other, scheduler=inner, command="true")
        assert await top.co_run() is True
        state = (node.is_connected(), other.is_connected())
        await node.close()
        return state, node.is_connected()

    (kept, other_kept), after_close = arun(main())
    assert (kept, other_kept, after_close) == (True, False, False)
    assert no_new_connections(testbed, before, hosts=[node4])


def test_closing_one_job_does_not_close_under_a_running_one(testbed, arun):
    """SshJob.close() of a finished job lets go of the connection; a job still running on the
    same node keeps it and finishes."""
    formatter = RecordingFormatter()
    node = make_node(testbed, "node1", formatter=formatter, known_hosts=testbed.all_known_hosts)
    quick = SshJob(node=node, command="echo quick")
    slow = SshJob(node=node, commands=[Run("sleep 0.5"), Run("echo slow")])

    async def main():
        running = asyncio.ensure_future(slow.co_run())
        assert await quick.co_run() == 0
        await quick.close()
        result = await running
        await slow.close()
        return result

    assert arun(main()) == 0
    assert formatter.stdout() == ["quick\n", "slow\n"]
    assert not node.is_connected()

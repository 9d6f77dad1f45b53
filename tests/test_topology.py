"""apssh.topology against the real testbed: DOT text, graphviz graph, .dot/.png files, and
closing every connection of a scheduler (gateways included, remotest first)."""

from __future__ import annotations

import re
from pathlib import Path

import graphviz
import pytest
from asynciojobs import Scheduler, Sequence
from helpers import CloseRecorder, connection_keys, make_node, no_new_connections

from apssh import (
    LocalNode,
    Run,
    SshJob,
    SshNode,
    SshProxy,
    close_ssh_in_scheduler,
    co_close_ssh_in_scheduler,
    topology_as_dotfile,
    topology_as_pngfile,
    topology_dot,
    topology_graph,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# a DOT id: "quoted" (with escapes) or bare
_ID = r'("(?:[^"\\]|\\.)*"|[\w.]+)'
_NODE_RE = re.compile(rf'^\s*{_ID}\s*\[(.*)\]\s*$')
_EDGE_RE = re.compile(rf'^\s*{_ID}\s*->\s*{_ID}')
_LABEL_RE = re.compile(r'label=("(?:[^"\\]|\\.)*"|[\w.]+)')


def _unquote(text: str) -> str:
    return text[1:-1].replace('\\"', '"') if text.startswith('"') else text


def parse_dot(source: str) -> tuple[dict[str, str], set[tuple[str, str]], int]:
    """(id -> label, edges as (label, label), number of node statements) of a DOT text."""
    labels: dict[str, str] = {}
    statements = 0
    raw_edges = []
    for line in source.splitlines():
        edge = _EDGE_RE.match(line)
        if edge:
            raw_edges.append((_unquote(edge.group(1)), _unquote(edge.group(2))))
            continue
        node = _NODE_RE.match(line)
        if node and not line.strip().startswith(("graph", "node", "edge")):
            statements += 1
            label = _LABEL_RE.search(node.group(2))
            ident = _unquote(node.group(1))
            labels[ident] = _unquote(label.group(1)) if label else ident
    edges = {(labels.get(a, a), labels.get(b, b)) for a, b in raw_edges}
    return labels, edges, statements


def login(testbed, name: str) -> str:
    """How topology labels a testbed host: user@address:port."""
    host = testbed.host(name)
    return f"{testbed.user}@{host.address}:{host.port}"


def build_topology(testbed, *, keep_connection: bool = False, formatter=None):
    """A scheduler over node1 (direct), node2 (gw1), node3 (gw1-gw2, plain SshProxy), node4 (gw1-gw2-gw3),
    plus a LocalNode job and a second job on node1; returns (scheduler, {name: proxy})."""
    kwds = {"formatter": formatter} if formatter is not None else {}
    gw1 = make_node(testbed, "gw1", **kwds)
    gw2 = make_node(testbed, "gw2", gateway=gw1, **kwds)
    gw3 = make_node(testbed, "gw3", gateway=gw2, **kwds)
    nodes = {
        "gw1": gw1, "gw2": gw2, "gw3": gw3,
        "node1": make_node(testbed, "node1", **kwds),
        "node2": make_node(testbed, "node2", gateway=gw1, **kwds),
        "node3": make_node(testbed, "node3", gateway=gw2, cls=SshProxy, **kwds),
        "node4": make_node(testbed, "node4", gateway=gw3, **kwds),
    }
    jobs = [SshJob(nodes[name], command=f"echo {name}", keep_connection=keep_connection)
            for name in ("node1", "node2", "node3", "node4")]
    jobs.append(SshJob(nodes["node1"], command="echo again", keep_connection=keep_connection))
    jobs.append(SshJob(LocalNode(formatter=CloseRecorder()), command="true"))
    return Scheduler(*jobs, timeout=30), nodes


EXPECTED_EDGES = [("localhost", "node1"), ("localhost", "gw1"), ("gw1", "node2"), ("gw1", "gw2"),
                  ("gw2", "node3"), ("gw2", "gw3"), ("gw3", "node4")]


def expected_edges(testbed) -> set[tuple[str, str]]:
    def name(n):
        return "localhost" if n == "localhost" else login(testbed, n)
    return {(name(a), name(b)) for a, b in EXPECTED_EDGES}


# ---------------------------------------------------------------- graphs
def test_topology_dot_lists_every_node_once_and_every_gateway_edge(testbed):
    """topology_dot(): every node and gateway appears once, with one edge per 'reached through' relation."""
    scheduler, _ = build_topology(testbed)
    labels, edges, statements = parse_dot(topology_dot(scheduler))
    expected_labels = {"localhost"} | {login(testbed, n) for n in
                                       ("node1", "node2", "node3", "node4", "gw1", "gw2", "gw3")}
    assert set(labels.values()) == expected_labels
    assert statements == len(expected_labels)  # node1 has two jobs but appears once
    assert edges == expected_edges(testbed)


def test_topology_dot_covers_nested_schedulers(testbed):
    """Nodes used only inside a nested scheduler appear in the topology too."""
    gw1 = make_node(testbed, "gw1")
    inner = Scheduler(SshJob(make_node(testbed, "node2", gateway=gw1), command="true"))
    outer = Scheduler(Sequence(SshJob(make_node(testbed, "node1"), command="true"), inner))
    _, edges, _ = parse_dot(topology_dot(outer))
    assert edges == {("localhost", login(testbed, "node1")), ("localhost", login(testbed, "gw1")),
                     (login(testbed, "gw1"), login(testbed, "node2"))}


def test_topology_graph_is_a_graphviz_digraph_with_the_dot_source(testbed):
    """topology_graph() returns a graphviz.Digraph whose source is topology_dot()."""
    scheduler, _ = build_topology(testbed)
    graph = topology_graph(scheduler)
    assert isinstance(graph, graphviz.Digraph)
    assert graph.source == topology_dot(scheduler)
    assert parse_dot(graph.source)[1] == expected_edges(testbed)


def test_topology_as_dotfile_writes_the_dot_text(testbed, tmp_path):
    """topology_as_dotfile() writes the DOT text to the given file name."""
    scheduler, _ = build_topology(testbed)
    target = tmp_path / "topo.dot"
    topology_as_dotfile(scheduler, str(target))
    assert target.read_text() == topology_dot(scheduler)


def test_topology_as_pngfile_creates_png_and_dot(testbed, tmp_path):
    """topology_as_pngfile(s, name) renders name.png (a real PNG) and leaves name.dot beside it."""
    scheduler, _ = build_topology(testbed)
    result = topology_as_pngfile(scheduler, str(tmp_path / "topo"))
    assert Path(result) == tmp_path / "topo.png"
    assert (tmp_path / "topo.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "topo.dot").read_text() == topology_dot(scheduler)


# ---------------------------------------------------------------- closing
def test_co_close_ssh_in_scheduler_closes_every_node_and_gateway(testbed, arun):
    """co_close_ssh_in_scheduler() closes all nodes (plain SshProxy included) and their gateways:
    no ESTABLISHED connection to any testbed server remains."""
    before = connection_keys(testbed)
    scheduler, nodes = build_topology(testbed, keep_connection=True)

    async def main():
        assert await scheduler.co_run() is True
        servers = {server for _, server in connection_keys(testbed) - before}
        used = {name for name in nodes if testbed.host(name).endpoint in servers}
        connected = {name for name, node in nodes.items() if node.is_connected()}
        await co_close_ssh_in_scheduler(scheduler)
        still = {name for name, node in nodes.items() if node.is_connected()}
        return used, connected, still

    used, connected, still = arun(main())
    assert used == set(nodes)  # every server had a connection before closing...
    assert connected == set(nodes)
    assert still == set()
    assert no_new_connections(testbed, before)  # ...and none afterwards


def test_close_goes_remotest_first(testbed, arun):
    """Connections are closed remotest first: the order of connection_lost never goes back to a farther host."""
    recorder = CloseRecorder()
    scheduler, nodes = build_topology(testbed, keep_connection=True, formatter=recorder)
    distance = {node.hostname: node.distance() for node in nodes.values()}

    async def main():
        assert await scheduler.co_run() is True
        await co_close_ssh_in_scheduler(scheduler)

    arun(main())
    assert sorted(recorder.closed) == sorted(distance)  # each connection closed exactly once
    order = [distance[host] for host in recorder.closed]
    assert order == sorted(order, reverse=True)
    assert order[0] == 4


def test_manage_gateways_false_leaves_the_gateways_open(testbed, arun):
    """manage_gateways=False closes the job nodes only: gateway connections stay up until closed."""
    before = connection_keys(testbed)
    scheduler, nodes = build_topology(testbed, keep_connection=True)
    gateways = ["gw1", "gw2", "gw3"]

    async def main():
        assert await scheduler.co_run() is True
        await co_close_ssh_in_scheduler(scheduler, manage_gateways=False)
        state = {name: node.is_connected() for name, node in nodes.items()}
        await co_close_ssh_in_scheduler(scheduler, manage_gateways=True)
        return state

    state = arun(main())
    assert state == {name: name in gateways for name in nodes}
    assert no_new_connections(testbed, before)


def test_close_ssh_in_scheduler_after_sync_run_with_kept_connections(testbed):
    """close_ssh_in_scheduler() after a sync Scheduler.run() with keep_connection=True jobs
    closes the connections that the finished event loop left open."""
    before = connection_keys(testbed)
    scheduler, nodes = build_topology(testbed, keep_connection=True)
    assert scheduler.run() is True
    left = connection_keys(testbed) - before
    assert {server for _, server in left} == {testbed.host(name).endpoint for name in nodes}
    close_ssh_in_scheduler(scheduler)
    assert no_new_connections(testbed, before)


def test_close_ssh_in_scheduler_inside_a_running_loop_says_to_await_the_coroutine(testbed, arun):
    """The sync close_ssh_in_scheduler() inside a running event loop cannot close that loop's
    connections: it raises, naming co_close_ssh_in_scheduler, which does close them."""
    before = connection_keys(testbed)
    scheduler, _ = build_topology(testbed, keep_connection=True)

    async def main():
        assert await scheduler.co_run() is True
        with pytest.raises(RuntimeError, match="await co_close_ssh_in_scheduler"):
            close_ssh_in_scheduler(scheduler)
        still_open = bool(connection_keys(testbed) - before)
        await co_close_ssh_in_scheduler(scheduler)
        return still_open

    assert arun(main()) is True
    assert no_new_connections(testbed, before)


def connections_logged(testbed) -> int:
    return sum(testbed.count_log(host, "Connection from") for host in testbed.hosts)


def test_closing_never_connected_nodes_opens_nothing_and_returns(testbed, arun):
    """Closing nodes that never connected opens no connection and does not wait for their connect timeout."""
    scheduler, nodes = build_topology(testbed)
    # never contacted either: an unroutable address with a long connect timeout
    silent = SshNode("10.255.255.1", username=testbed.user, timeout=60, formatter=CloseRecorder())
    scheduler.add(SshJob(silent, command="true"))
    logged = connections_logged(testbed)
    arun(co_close_ssh_in_scheduler(scheduler), timeout=10)  # a connect attempt would hang past this guard
    close_ssh_in_scheduler(scheduler)
    assert connections_logged(testbed) == logged
    assert all(node.conn is None for node in [*nodes.values(), silent])


def test_closing_already_closed_nodes_is_a_no_op(testbed):
    """After a run whose jobs closed their connections, close_ssh_in_scheduler() reconnects nothing."""
    before = connection_keys(testbed)
    scheduler, nodes = build_topology(testbed)
    assert scheduler.run() is True
    assert no_new_connections(testbed, before)
    logged = connections_logged(testbed)
    close_ssh_in_scheduler(scheduler)
    close_ssh_in_scheduler(scheduler)
    assert connections_logged(testbed) == logged
    assert not any(node.is_connected() for node in nodes.values())


def test_closed_nodes_reconnect_on_next_run(testbed):
    """After close_ssh_in_scheduler(), the same scheduler's nodes reconnect when they run again."""
    recorder = CloseRecorder()
    gw1 = make_node(testbed, "gw1", formatter=recorder)
    node = make_node(testbed, "node2", gateway=gw1, formatter=recorder)
    first = Scheduler(SshJob(node, commands=[Run("echo one")], keep_connection=True), timeout=30)
    assert first.run() is True
    close_ssh_in_scheduler(first)
    second = Scheduler(SshJob(node, commands=[Run("echo two")]), timeout=30)
    assert second.run() is True
    assert recorder.stdout() == ["one\n", "two\n"]
    close_ssh_in_scheduler(second)

"""The nodes and gateways of a scheduler: graphs of who is reached through whom, and closing.

Graphs are built with the ``graphviz`` package (``dot`` is needed only for images).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import graphviz

from .nodes import LocalNode
from .sshproxy import SshProxy

LOCALHOST_ID = "localhost"


def _job_nodes(scheduler) -> list:
    """Nodes (SshProxy or LocalNode) named by the jobs of ``scheduler``, nested ones included."""
    seen, result = set(), []
    for job in scheduler.iterate_jobs(scan_schedulers=True):
        node = getattr(job, "node", None)
        if isinstance(node, (SshProxy, LocalNode)) and id(node) not in seen:
            seen.add(id(node))
            result.append(node)
    return result


def ssh_nodes(scheduler, manage_gateways: bool = True) -> list[SshProxy]:
    """SshProxy instances used by ``scheduler``'s jobs, plus their gateways when asked."""
    result: dict[int, SshProxy] = {}
    for node in _job_nodes(scheduler):
        hop = node if isinstance(node, SshProxy) else None
        while hop is not None:
            result.setdefault(id(hop), hop)
            hop = hop.effective_gateway() if manage_gateways else None
    return list(result.values())


def _graph_id(node) -> str:
    """A stable DOT id, user@host#port: the same for two objects naming one login.

    No colon in it: DOT would read ``host:port`` as a node port.
    """
    return LOCALHOST_ID if isinstance(node, LocalNode) else f"{node.username}@{node.hostname}#{node.port}"


def topology_graph(scheduler) -> graphviz.Digraph:
    """A graphviz Digraph of the relation "x is used as a gateway to reach y".

    The local host is the root; each node appears once, however many jobs use it.
    """
    graph = graphviz.Digraph("topology", graph_attr={"rankdir": "LR"},
                             node_attr={"shape": "box", "style": "rounded"})
    graph.node(LOCALHOST_ID, "localhost", shape="ellipse")
    for node in ssh_nodes(scheduler, manage_gateways=True):
        graph.node(_graph_id(node), f"{node.username}@{node.hostname}"
                   + (f":{node.port}" if node.port != 22 else ""))  # label hides the default port
        hop = node.effective_gateway()
        graph.edge(_graph_id(hop) if hop is not None else LOCALHOST_ID, _graph_id(node))
    return graph


def topology_dot(scheduler) -> str:
    """The topology of ``scheduler`` as DOT text."""
    return topology_graph(scheduler).source


def topology_as_dotfile(scheduler, filename: str) -> str:
    """Write the topology as DOT text in ``filename``; returns the file name."""
    with open(filename, "w", encoding="utf-8") as output:
        output.write(topology_dot(scheduler))
    return filename


def topology_as_pngfile(scheduler, filename: str) -> str:
    """Render the topology to ``<filename>.png`` (``<filename>.dot`` is left beside it).

    Returns:
        the name of the PNG file.

    Raises:
        graphviz.ExecutableNotFound when the ``dot`` program is missing
        (``apt-get install graphviz``).
    """
    return topology_graph(scheduler).render(filename=f"{filename}.dot", outfile=f"{filename}.png")


async def co_close_ssh_in_scheduler(scheduler, manage_gateways: bool = True) -> None:
    """Close every SSH connection used by ``scheduler`` (nested schedulers included).

    Nodes are closed remotest first, all nodes at one distance at once; plain SshProxy
    nodes are included.  With ``manage_gateways`` the gateways of those nodes are
    closed too, after the nodes behind them.
    """
    by_distance: dict[int, list[SshProxy]] = defaultdict(list)
    nodes = ssh_nodes(scheduler, manage_gateways)
    if not manage_gateways:
        # the gateways are left to the caller: closing the nodes behind them must not
        # release (and so close) them; they stay open until closed explicitly
        chosen = {id(node) for node in nodes}
        for node in nodes:
            hop = node.effective_gateway()
            while hop is not None:
                if id(hop) not in chosen:
                    hop.keep_open()
                hop = hop.effective_gateway()
    for node in nodes:
        by_distance[node.distance()].append(node)
    for distance in sorted(by_distance, reverse=True):
        await asyncio.gather(*(node.close() for node in by_distance[distance]), return_exceptions=True)


def close_ssh_in_scheduler(scheduler, manage_gateways: bool = True) -> None:
    """Synchronous version of :func:`co_close_ssh_in_scheduler`, for code outside any event loop.

    Raises:
        RuntimeError inside a running event loop: the connections belong to that loop and
        only it can close them; ``await co_close_ssh_in_scheduler(scheduler)`` instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(co_close_ssh_in_scheduler(scheduler, manage_gateways))
        return
    raise RuntimeError("close_ssh_in_scheduler() called inside a running event loop, whose "
                       "connections it cannot close: use "
                       "'await co_close_ssh_in_scheduler(scheduler)' instead")

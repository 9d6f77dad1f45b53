"""The topology tree: the local host, each gateway, the nodes behind it, connection states."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree

from apssh_tui.core.connections import Connection

from .shown import shown
from .styles import CONNECTION_STYLES


def connection_label(connection: Connection) -> Text:
    text = Text(connection.label + "  ")
    text.append(connection.state.value, style=CONNECTION_STYLES[connection.state])
    if connection.reason:
        text.append(f"  {connection.reason}", style="dim")
    return text


class TopologyTree(Tree):
    """localhost -> gateways -> nodes, each with its connection state."""

    def __init__(self, connections, **kwds):
        super().__init__("localhost", **kwds)
        self.connections = connections
        self._tree_items = {}
        self._dirty: set[str] = set()
        self.relabels = 0  # passes that relabelled connections (none while the tree is hidden)

    def on_mount(self) -> None:
        self.root.expand()

        def add(parent, connection):
            node = parent.add(connection_label(connection), data=connection.key, expand=True)
            self._tree_items[connection.key] = node
            for child in connection.children:
                add(node, self.connections.connections[child])
        for root in self.connections.roots():
            add(self.root, root)

    def mark_dirty(self, key: str) -> None:
        self._dirty.add(key)

    def refresh_labels(self) -> None:
        """Relabel the connections that changed, when the tree is shown (hidden, they wait
        until its tab is shown again: see apssh_tui.widgets.shown)."""
        if not self._dirty or not shown(self):
            return
        self.relabels += 1
        for key in self._dirty:
            if key in self._tree_items:
                self._tree_items[key].set_label(connection_label(self.connections.connections[key]))
        self._dirty = set()

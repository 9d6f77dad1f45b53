"""The topology: the local host, each gateway, the nodes behind it, and each connection's state.

Every node of the scenario gets a :class:`ConnectionWatcher` as its formatter, which turns
apssh's connection events into states of this model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from apssh.formatters import COMMAND_FORMATTER, Formatter
from apssh.nodes import LocalNode
from apssh.sshproxy import SshProxy
from apssh.topology import ssh_nodes

from .natural import natural_key

#: SSH connections the app sets up at once (apssh.limit_handshakes), ``apssh-tui --handshakes``:
#: the handshakes run on the screen's event loop, and every ready callback of the handshakes under
#: way runs before the next key; with 4, a key reaches the screen in under 100 ms (p99) while
#: 250 hosts connect on a 2-core machine (bench/RESULTS.md), at the cost of a slower connection
#: phase when each handshake waits long on the network
HANDSHAKES_AT_ONCE = 4


class ConnectionState(str, Enum):
    NOT_CONNECTED = "not connected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SFTP_OPEN = "SFTP open"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass
class Connection:
    """One node (or gateway) and the state of its SSH connection."""

    key: str
    label: str
    gateway: str | None
    state: ConnectionState = ConnectionState.NOT_CONNECTED
    reason: str = ""
    children: list[str] = field(default_factory=list)


def node_key(node) -> str:
    """``user@host:port``: one key per login, whatever object stands for it."""
    if isinstance(node, LocalNode):
        return "localhost"
    return f"{node.username}@{node.hostname}:{node.port}"


class ConnectionModel:
    """Connections of a scheduler's nodes and gateways, as a tree rooted at the local host."""

    def __init__(self, scheduler=None):
        self.connections: dict[str, Connection] = {}
        self._listeners: list[Callable[[Connection], None]] = []
        if scheduler is not None:
            for node in ssh_nodes(scheduler, manage_gateways=True):
                self._add(node)

    @classmethod
    def from_saved(cls, saved: list[dict]) -> ConnectionModel:
        """The connections a record directory kept (``run.json``'s ``connections``)."""
        model = cls(None)
        for data in saved:
            model.connections[data["key"]] = Connection(
                data["key"], data["label"], data["gateway"], ConnectionState(data["state"]), data["reason"])
        for connection in model.connections.values():
            if connection.gateway in model.connections:
                model.connections[connection.gateway].children.append(connection.key)
        return model

    def _add(self, node: SshProxy) -> Connection:
        key = node_key(node)
        if key in self.connections:
            return self.connections[key]
        hop = node.effective_gateway()
        parent = self._add(hop).key if hop is not None else None
        label = f"{node.username}@{node.hostname}" + (f":{node.port}" if node.port != 22 else "")
        connection = Connection(key, label, parent)
        self.connections[key] = connection
        if parent is not None:
            self.connections[parent].children.append(key)
            # jobs come from a set: show them in a stable, natural order
            self.connections[parent].children.sort(key=natural_key)
        node.formatter = ConnectionWatcher(self, key, verbose=bool(getattr(node.formatter, "verbose", False)))
        return connection

    def roots(self) -> list[Connection]:
        """Connections made directly from the local host."""
        return sorted((c for c in self.connections.values() if c.gateway is None), key=lambda c: natural_key(c.key))

    def connecting_meter(self) -> str:
        """``connecting 37/100`` while connections are being opened (37 settled, opened or failed,
        out of 100 nodes and gateways); empty when none is being opened."""
        states = [connection.state for connection in self.connections.values()]
        if ConnectionState.CONNECTING not in states:
            return ""
        settled = sum(state in (ConnectionState.CONNECTED, ConnectionState.SFTP_OPEN, ConnectionState.FAILED)
                      for state in states)
        return f"connecting {settled}/{len(states)}"

    def subscribe(self, listener: Callable[[Connection], None]) -> None:
        self._listeners.append(listener)

    def settle(self) -> None:
        """After a run: a connection still being opened was given up (an abort, a timeout)."""
        for connection in self.connections.values():
            if connection.state == ConnectionState.CONNECTING:
                self.set_state(connection.key, ConnectionState.NOT_CONNECTED, "given up: the run ended")

    def set_state(self, key: str, state: ConnectionState, reason: str = "") -> None:
        connection = self.connections[key]
        connection.state = state
        connection.reason = reason
        for listener in self._listeners:
            listener(connection)


class ConnectionWatcher(Formatter):
    """A node's formatter that reports connection events to the model.

    Lines never come here: the runner gives every job its own formatter.  When the node was
    verbose (``verbose`` true), its events are passed on to the formatter of the job being run
    (COMMAND_FORMATTER), so they show in that job's output like every other line.
    """

    def __init__(self, model: ConnectionModel, key: str, verbose: bool = False):
        super().__init__("@host@:@line@", verbose=verbose)
        self.model = model
        self.key = key

    def announce(self, hostname, message):
        target = COMMAND_FORMATTER.get()
        if target is not None and target is not self:
            target.announce(hostname, message)

    def connecting(self, hostname, username, via):
        self.model.set_state(self.key, ConnectionState.CONNECTING, f"via {via}" if via else "")
        super().connecting(hostname, username, via)

    def connection_failed(self, hostname, username, reason):
        self.model.set_state(self.key, ConnectionState.FAILED, reason)
        super().connection_failed(hostname, username, reason)

    def connection_made(self, hostname, username, direct):
        self.model.set_state(self.key, ConnectionState.CONNECTED)
        super().connection_made(hostname, username, direct)

    def connection_lost(self, hostname, exc, username):
        if self.model.connections[self.key].state != ConnectionState.FAILED:
            self.model.set_state(self.key, ConnectionState.CLOSED, str(exc) if exc else "")
        super().connection_lost(hostname, exc, username)

    def sftp_start(self, hostname):
        self.model.set_state(self.key, ConnectionState.SFTP_OPEN)
        super().sftp_start(hostname)

    def sftp_stop(self, hostname):
        if self.model.connections[self.key].state == ConnectionState.SFTP_OPEN:
            self.model.set_state(self.key, ConnectionState.CONNECTED)
        super().sftp_stop(hostname)

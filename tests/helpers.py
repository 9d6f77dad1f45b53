"""Shared helpers for the apssh tests: node builders and recording formatters."""

from __future__ import annotations

from apssh.formatters import STDERR, STDOUT, Formatter
from apssh.nodes import SshNode
from apssh.sshproxy import SshProxy


class RecordingFormatter(Formatter):
    """Keeps every ``(datatype, line)`` received, the number of ``lines()`` calls, and events."""

    def __init__(self):
        super().__init__("@line@", verbose=True)
        self.records: list[tuple[object, str]] = []
        self.calls = 0
        self.events: list[tuple[str, str]] = []

    def lines(self, lines, datatype, hostname, username=None):
        self.calls += 1
        self.records.extend((datatype, line) for line in lines)

    def event(self, hostname, message):
        self.events.append((hostname, message))

    def stdout(self) -> list[str]:
        """The stdout lines received, in order."""
        return [line for datatype, line in self.records if datatype == STDOUT]

    def stderr(self) -> list[str]:
        """The stderr lines received, in order."""
        return [line for datatype, line in self.records if datatype == STDERR]


def make_node(testbed, name: str, *, cls=SshNode, gateway: SshProxy | None = None,
              formatter: Formatter | None = None, **kwds) -> SshProxy:
    """An SshNode (or ``cls``) for testbed host ``name``, logged in as the testbed user."""
    host = testbed.host(name)
    kwds.setdefault("username", testbed.user)
    return cls(host.address, port=host.port, gateway=gateway,
               formatter=formatter if formatter is not None else RecordingFormatter(), **kwds)


def make_chain(testbed, names: list[str], **kwds) -> list[SshProxy]:
    """Nodes for ``names`` in order, each one the gateway of the next (first is direct)."""
    chain: list[SshProxy] = []
    for name in names:
        chain.append(make_node(testbed, name, gateway=chain[-1] if chain else None, **kwds))
    return chain

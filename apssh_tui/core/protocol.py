"""What the screens need from a session: a live run (core.session.Session) and a recorded one
(core.replay.ReplaySession) both provide it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from .connections import ConnectionModel
from .output import OutputStore
from .runner import Runner
from .states import StateModel


@runtime_checkable
class SessionLike(Protocol):
    """A scenario's jobs, output, topology and services, and what can be done with them.

    Attributes:
        model: every job's state.
        store: every line of output.
        connections: the topology and each connection's state.
        services: ``service_id@node`` -> ServiceUse (empty in a replay).
        runner: runs, aborts and re-runs jobs; None when nothing can run (a replay).
        record_dir: the record directory, or None without one.
    """

    model: StateModel
    store: OutputStore
    connections: ConnectionModel
    services: dict
    runner: Runner | None
    record_dir: Path | None

    def save(self, ok: bool | None = None) -> Path | None:
        """Write the record's run.json (a replay writes nothing)."""

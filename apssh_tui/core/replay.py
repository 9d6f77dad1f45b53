"""A finished run read back from its record directory, shaped like a live Session."""

from __future__ import annotations

from pathlib import Path

from .connections import Connection, ConnectionModel, ConnectionState
from .output import OutputStore
from .record import OUTPUT_DIR, load_run
from .states import StateModel

SUFFIX_STREAMS = {".out": "out", ".err": "err", ".events": "event"}


class ReplaySession:
    """Jobs, output and topology of a recorded run; nothing can be run from it.

    Raises:
        FileNotFoundError / ValueError when ``directory`` is not a readable record.
    """

    runner = None
    services: dict = {}

    def __init__(self, directory: str | Path):
        self.run = load_run(directory)
        self.record_dir = Path(directory)
        self.scenario_name = self.run.scenario
        self.model = StateModel.from_records(self.run.jobs)
        self.store = OutputStore(None)
        output = self.record_dir / OUTPUT_DIR
        for record in self.model:
            folder = output / _safe_name(record.key)
            for path in sorted(folder.glob("*")) if folder.is_dir() else []:
                stream = SUFFIX_STREAMS.get(path.suffix)
                if stream is not None:
                    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
                    self.store.add(record.key, path.stem, stream, lines)
        self.connections = ConnectionModel.__new__(ConnectionModel)
        self.connections.connections = {}
        self.connections._listeners = []
        for data in self.run.connections:
            self.connections.connections[data["key"]] = Connection(
                data["key"], data["label"], data["gateway"], ConnectionState(data["state"]), data["reason"])
        for connection in self.connections.connections.values():
            if connection.gateway in self.connections.connections:
                self.connections.connections[connection.gateway].children.append(connection.key)


def _safe_name(name: str) -> str:
    from .output import _safe
    return _safe(name)

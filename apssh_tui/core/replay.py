"""A finished run read back from its record directory: the same interface as a live Session
(see :class:`apssh_tui.core.protocol.SessionLike`), with nothing that can run."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from .connections import ConnectionModel
from .output import SUFFIXES, TIMELINE_FILE, OutputStore, record_path
from .record import OUTPUT_DIR, load_run
from .states import StateModel

SUFFIX_STREAMS = {f".{suffix}": stream for stream, suffix in SUFFIXES.items()}
#: record files a replay keeps open at once while it reads them in time order
OPEN_FILES = 128


class ReplaySession:
    """Jobs, output and topology of a recorded run; nothing can be run from it.

    Raises:
        FileNotFoundError / ValueError when ``directory`` is not a readable record.
    """

    runner = None

    def __init__(self, directory: str | Path):
        self.run = load_run(directory)
        self.record_dir = Path(directory)
        self.scenario_name = self.run.scenario
        self.services: dict = {}
        self.model = StateModel.from_records(self.run.jobs)
        output = self.record_dir / OUTPUT_DIR
        # the lines that leave memory are read back from the record itself, never written to it
        self.store = OutputStore(output if output.is_dir() else None, writes=False)
        if (output / TIMELINE_FILE).is_file():
            load_timeline(self.store, output)
        else:
            load_by_job(self.store, output, self.model)
        self.connections = ConnectionModel.from_saved(self.run.connections)

    def save(self, ok: bool | None = None) -> None:
        """A replay writes nothing."""
        return None


def load_timeline(store: OutputStore, output: Path) -> None:
    """Read a record's output into ``store`` in the order it arrived (``timeline.tsv``)."""
    handles: OrderedDict[Path, object] = OrderedDict()
    offsets: dict[Path, int] = {}
    try:
        with open(output / TIMELINE_FILE, encoding="utf-8") as timeline:
            for row in timeline:
                try:
                    when, job, host, stream, attempt, count = row.rstrip("\n").split("\t")
                    attempt, count, when = int(attempt), int(count), float(when)
                except ValueError:
                    continue  # a row cut short by a crash: the files still hold the lines
                if attempt > store.attempt(job):
                    store.begin_attempt(job, attempt, when)
                path = record_path(output, job, host, stream, attempt)
                handle = handles.pop(path, None)
                if handle is None:
                    if not path.is_file():
                        continue
                    if len(handles) >= OPEN_FILES:
                        old_path, old = handles.popitem(last=False)
                        offsets[old_path] = old.tell()
                        old.close()
                    handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - kept open
                    handle.seek(offsets.pop(path, 0))
                handles[path] = handle
                lines = [line for line in (handle.readline() for _ in range(count)) if line]
                store.add(job, host, stream, lines, when=when)
    finally:
        for handle in handles.values():
            handle.close()


def load_by_job(store: OutputStore, output: Path, model: StateModel) -> None:
    """Read a record without a timeline (older records): job after job, in start order."""
    records = sorted(model, key=lambda record: (record.started or 0.0))
    for record in records:
        folder = output / _safe_name(record.key)
        if not folder.is_dir():
            continue
        attempts = [(1, folder)] + sorted(
            (int(sub.name.split("-", 1)[1]), sub) for sub in folder.glob("attempt-*")
            if sub.is_dir() and sub.name.split("-", 1)[1].isdigit())
        for attempt, where in attempts:
            if attempt > 1:
                store.begin_attempt(record.key, attempt, _attempt_start(record, attempt))
            for path in sorted(where.glob("*")):
                stream = SUFFIX_STREAMS.get(path.suffix)
                if stream is not None and path.is_file():
                    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
                    store.add(record.key, path.stem, stream, lines)


def _attempt_start(record, attempt: int) -> float | None:
    if len(record.history) >= attempt:
        return record.history[attempt - 1].get("started")
    return None


def _safe_name(name: str) -> str:
    from .output import safe_name
    return safe_name(name)

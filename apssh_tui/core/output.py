"""Remote output, per job and host: bounded in memory, complete on disk.

Each job gets a :class:`JobFormatter` (an apssh Formatter) that the runner installs
around the job, so every line is attributed to its job and host.  The store keeps the
last lines of each (job, host) and of all hosts interleaved, a running digest of the
complete output (for gathering identical outputs), and appends everything to files
``<dir>/<job>/<host>.out`` and ``.err`` when given a directory.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from apssh.formatters import STDERR, Formatter

STDOUT_NAME, STDERR_NAME, EVENT_NAME = "out", "err", "event"


@dataclass
class Stream:
    """The output of one host in one job."""

    lines: deque
    digest: object = field(default_factory=hashlib.sha1)
    line_count: int = 0
    dropped: int = 0  # lines no longer in memory (still on disk)


@dataclass(frozen=True)
class Entry:
    """One line as shown in the interleaved view."""

    seq: int
    time: float
    job: str
    host: str
    stream: str
    text: str


class OutputStore:
    """Where every line goes.

    Args:
        directory: when set, complete output is appended to ``<directory>/<job>/<host>.out|.err``.
        keep_lines: lines kept in memory per (job, host).
        keep_interleaved: lines kept in memory for the all-hosts view.
    """

    def __init__(self, directory: str | Path | None = None, keep_lines: int = 5000,
                 keep_interleaved: int = 20000):
        self.directory = Path(directory) if directory else None
        self.keep_lines = keep_lines
        self.streams: dict[tuple[str, str], Stream] = {}
        self.interleaved: deque[Entry] = deque(maxlen=keep_interleaved)
        self.seq = 0

    def _stream(self, job: str, host: str) -> Stream:
        key = (job, host)
        if key not in self.streams:
            self.streams[key] = Stream(deque(maxlen=self.keep_lines))
        return self.streams[key]

    def add(self, job: str, host: str, stream: str, lines: list[str]) -> None:
        """A batch of lines (each with its newline) from ``host`` in ``job``."""
        if not lines:
            return
        now = time.time()
        record = self._stream(job, host)
        texts = [line[:-1] if line.endswith("\n") else line for line in lines]
        overflow = len(record.lines) + len(texts) - self.keep_lines
        if overflow > 0:
            record.dropped += min(overflow, len(record.lines) + len(texts))
        record.lines.extend((stream, text) for text in texts)
        record.line_count += len(texts)
        if stream != EVENT_NAME:
            # line by line: the same output must give the same digest however it was split in batches
            for text in texts:
                record.digest.update(f"{stream}\0{text}\n".encode("utf-8", "replace"))
        for text in texts:
            self.seq += 1
            self.interleaved.append(Entry(self.seq, now, job, host, stream, text))
        if self.directory is not None:
            self._write(job, host, stream, lines)

    def _write(self, job: str, host: str, stream: str, lines: list[str]) -> None:
        folder = self.directory / _safe(job)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = "err" if stream == STDERR_NAME else "out" if stream == STDOUT_NAME else "events"
        # appended per batch: a thousand hosts must not hold a thousand descriptors
        with open(folder / f"{_safe(host)}.{suffix}", "a", encoding="utf-8") as out:
            out.writelines(line if line.endswith("\n") else line + "\n" for line in lines)

    def lines(self, job: str, host: str) -> list[tuple[str, str]]:
        """(stream, text) pairs kept in memory for ``host`` in ``job``."""
        stream = self.streams.get((job, host))
        return list(stream.lines) if stream else []

    def hosts(self, job: str) -> list[str]:
        return [host for (job_key, host) in self.streams if job_key == job]

    def digest(self, job: str, host: str) -> str:
        stream = self.streams.get((job, host))
        return stream.digest.hexdigest() if stream else hashlib.sha1().hexdigest()

    def since(self, seq: int) -> list[Entry]:
        """Interleaved entries newer than ``seq`` (still in memory)."""
        if not self.interleaved or self.interleaved[-1].seq <= seq:
            return []
        start = max(0, len(self.interleaved) - (self.interleaved[-1].seq - seq))
        return [self.interleaved[i] for i in range(start, len(self.interleaved))]

    def search(self, text: str, job: str | None = None, host: str | None = None) -> list[Entry]:
        """Entries in memory whose line contains ``text`` (case-insensitive)."""
        needle = text.lower()
        return [entry for entry in self.interleaved
                if needle in entry.text.lower()
                and (job is None or entry.job == job) and (host is None or entry.host == host)]

    def save(self, path: str | Path, job: str | None = None, host: str | None = None) -> Path:
        """Write the lines in memory (optionally one job / host) to ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            for entry in self.interleaved:
                if (job is None or entry.job == job) and (host is None or entry.host == host):
                    out.write(f"{entry.host} [{entry.job}] {entry.stream}: {entry.text}\n")
        return target


def _safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_.@" else "_" for char in name) or "_"


class JobFormatter(Formatter):
    """The formatter commands of one job write to: lines go to the store under that job."""

    def __init__(self, store: OutputStore, job: str):
        # not verbose: session events would clutter the output; announce() still records
        # what verbose commands say they run
        super().__init__("@line@", verbose=False)
        self.store = store
        self.job = job

    def lines(self, lines, datatype, hostname, username=None):
        self.store.add(self.job, hostname, STDERR_NAME if datatype == STDERR else STDOUT_NAME, lines)

    def line(self, line, datatype, hostname):
        self.lines([line], datatype, hostname)

    def announce(self, hostname, message):
        self.store.add(self.job, hostname, EVENT_NAME, [message])

"""Remote output, per job and host: bounded in memory, complete on disk.

Each job gets a :class:`JobFormatter` (an apssh Formatter) that the runner installs
around the job, so every line is attributed to its job and host.  The store keeps the
last lines of each (job, host) (the job and host views read those, so one chatty job never
pushes another one's lines out), the last lines of all hosts interleaved (the "all" view),
a digest of each host's current attempt (for gathering identical outputs), and appends
everything to the record files when given a directory::

    <dir>/<job>/<host>.out | .err | .events              attempt 1
    <dir>/<job>/attempt-<n>/<host>.out | .err | .events  attempt n (2, 3...)
    <dir>/timeline.tsv                                   one row per batch, in arrival order:
                                                         time, job, host, stream, attempt, line count
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from apssh import keys
from apssh.formatters import STDERR, Formatter

STDOUT_NAME, STDERR_NAME, EVENT_NAME = "out", "err", "event"
#: the stream of the separator a view shows where a job's attempt 2, 3... begins
ATTEMPT_NAME = "attempt"
SUFFIXES = {STDOUT_NAME: "out", STDERR_NAME: "err", EVENT_NAME: "events"}
TIMELINE_FILE = "timeline.tsv"
#: lines waiting to be written to the record files at most (see RecordFiles)
PENDING_LINES = 50_000
#: seconds lines wait to be written to the record files at most, while more lines come
FLUSH_SECONDS = 2.0


class Line(NamedTuple):
    """One line of output (or an attempt separator), as received.

    ``seq`` orders every line of the store (arrival order); ``stream`` is ``out``, ``err``,
    ``event`` or ``attempt``; ``attempt`` counts from 1.

    In memory the store keeps each line as a plain tuple of the same fields in the same order
    (a *raw line*: ``line[TEXT]``, and ``Line._make(line)`` gives a Line): the garbage collector
    stops tracking a tuple of strings and numbers, while it goes over every instance of a
    tuple subclass such as Line at each full collection (100,000 lines in memory: a pause of
    0.1-0.2 s every few seconds while hosts stream).  The reading methods give Lines unless
    asked for raw lines (``raw=True``, for the views).
    """

    seq: int
    time: float
    job: str
    host: str
    stream: str
    text: str
    attempt: int = 1


#: the former name of a line of the interleaved view
Entry = Line
#: the index of each field in a line (a raw line or a Line)
SEQ, TIME, JOB, HOST, STREAM, TEXT, ATTEMPT = range(7)


def as_line(raw) -> Line:
    """A raw line (or a Line) as a Line."""
    return raw if isinstance(raw, Line) else Line._make(raw)


@dataclass
class Stream:
    """The output of one host in one job (every attempt, the last ``keep_lines`` lines, as raw
    lines: see Line)."""

    lines: deque
    attempt: int = 1
    digest: object = field(default_factory=hashlib.sha1)  # of the current attempt
    line_count: int = 0
    dropped: int = 0  # lines no longer in memory (still on disk)


def record_path(directory: Path, job: str, host: str, stream: str, attempt: int = 1) -> Path:
    """Where the record keeps ``stream`` of ``host`` in ``job``'s attempt ``attempt``."""
    folder = directory / safe_name(job)
    if attempt > 1:
        folder = folder / f"attempt-{attempt}"
    return folder / f"{safe_name(host)}.{SUFFIXES[stream]}"


class RecordFiles:
    """The record files being appended to, written behind: lines wait in memory until
    :meth:`flush`, until :data:`PENDING_LINES` wait or :data:`FLUSH_SECONDS` passed, then each
    file is opened once and written in one go (opening two files per batch cost ten times what
    keeping the lines does; keeping them open would cost a descriptor per host)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._pending: dict[tuple | None, list[str]] = {}
        self._count = 0
        self._paths: dict[tuple | None, Path] = {}
        self._flushed = time.monotonic()
        timeline = directory / TIMELINE_FILE
        self.timeline_size = timeline.stat().st_size if timeline.is_file() else 0  # written or pending

    def _path(self, key: tuple | None) -> Path:
        path = self._paths.get(key)
        if path is None:
            path = self.directory / TIMELINE_FILE if key is None else record_path(self.directory, *key)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._paths[key] = path
        return path

    def append(self, key: tuple | None, lines: list[str]) -> None:
        """``lines`` at the end of the file of ``key`` ((job, host, stream, attempt); None: the timeline)."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = []
        pending.extend(line if line.endswith("\n") else line + "\n" for line in lines)
        if key is None:
            self.timeline_size += sum(len(line.encode("utf-8", "replace")) for line in lines)
        self._count += len(lines)
        if self._count >= PENDING_LINES or time.monotonic() - self._flushed > FLUSH_SECONDS:
            self.flush()

    def append_text(self, key: tuple | None, text: str, count: int, check: bool = True) -> None:
        """``count`` lines, already joined with their newlines in ``text``, at the end of the
        file of ``key`` (see :meth:`append`): one string per batch, not one per line.
        ``check``: False when another append follows at once (it decides whether to flush)."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = []
        pending.append(text)
        if key is None:
            self.timeline_size += len(text.encode("utf-8", "replace"))
        self._count += count
        if check and (self._count >= PENDING_LINES or time.monotonic() - self._flushed > FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        pending, self._pending, self._count = self._pending, {}, 0
        self._flushed = time.monotonic()
        for key, lines in pending.items():
            with open(self._path(key), "a", encoding="utf-8", errors="replace") as out:
                out.write("".join(lines))

    close = flush


class OutputStore:
    """Where every line goes.

    Memory is bounded whatever the number of hosts: each (job, host) keeps its last
    ``keep_lines`` lines, fewer when there are many of them (``keep_total`` lines in all, but
    never fewer than ``keep_min`` per (job, host)); the record files keep everything, and the
    views read the lines that left memory back from them (see :mod:`apssh_tui.core.recorded`).

    Args:
        directory: where the record files are (see the module doc); None: memory only.
        keep_lines: lines kept in memory per (job, host) at most (default 5000).
        keep_interleaved: lines kept in memory for the all-hosts view (default 20000).
        keep_total: lines kept in memory for all the (job, host) together (default 100,000),
            so about 25 MB whatever the number of hosts.
        keep_min: lines kept per (job, host) at least (default 100), even beyond ``keep_total``.
        writes: False for a store that reads an existing record (a replay) without writing to it.
    """

    def __init__(self, directory: str | Path | None = None, keep_lines: int = 5000,
                 keep_interleaved: int = 20000, keep_total: int = 100_000, keep_min: int = 100,
                 writes: bool = True):
        self.directory = Path(directory) if directory else None
        self.writes = writes
        self.keep_lines = keep_lines
        self.keep_total = keep_total
        self.keep_min = min(keep_min, keep_lines)
        self.limit = keep_lines  # what each (job, host) keeps now
        self.streams: dict[tuple[str, str], Stream] = {}
        self.interleaved: deque[tuple] = deque(maxlen=keep_interleaved)  # raw lines (see Line)
        self.seq = 0
        self._hosts_of_job: dict[str, list[str]] = {}
        self._jobs_of_host: dict[str, list[str]] = {}
        self._attempt: dict[str, int] = {}
        self._markers: dict[str, list[Line]] = {}
        self._files = RecordFiles(self.directory) if self.directory is not None and writes else None
        self._timeline_start: dict[str, int] = {}  # where each job's first timeline row is (bytes)

    # -- receiving
    def begin_attempt(self, job: str, attempt: int, when: float | None = None) -> None:
        """``job`` starts its attempt number ``attempt`` (1 for the first run).

        From the second attempt on, views show a separator there, gathering only looks at
        the new attempt's output, and the record keeps it in ``attempt-<n>/``.
        """
        self._attempt[job] = attempt
        for host in self._hosts_of_job.get(job, []):
            stream = self.streams[(job, host)]
            stream.attempt = attempt
            stream.digest = hashlib.sha1()
        if attempt > 1:
            self.seq += 1
            stamp = time.strftime("%H:%M:%S", time.localtime(when if when is not None else time.time()))
            marker = Line(self.seq, when or time.time(), job, "", ATTEMPT_NAME,
                          f"── attempt {attempt}, {stamp} ──", attempt)
            self._markers.setdefault(job, []).append(marker)
            self.interleaved.append(marker)

    def attempt(self, job: str) -> int:
        """The attempt of ``job`` now running or last run (1 before any)."""
        return self._attempt.get(job, 1)

    def _stream(self, job: str, host: str) -> Stream:
        key = (job, host)
        if key not in self.streams:
            self.streams[key] = Stream(deque(maxlen=self.limit), attempt=self.attempt(job))
            self._hosts_of_job.setdefault(job, []).append(host)
            self._jobs_of_host.setdefault(host, []).append(job)
            self._bound_memory()
        return self.streams[key]

    def _bound_memory(self) -> None:
        """Fewer lines per (job, host) when there are many: ``keep_total`` in all.  Halved at
        most once per doubling of the streams, so 1000 hosts cost a few passes, not 1000."""
        wanted = max(self.keep_min, min(self.keep_lines, self.keep_total // len(self.streams)))
        if wanted * 2 > self.limit:
            return
        self.limit = wanted
        for stream in self.streams.values():
            excess = len(stream.lines) - wanted
            if excess > 0:
                stream.dropped += excess
            stream.lines = deque(stream.lines, maxlen=wanted)

    def add(self, job: str, host: str, stream: str, lines: list[str], when: float | None = None) -> None:
        """A batch of lines (each with its newline) from ``host`` in ``job``.

        ``when``: reception time (default now; a replay gives the recorded one).
        """
        if not lines:
            return
        now = time.time() if when is None else when
        record = self._stream(job, host)
        attempt = record.attempt
        count = len(lines)
        texts = [line[:-1] if line[-1:] == "\n" else line for line in lines]
        overflow = len(record.lines) + count - record.lines.maxlen
        if overflow > 0:
            record.dropped += min(overflow, len(record.lines) + count)
        record.line_count += count
        # every line with its newline, in one string: what the record file gets, and (after
        # the stream's name on each line) what the digest reads, the same however the output
        # was split in batches
        joined = "\n".join(texts) + "\n"
        if stream != EVENT_NAME:
            prefix = f"{stream}\0"
            record.digest.update((prefix + ("\n" + prefix).join(texts) + "\n").encode("utf-8", "replace"))
        first = self.seq + 1
        self.seq += count
        # raw lines (see Line): plain tuples, which the garbage collector stops tracking
        fresh = [(seq, now, job, host, stream, text, attempt)
                 for seq, text in zip(range(first, first + count), texts, strict=True)]
        record.lines.extend(fresh)
        self.interleaved.extend(fresh)
        if self._files is not None:
            self._write(job, host, stream, attempt, joined, count, now)

    def _write(self, job: str, host: str, stream: str, attempt: int, joined: str, count: int, now: float) -> None:
        self._timeline_start.setdefault(job, self._files.timeline_size)
        self._files.append_text((job, host, stream, attempt), joined, count, check=False)
        self._files.append_text(None, f"{now:.6f}\t{job}\t{host}\t{stream}\t{attempt}\t{count}\n", 1)

    def timeline_start(self, jobs) -> int:
        """Where the first timeline row of any of ``jobs`` is (bytes; 0 when not known)."""
        return min((self._timeline_start.get(job, 0) for job in jobs), default=0)

    def flush(self) -> None:
        """Write what the record files still buffer (the runner does at the end of every run,
        the session every few seconds, a view before it reads the record)."""
        if self._files is not None:
            self._files.flush()

    def close(self) -> None:
        """Flush and close the record files kept open (they reopen if more lines come)."""
        if self._files is not None:
            self._files.close()

    # -- reading
    def lines(self, job: str, host: str) -> list[tuple[str, str]]:
        """(stream, text) pairs kept in memory for ``host`` in ``job`` (every attempt)."""
        stream = self.streams.get((job, host))
        return [(line[STREAM], line[TEXT]) for line in stream.lines] if stream else []

    def current_lines(self, job: str, host: str) -> list[str]:
        """The texts of ``host``'s output (no events) in ``job``'s current attempt."""
        stream = self.streams.get((job, host))
        if stream is None:
            return []
        return [line[TEXT] for line in stream.lines if line[ATTEMPT] == stream.attempt and line[STREAM] != EVENT_NAME]

    def hosts(self, job: str) -> list[str]:
        """Hosts that printed something in ``job``, in the order they first did."""
        return list(self._hosts_of_job.get(job, []))

    def jobs(self, host: str) -> list[str]:
        """Jobs in which ``host`` printed something."""
        return list(self._jobs_of_host.get(host, []))

    def dropped(self, job: str, host: str) -> int:
        """Lines of ``host`` in ``job`` no longer in memory (the record files have them)."""
        stream = self.streams.get((job, host))
        return stream.dropped if stream else 0

    def job_lines(self, job: str, raw: bool = False) -> list[Line]:
        """Every line in memory of ``job``, all hosts, in arrival order, with attempt separators
        (``raw``: as raw lines, see Line)."""
        sources = [self.streams[(job, host)].lines for host in self._hosts_of_job.get(job, [])]
        sources.append(self._markers.get(job, []))
        return _lines(heapq.merge(*sources, key=_seq), raw)

    def host_lines(self, host: str, raw: bool = False) -> list[Line]:
        """Every line in memory of ``host``, all jobs, in arrival order, with attempt separators
        (``raw``: as raw lines, see Line)."""
        jobs = self._jobs_of_host.get(host, [])
        sources = [self.streams[(job, host)].lines for job in jobs]
        sources += [self._markers.get(job, []) for job in jobs]
        return _lines(heapq.merge(*sources, key=_seq), raw)

    def digest(self, job: str, host: str) -> str:
        """Digest of ``host``'s output in ``job``'s current attempt."""
        stream = self.streams.get((job, host))
        return stream.digest.hexdigest() if stream else hashlib.sha1().hexdigest()

    def since(self, seq: int, raw: bool = False) -> list[Line] | None:
        """Interleaved lines newer than ``seq``; None when some of them already left memory
        (``raw``: as raw lines, see Line)."""
        interleaved = self.interleaved
        if not interleaved or interleaved[-1][SEQ] <= seq:
            return []
        if interleaved[0][SEQ] > seq + 1:
            return None
        fresh = list(islice(reversed(interleaved), interleaved[-1][SEQ] - seq))  # indexing a deque
        fresh.reverse()  # is linear: from its end, once
        return fresh if raw else _lines(fresh, False)

    def interleaved_lines(self) -> list[Line]:
        """The interleaved lines in memory, as Lines (:attr:`interleaved` holds raw lines)."""
        return _lines(self.interleaved, False)

    def search(self, text: str, job: str | None = None, host: str | None = None) -> list[Line]:
        """Lines in memory whose text contains ``text`` (case-insensitive)."""
        needle = text.lower()
        if job is not None:
            pool = self.job_lines(job)
        elif host is not None:
            pool = self.host_lines(host)
        else:
            pool = self.interleaved_lines()
        return [line for line in pool if needle in line.text.lower()
                and (host is None or line.host == host)]


_seq = itemgetter(SEQ)


def _lines(lines, raw: bool) -> list:
    """``lines`` (raw lines or Lines) as a list of raw lines, or of Lines."""
    return list(lines) if raw else [line if isinstance(line, Line) else Line._make(line) for line in lines]


def safe_name(name: str) -> str:
    """``name`` as a file name: characters other than letters, digits and ``-_.@`` become ``_``."""
    return "".join(char if char.isalnum() or char in "-_.@" else "_" for char in name) or "_"


_safe = safe_name


class JobFormatter(Formatter):
    """The formatter commands of one job write to: lines go to the store under that job.

    Args:
        store: the OutputStore.
        job: the job's key.
        verbose: whether connection events (connecting, authenticated, session started...) are
            recorded as ``event`` lines too; what a verbose command announces always is.
    """

    def __init__(self, store: OutputStore, job: str, verbose: bool = False):
        super().__init__("@line@", verbose=verbose)
        self.store = store
        self.job = job

    def lines(self, lines, datatype, hostname, username=None):
        self.store.add(self.job, hostname, STDERR_NAME if datatype == STDERR else STDOUT_NAME, lines)

    def line(self, line, datatype, hostname):
        self.lines([line], datatype, hostname)

    def announce(self, hostname, message):
        self.store.add(self.job, hostname, EVENT_NAME, [message])


#: the job and host under which the library's own messages (keys...) appear in the output
LIBRARY_JOB, LIBRARY_HOST = "apssh", "localhost"


class LibraryMessages(logging.Handler):
    """What the library says outside of any command (a private key it cannot use, how many keys
    it loaded: the ``apssh`` loggers), as event lines of job ``apssh`` on ``localhost`` in the
    store, instead of stderr under the screen.  :meth:`attach` / :meth:`detach` around the app;
    meanwhile no passphrase is asked on the terminal (``apssh.keys.ask_on_terminal``).

    Args:
        store: the OutputStore.
        level: the least level kept (default INFO).
    """

    def __init__(self, store: OutputStore, level: int = logging.INFO):
        super().__init__(level)
        self.store = store
        self.logger = logging.getLogger("apssh")
        self._level = self.logger.level

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.store.add(LIBRARY_JOB, LIBRARY_HOST, EVENT_NAME, [record.getMessage()])
        except Exception:  # a message must never break the run
            self.handleError(record)

    def attach(self) -> LibraryMessages:
        self.logger.addHandler(self)
        if self.logger.getEffectiveLevel() > self.level:
            self.logger.setLevel(self.level)
        self._asked, keys.ask_on_terminal = keys.ask_on_terminal, False
        return self

    def detach(self) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)
        keys.ask_on_terminal = getattr(self, "_asked", True)

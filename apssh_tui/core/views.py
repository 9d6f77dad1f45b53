"""What the output pane shows: one job, one host, all hosts interleaved, or gathered.

A view is a list of :class:`ViewLine`, each with its *kind* (``out``, ``err``, ``event``,
``attempt``, ``header``, ``diff-add``...), so that colours come from where a line came from
and never from what its text looks like.  New output only extends the list (a view of a
running job grows by appending); a gathered view is recomputed when its jobs' output changed.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import NamedTuple

from .gather import gather
from .output import (
    ATTEMPT_NAME,
    EVENT_NAME,
    HOST,
    JOB,
    STDERR_NAME,
    STREAM,
    TEXT,
    TIME,
    TIMELINE_FILE,
    Line,
    OutputStore,
    as_line,
)
from .recorded import Matching, RecordedLines, recorded_lines

MODES = ("job", "host", "all", "gathered")
#: a view never holds more lines than this in memory: beyond, a job or host view is built again,
#: reading its older lines from the record (the all-hosts view keeps the store's last lines)
MAX_VIEW_LINES = 50_000
_TAGS = {STDERR_NAME: "!", EVENT_NAME: "*"}
#: how far apart the times of two lines must be to be told apart (the timeline's rounding, seconds)
TIME_RESOLUTION = 2e-6


class ViewLine(NamedTuple):
    """One displayed line: ``prefix`` (host, job) then ``text``; ``kind`` says how to paint it.

    Kinds: ``out``, ``err``, ``event``, ``attempt`` (a separator), ``header`` (a gathered
    group), ``diff-file``, ``diff-hunk``, ``diff-add``, ``diff-del``, ``diff-same``, ``note``.
    """

    kind: str
    text: str
    prefix: str = ""

    @property
    def plain(self) -> str:
        return self.prefix + self.text


class Filter:
    """A search: lines containing ``text`` (case-insensitive), or matching it as a regular
    expression when ``regex`` is true; the matches are highlighted.  With ``hide`` (the default)
    a view keeps only the matching lines; without it, it keeps every line (find, then next /
    previous match).  An empty text matches every line.

    Raises:
        ValueError naming the pattern when ``regex`` is true and ``text`` is not a valid one.
    """

    def __init__(self, text: str = "", regex: bool = False, hide: bool = True):
        self.text = text
        self.regex = regex
        self.hide = hide
        try:
            self.pattern = re.compile(text if regex else re.escape(text), re.IGNORECASE) if text else None
        except re.error as exc:
            raise ValueError(f"search {text!r}: not a regular expression ({exc}); "
                             f"fix it, or search for plain text (regex off)") from None

    def __bool__(self) -> bool:
        return self.pattern is not None

    def matches(self, text: str) -> bool:
        return self.pattern is None or self.pattern.search(text) is not None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where ``text`` matches (start, end), for highlighting."""
        if self.pattern is None:
            return []
        return [match.span() for match in self.pattern.finditer(text) if match.end() > match.start()]

    @classmethod
    def parse(cls, typed: str, hide: bool = True) -> Filter:
        """What the user typed: ``/pattern/`` is a regular expression, anything else plain text."""
        typed = typed.strip()
        if len(typed) >= 2 and typed.startswith("/") and typed.endswith("/"):
            return cls(typed[1:-1], regex=True, hide=hide)
        return cls(typed, hide=hide)

    def keeps(self, text: str) -> bool:
        """Whether a view keeps a line of ``text`` (every line when not hiding)."""
        return not self.hide or self.matches(text)

    def describe(self) -> str:
        if not self.text:
            return ""
        what = ("filter" if self.hide else "find") + (" regex" if self.regex else "")
        return f"{what}: {self.text!r}"


class OutputView:
    """The lines of one view of the store, kept current by :meth:`update`.

    A job or host view shows every line, in the order they came: those the store still has in
    memory (:attr:`lines`, the store's own lines, no copy) interleaved by time with those that
    left memory, read back from the record files on demand (:attr:`recorded`; a note at the top
    says how many and from where).  Gathered views hold ViewLines.  :meth:`display` gives any
    line as shown, ``len(view)`` counts them.

    Args:
        store: the OutputStore.
        model: the StateModel (gathered views read exit codes and states from it).
        mode: ``job`` (one job, all its hosts), ``host`` (every job of one host), ``all``
            (interleaved), or ``gathered`` (the jobs ``keys`` grouped by identical output).
        job / host / keys: what the mode shows.
        filter: a Filter (default: every line).
    """

    def __init__(self, store: OutputStore, model, mode: str = "all", job: str | None = None,
                 host: str | None = None, keys: list[str] | None = None, filter: Filter | None = None):  # noqa: A002
        if mode not in MODES:
            raise ValueError(f"output view {mode!r}: use one of {', '.join(MODES)}")
        self.store = store
        self.model = model
        self.mode = mode
        self.job = job
        self.host = host
        self.keys = list(keys) if keys else ([job] if job else [])
        self.filter = filter or Filter()
        self.lines: list[ViewLine] = []
        self.top: list[ViewLine] = []  # notes above every line
        self.recorded: RecordedLines | Matching | list = []  # lines no longer in memory, from the record
        self._runs: list[tuple[int, bool, int]] = [(0, False, 0)]  # see _interleave
        self._run_starts = [0]
        self.width = 0
        self.trimmed = 0  # lines that left the head of this view since it was built
        self._cursor = 0
        self._stamp = None
        self.build()

    # -- describing
    def title(self) -> str:
        what = {"job": f"job {self.job}", "host": f"host {self.host}", "all": "all hosts, interleaved",
                "gathered": f"gathered: {self._gathered_name()}"}[self.mode]
        search = self.filter.describe()
        return f" output - {what}" + (f"  {search}" if search else "")

    def _gathered_name(self) -> str:
        if len(self.keys) <= 1:
            return f"{self.job}, alone (no sibling jobs)"
        record = self.model.records.get(self.keys[0])
        label = record.label if record is not None else self.keys[0]
        return f"{label} ×{len(self.keys)}"

    # -- building
    def build(self) -> None:
        """Compute the whole view again."""
        self.lines = []
        self.top = []
        self.recorded = []
        self._runs, self._run_starts = [(0, False, 0)], [0]
        self.width = 0
        self.trimmed = 0
        self._cursor = self.store.seq
        if self.mode == "gathered":
            self._stamp = self._gathered_stamp()
            self._extend(self._gathered_lines())
            return
        pairs = []
        if self.mode == "job":
            source = self.store.job_lines(self.job, raw=True) if self.job else []
            pairs = [(self.job, host) for host in self.store.hosts(self.job)] if self.job else []
        elif self.mode == "host":
            source = self.store.host_lines(self.host, raw=True) if self.host else []
            pairs = [(job, self.host) for job in self.store.jobs(self.host)] if self.host else []
        else:
            source = self.store.interleaved
        self._extend(self._convert(source, checked=self.mode != "job"))
        self._read_back(pairs)

    def update(self) -> int:
        """Bring the view up to date: the number of lines appended, or -1 when it was rebuilt
        (a gathered view whose output changed, or lines that arrived faster than memory keeps)."""
        if self.mode == "gathered":
            stamp = self._gathered_stamp()
            if stamp == self._stamp:
                return 0
            self.build()
            return -1
        if self.store.seq == self._cursor:
            return 0
        fresh = self.store.since(self._cursor, raw=True)
        if fresh is None:
            self.build()
            return -1
        self._cursor = self.store.seq
        before = len(self.lines)
        self._extend(self._convert(fresh, checked=True))
        if len(self.lines) > MAX_VIEW_LINES:
            if self.mode in ("job", "host"):
                self.build()  # the lines that left memory now come from the record
            else:
                excess = len(self.lines) - MAX_VIEW_LINES * 9 // 10
                del self.lines[:excess]
                self.trimmed += excess
            return -1
        return len(self.lines) - before

    def __bool__(self) -> bool:
        return True  # a view, even empty

    def __len__(self) -> int:
        return len(self.top) + len(self.recorded) + len(self.lines)

    def item(self, index: int):
        """Line ``index`` of the view: a store Line (from memory or the record) or a ViewLine."""
        if index < len(self.top):
            return self.top[index]
        index -= len(self.top)
        start, recorded, base = self._runs[bisect.bisect_right(self._run_starts, index) - 1]
        item = (self.recorded if recorded else self.lines)[base + index - start]
        return item if isinstance(item, ViewLine) else as_line(item)

    def _extend(self, lines) -> None:
        start = len(self.lines)
        self.lines.extend(lines)
        if len(self.lines) > start:
            # a store line gets its prefix when drawn: allow for the longest one
            width = max(len(line[TEXT] if not isinstance(line, ViewLine) else line.text)
                        for line in self.lines[start:]) + self._prefix_allowance()
            self.width = max(self.width, width)

    def _prefix_allowance(self) -> int:
        if self.mode == "gathered":
            return 0
        hosts = max((len(host) for host in self.store._jobs_of_host), default=0)
        jobs = max((len(job) for job in self.store._hosts_of_job), default=0) if self.mode != "job" else 0
        return hosts + jobs + 5

    def _convert(self, source, checked: bool) -> list:
        """The store's ``source`` lines this view keeps (``checked``: some may belong to other
        jobs or hosts).  They stay store lines: :meth:`display` makes the displayed line of the
        few on screen."""
        if self.mode == "all" and not (self.filter.hide and self.filter):
            return list(source)  # every line is wanted: no test per line
        if checked or (self.filter.hide and self.filter):
            return [line for line in source if self._wanted(line)]
        return list(source)

    def display(self, index: int) -> ViewLine:
        """Line ``index`` of the view as displayed (prefix, text, kind)."""
        item = self.item(index)
        return item if isinstance(item, ViewLine) else self._view_line(item)

    def texts(self) -> list[str]:
        """The plain text of every line of the view."""
        return [self.display(index).plain for index in range(len(self))]

    def _wanted(self, line) -> bool:
        """Whether this view shows store ``line`` (a raw line or a Line)."""
        if self.mode == "job" and line[JOB] != self.job:
            return False
        if self.mode == "host":
            if line[STREAM] == ATTEMPT_NAME:
                if line[JOB] not in self.store.jobs(self.host):
                    return False
            elif line[HOST] != self.host:
                return False
        return line[STREAM] == ATTEMPT_NAME or self.filter.keeps(line[TEXT])

    def _view_line(self, line: Line) -> ViewLine:
        with_job = self.mode in ("all", "host")
        if line.stream == ATTEMPT_NAME:
            return ViewLine("attempt", line.text, f"[{line.job}] " if with_job else "")
        job = f" [{line.job}]" if with_job else ""
        return ViewLine(line.stream, line.text, f"{line.host}{job}{_TAGS.get(line.stream, ':')} ")

    def _read_back(self, pairs) -> None:
        """The lines of ``pairs`` (job, host) that left memory: read back from the record files
        and interleaved by time with the lines in memory, under a note saying so; without a
        record, a note saying how many are lost."""
        store = self.store
        dropped = {pair: store.dropped(*pair) for pair in pairs}
        missing = sum(dropped.values())
        if not missing:
            return
        if store.directory is None:
            self.top = [ViewLine("note", f"({missing} earlier lines are not kept: no record directory)")]
            return
        store.flush()
        recorded = recorded_lines(store.directory, dropped, store.timeline_start({job for job, _ in pairs}))
        if not len(recorded) and not (store.directory / TIMELINE_FILE).is_file():
            self.top = [ViewLine("note", f"({missing} earlier lines are only in the record files under "
                                         f"{store.directory})")]
            return
        if self.filter.hide and self.filter:
            recorded = recorded.matching(lambda line: self.filter.keeps(line.text))
        self.recorded = recorded
        self.top = [ViewLine("note", f"── {missing} lines of this view, no longer in memory, read back from "
                                     f"the record ({store.directory}) ──")]
        self._interleave()

    def _interleave(self) -> None:
        """Runs of the view after :attr:`top`: (first index, from the record?, index in
        :attr:`recorded` or :attr:`lines`), the record's batches and the lines in memory in time
        order (a batch before the lines in memory of the same time: it came first).  The last
        run is of lines in memory, so that new lines extend it."""
        runs: list[tuple[int, bool, int]] = []
        lines = self.lines
        position = from_record = in_memory = 0

        def add(recorded: bool, base: int, count: int) -> None:
            nonlocal position
            if count <= 0:
                return
            if not runs or runs[-1][1] != recorded:
                runs.append((position, recorded, base))
            position += count

        for when, count in self.recorded.groups():
            end = in_memory
            before = when - TIME_RESOLUTION  # the timeline keeps microseconds: within that, the record first
            while end < len(lines) and (lines[end][TIME] if not isinstance(lines[end], ViewLine) else 0.0) < before:
                end += 1
            add(False, in_memory, end - in_memory)
            in_memory = end
            add(True, from_record, count)
            from_record += count
        add(False, in_memory, len(lines) - in_memory)
        if not runs or runs[-1][1]:
            runs.append((position, False, in_memory))
        self._runs = runs
        self._run_starts = [run[0] for run in runs]

    # -- gathered
    def _gathered_stamp(self) -> tuple:
        store = self.store
        parts = []
        for key in self.keys:
            record = self.model.records.get(key)
            parts.append((key, record.state if record else None, store.attempt(key),
                          sum(store.streams[(key, host)].line_count for host in store.hosts(key))))
        return tuple(parts)

    def _gathered_lines(self) -> list[ViewLine]:
        store = self.store
        outputs = {}
        for key in self.keys:
            record = self.model.records.get(key)
            if record is None:
                continue
            hosts = store.hosts(key) or [record.node.split("@")[-1] or key]
            for host in hosts:
                exit_code = record.result if record.result is not None else record.state.value
                name = host if host not in outputs else f"{host} [{key}]"
                outputs[name] = (store.digest(key, host), store.current_lines(key, host), exit_code)
        lines: list[ViewLine] = []
        cut = sum(1 for key in self.keys for host in store.hosts(key) if store.dropped(key, host))
        if cut:
            # grouped by the digest of every line; shown: what memory still has of each
            lines.append(ViewLine("note", f"({cut} hosts printed more than memory keeps: their last lines "
                                          f"are shown; 'o' on a job shows every line)"))
        for index, group in enumerate(gather(outputs)):
            lines.append(ViewLine("header", f"---------------- {group.header}"))
            if index == 0 or not group.diff:
                body = [ViewLine("out", text) for text in group.lines]
            else:
                body = [ViewLine(_diff_kind(text, position), text) for position, text in enumerate(group.diff)]
            if self.filter:
                body = [line for line in body if self.filter.keeps(line.text)]
            lines.extend(body)
        return lines or [ViewLine("note", "(no output yet)")]

    # -- saving
    def save(self, path: str | Path) -> Path:
        """Write the lines of this view (as filtered) to ``path``, one per line; returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            out.write(f"#{self.title()}\n")
            out.writelines(text + "\n" for text in self.texts())
        return target


def _diff_kind(text: str, position: int) -> str:
    """The kind of a unified diff's line (its first two lines name the files)."""
    if position < 2:
        return "diff-file"
    if text.startswith("@@"):
        return "diff-hunk"
    if text.startswith("+"):
        return "diff-add"
    if text.startswith("-"):
        return "diff-del"
    return "diff-same"

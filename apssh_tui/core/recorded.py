"""Output lines read back from the record files, for views whose early lines left memory.

The OutputStore keeps the last lines of each (job, host) in memory and every line in the
record files (see :mod:`apssh_tui.core.output`).  A job or host view asks for the lines memory
no longer has: :func:`recorded_lines` plans them from ``timeline.tsv`` (which batch of which
host, stream and attempt came when, so they come back in arrival order) and returns a
:class:`RecordedLines`, a sequence that reads its lines on demand, a block of
:data:`BLOCK_LINES` lines at a time (one ``read`` per block, never one per line), keeping the
last :data:`CACHED_BLOCKS` blocks.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from .output import TIMELINE_FILE, Line, record_path

#: lines read from a record file at once
BLOCK_LINES = 1024
#: blocks kept in memory by one RecordedLines (the screen needs one or two)
CACHED_BLOCKS = 16
#: bytes read at a time while finding where blocks begin
SCAN_BYTES = 1 << 20


class Segment(NamedTuple):
    """``count`` lines of one record file from line ``first`` on (one batch as received)."""

    path: Path
    first: int
    count: int
    time: float
    job: str
    host: str
    stream: str
    attempt: int


class RecordFile:
    """A record file read by blocks of :data:`BLOCK_LINES` lines: where each block starts is
    found once (scanning the file up to the last line asked for), a block is one read."""

    def __init__(self, path: Path):
        self.path = path
        self.starts = [0]  # byte offset of lines 0, BLOCK_LINES, 2 * BLOCK_LINES...
        self.scanned = 0  # bytes scanned so far
        self.scanned_lines = 0

    def _scan_to(self, line: int) -> None:
        wanted_block = line // BLOCK_LINES
        if wanted_block < len(self.starts):
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.scanned)
            while len(self.starts) <= wanted_block:
                chunk = handle.read(SCAN_BYTES)
                if not chunk:
                    return
                position = 0
                while True:
                    newline = chunk.find(b"\n", position)
                    if newline < 0:
                        break
                    self.scanned_lines += 1
                    position = newline + 1
                    if self.scanned_lines % BLOCK_LINES == 0:
                        self.starts.append(self.scanned + position)
                self.scanned += len(chunk)

    def block(self, number: int) -> list[str]:
        """Lines ``number * BLOCK_LINES`` to the next block's start (fewer at the end of the file)."""
        self._scan_to(number * BLOCK_LINES)
        if number >= len(self.starts):
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.starts[number])
            if number + 1 < len(self.starts):
                data = handle.read(self.starts[number + 1] - self.starts[number])
            else:
                data = b"".join(handle.readline() for _ in range(BLOCK_LINES))
        return data.decode("utf-8", "replace").splitlines()


class RecordedLines:
    """The lines of ``segments``, in order, read on demand (``len()``, ``[index]``, :meth:`chunks`).

    Each is a :class:`~apssh_tui.core.output.Line` with ``seq`` 0 and its batch's time.
    """

    def __init__(self, segments: list[Segment]):
        self.segments = segments
        self.starts: list[int] = []
        total = 0
        for segment in segments:
            self.starts.append(total)
            total += segment.count
        self.total = total
        self._files: dict[Path, RecordFile] = {}
        self._blocks: OrderedDict[tuple[Path, int], list[str]] = OrderedDict()

    def __len__(self) -> int:
        return self.total

    def _text(self, path: Path, line: int) -> str:
        number, offset = divmod(line, BLOCK_LINES)
        key = (path, number)
        block = self._blocks.get(key)
        if block is None:
            record = self._files.get(path)
            if record is None:
                record = self._files[path] = RecordFile(path)
            try:
                block = record.block(number)
            except OSError:
                block = []
            self._blocks[key] = block
            if len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(key)
        return block[offset] if offset < len(block) else "(missing from the record file)"

    def __getitem__(self, index: int) -> Line:
        if index < 0:
            index += self.total
        if not 0 <= index < self.total:
            raise IndexError(index)
        number = bisect.bisect_right(self.starts, index) - 1
        segment = self.segments[number]
        line = segment.first + index - self.starts[number]
        return Line(0, segment.time, segment.job, segment.host, segment.stream, self._text(segment.path, line),
                    segment.attempt)

    def groups(self) -> Iterator[tuple[float, int]]:
        """(time, number of lines) of each batch, in order (to interleave them with other lines)."""
        for segment in self.segments:
            yield segment.time, segment.count

    def matching(self, keeps: Callable[[Line], bool]) -> Matching:
        """The lines ``keeps`` accepts (read a segment at a time; only their positions are kept,
        8 bytes a line)."""
        positions = array("q")
        counts = []
        index = 0
        for segment, chunk in zip(self.segments, self.chunks(), strict=True):
            before = len(positions)
            positions.extend(index + offset for offset, line in enumerate(chunk) if keeps(line))
            counts.append((segment.time, len(positions) - before))
            index += len(chunk)
        return Matching(self, positions, counts)

    def chunks(self) -> Iterator[list[Line]]:
        """Every line, a segment at a time (for a search or a save that reads them all)."""
        for segment in self.segments:
            yield [Line(0, segment.time, segment.job, segment.host, segment.stream,
                        self._text(segment.path, segment.first + offset), segment.attempt)
                   for offset in range(segment.count)]


class Matching:
    """Some lines of a RecordedLines, by position (``len()``, ``[index]``)."""

    def __init__(self, lines: RecordedLines, positions: array, counts: list[tuple[float, int]]):
        self.lines = lines
        self.positions = positions
        self._counts = counts

    def __len__(self) -> int:
        return len(self.positions)

    def groups(self) -> Iterator[tuple[float, int]]:
        """(time, number of lines kept) of each batch, in order."""
        return iter(self._counts)

    def __getitem__(self, index: int) -> Line:
        return self.lines[self.positions[index]]


def recorded_lines(directory: Path, dropped: dict[tuple[str, str], int], start: int = 0) -> RecordedLines:
    """The first ``dropped[(job, host)]`` lines of each (job, host), from the record files under
    ``directory``, in arrival order (``timeline.tsv``).  The timeline is read from byte ``start``
    (where the first row of these jobs is, when known) up to the last row needed; the lines
    themselves only when asked for.

    An unreadable or missing timeline gives no lines (the view then says how many it lacks).
    """
    remaining = {pair: count for pair, count in dropped.items() if count > 0}
    segments: list[Segment] = []
    if not remaining:
        return RecordedLines(segments)
    offsets: dict[Path, int] = {}
    try:
        with open(directory / TIMELINE_FILE, "rb") as timeline:
            timeline.seek(start)
            for raw in timeline:
                try:
                    when, job, host, stream, attempt, count = raw.decode("utf-8", "replace").rstrip("\n").split("\t")
                    attempt, count, when = int(attempt), int(count), float(when)
                except ValueError:
                    continue  # a row cut short by a crash
                left = remaining.get((job, host))
                if left is None or count <= 0:
                    continue
                path = record_path(directory, job, host, stream, attempt)
                first = offsets.get(path, 0)
                offsets[path] = first + count
                taken = min(left, count)
                segments.append(Segment(path, first, taken, when, job, host, stream, attempt))
                if taken == left:
                    del remaining[(job, host)]
                    if not remaining:
                        break
                else:
                    remaining[(job, host)] = left - taken
    except OSError:
        return RecordedLines([])
    return RecordedLines(segments)

"""Bytes to lines: a stream of byte chunks becomes whole lines (shared by SshNode and LocalNode).

Two ways out of one splitter, for one stream:

* :meth:`LineSplitter.feed_block`: the complete lines a chunk finishes, as one ``bytes`` block
  of valid UTF-8 (the fast path: a formatter prefixes the block with ``bytes.replace`` and
  writes it at once, no Python work per line);
* :meth:`LineSplitter.feed`: the same lines as a list of ``str``.

Both give the UTF-8 decoding of the stream with replacement (undecodable bytes become U+FFFD),
whatever the cuts between chunks: a newline is ASCII and never part of a multi-byte character,
so decoding line by line or all at once gives the same text.
"""

from __future__ import annotations

# a line longer than this (in bytes) is handed over in pieces, so memory stays bounded
MAX_PENDING_CHARS = 1 << 20


def _char_end(data: bytes) -> int:
    """Where ``data`` may be cut without splitting a UTF-8 character that later bytes finish."""
    end = len(data)
    for index in range(end - 1, max(end - 4, -1), -1):
        byte = data[index]
        if byte & 0xC0 != 0x80:  # ASCII or a lead byte: the last character starts here
            size = 2 if 0xC0 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else 4 if 0xF0 <= byte < 0xF8 else 1
            return end if index + size <= end else index
    return end  # only continuation bytes at the end: nothing later can complete them


def valid_utf8(block: bytes) -> bytes:
    """``block`` itself when it is valid UTF-8, else its decoding with replacement, encoded again."""
    if block.isascii():
        return block
    try:
        block.decode("utf-8")
        return block
    except UnicodeDecodeError:
        return block.decode("utf-8", "replace").encode("utf-8")


def block_lines(block: bytes) -> list[str]:
    """The lines of a block (each with its newline but perhaps the last), decoded with replacement."""
    if not block:
        return []
    pieces = block.decode("utf-8", "replace").split("\n")
    last = pieces.pop()
    lines = [piece + "\n" for piece in pieces]
    if last:
        lines.append(last)
    return lines


class LineSplitter:
    """Turns a stream of byte chunks into whole lines.

    A partial line is kept as a list of chunks (joined once, when its newline arrives); a
    line longer than MAX_PENDING_CHARS bytes is handed over in pieces (cut between characters).
    """

    def __init__(self):
        self._pending: list[bytes] = []
        self._pending_size = 0

    def _complete(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        cut = data.rfind(b"\n") + 1
        if not cut:
            if data:
                self._pending.append(data)
                self._pending_size += len(data)
                if self._pending_size > MAX_PENDING_CHARS:
                    return self._take_piece()
            return b""
        block = data[:cut] if cut < len(data) else data
        if self._pending:
            block = b"".join([*self._pending, block])
        rest = data[cut:]
        self._pending = [rest] if rest else []
        self._pending_size = len(rest)
        return block

    def _take_piece(self) -> bytes:
        joined = b"".join(self._pending)
        end = _char_end(joined)
        rest = joined[end:]
        self._pending = [rest] if rest else []
        self._pending_size = len(rest)
        return joined[:end]

    def feed_block(self, data: bytes | str) -> bytes:
        """The complete lines that ``data`` finishes, as one block of valid UTF-8 bytes
        (``b""`` when it finishes none); the block ends with a newline unless it is a piece
        of an over-long line."""
        return valid_utf8(self._complete(data))

    def feed(self, data: bytes | str) -> list[str]:
        """The complete lines (with their newline) that ``data`` finishes."""
        return block_lines(self._complete(data))

    def flush_block(self) -> bytes:
        """What is left at end of stream (a last line without newline) as valid UTF-8, or ``b""``."""
        joined = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        return valid_utf8(joined)

    def flush(self) -> list[str]:
        """What is left at end of stream (a last line without newline), if anything."""
        return block_lines(self.flush_block())

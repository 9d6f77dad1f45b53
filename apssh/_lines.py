"""Bytes to lines: a stream of byte chunks becomes whole text lines (shared by SshNode and LocalNode)."""

from __future__ import annotations

import codecs

# a line longer than this (in characters) is handed over in pieces, so memory stays bounded
MAX_PENDING_CHARS = 1 << 20


class LineSplitter:
    """Turns a stream of byte chunks into whole lines, decoding UTF-8 with replacement.

    Undecodable bytes become U+FFFD; a character split across two chunks is kept whole;
    a partial line is kept as a list of pieces (joined once, when its newline arrives).
    """

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending: list[str] = []
        self._pending_size = 0

    def feed(self, data: bytes | str) -> list[str]:
        """The complete lines (with their newline) that ``data`` finishes."""
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        if "\n" not in text:
            if text:
                self._pending.append(text)
                self._pending_size += len(text)
                if self._pending_size > MAX_PENDING_CHARS:
                    return self._take_pending()
            return []
        pieces = text.split("\n")
        if self._pending:
            pieces[0] = "".join(self._pending) + pieces[0]
            self._pending, self._pending_size = [], 0
        last = pieces.pop()
        if last:
            self._pending.append(last)
            self._pending_size = len(last)
        return [piece + "\n" for piece in pieces]

    def _take_pending(self) -> list[str]:
        line = "".join(self._pending)
        self._pending, self._pending_size = [], 0
        return [line] if line else []

    def flush(self) -> list[str]:
        """What is left at end of stream (a last line without newline), if anything."""
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._pending.append(tail)
        return self._take_pending()

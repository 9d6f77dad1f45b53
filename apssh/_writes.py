"""One socket write per burst of SSH packets, instead of one or two per packet.

asyncssh writes each packet to its transport as soon as it is built, and precedes every
encrypted packet with an empty MSG_IGNORE packet of its own: a 256 MB push is about 16,000
``send()`` calls of 32 KB or less, and the Python around each of them.  :class:`CoalescedWrites`
sits between an asyncssh connection and its transport (a socket, or the channel of a gateway
connection):

- while the connection holds it (:meth:`CoalescedWrites.hold` and ``release``: around one packet and its
  MSG_IGNORE, and around the handling of one read), writes are gathered;
- when the outermost hold ends, or on a write made without a hold, what was gathered is
  written at once if it is small (commands, window updates, EOF, close: nothing waits), and
  at the end of the event loop's turn if it is bulk (:data:`BULK_BYTES` or more in that
  step), so that the data packets that several tasks send in one turn leave in one write.

Bytes and their order never change; a small write always sends everything before it.
``close()``, ``abort()`` and ``write_eof()`` send what is pending first.  What is held is at most
one turn's worth of packets, which asyncssh bounds by its channel windows (2 MB per channel by
default).
"""

from __future__ import annotations

import asyncio

BULK_BYTES = 8192
"""A step (one packet, or the handling of one read) that writes this many bytes or more is bulk
data: it may wait for the end of the event loop's turn, to leave with the rest of the turn's."""


class CoalescedWrites(asyncio.Transport):
    """A transport that gathers writes into fewer, larger writes to ``transport``.

    Everything but writing is the wrapped transport's: extra info, reading, flow control.
    """

    def __init__(self, transport: asyncio.Transport):
        super().__init__()
        self._transport = transport
        self._holds = 0
        self._step_bytes = 0  # written since the outermost hold began
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._flush_planned = False
        self.writes_in = 0  # writes asked by the connection
        self.writes_out = 0  # writes made to the transport

    def hold(self) -> None:
        """Gather the writes of one step, until the matching :meth:`release`."""
        if not self._holds:
            self._step_bytes = 0
        self._holds += 1

    def release(self) -> None:
        """End a hold; the outermost one lets what was gathered leave."""
        self._holds -= 1
        if not self._holds:
            self._settle(self._step_bytes)

    # -- writing
    def write(self, data) -> None:
        if not data:
            return
        self.writes_in += 1
        self._pending.append(data)
        self._pending_size += len(data)
        if self._holds:
            self._step_bytes += len(data)
        else:
            self._settle(len(data))

    def writelines(self, list_of_data) -> None:
        for data in list_of_data:
            self.write(data)

    def _settle(self, step_bytes: int) -> None:
        """A step wrote ``step_bytes``: small, everything pending leaves now; bulk, at the end
        of the loop's turn."""
        if not self._pending:
            return
        if step_bytes < BULK_BYTES:
            self._flush()
            return
        if self._flush_planned:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to come back: now
            self._flush()
            return
        self._flush_planned = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_planned = False
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        self._pending = []
        self._pending_size = 0
        self.writes_out += 1
        try:
            self._transport.write(data)
        except ConnectionError:
            # as asyncssh does on a refused write: connection_lost() tells the rest
            pass

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._flush()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._pending_size + self._transport.get_write_buffer_size()

    # -- the rest is the wrapped transport's
    @property
    def wrapped(self) -> asyncio.Transport:
        """The transport written to."""
        return self._transport

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name, default=None):
        """The wrapped transport's, and ``"apssh_writes"``: this object (its counters)."""
        if name == "apssh_writes":
            return self
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self):
        return self._transport.get_write_buffer_limits()

    def set_protocol(self, protocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self):
        return self._transport.get_protocol()

"""Incoming SSH data held back for a moment, on every connection of an event loop.

With hundreds of hosts connecting or streaming, every turn of the event loop reads dozens of
sockets and runs the handshakes' crypto; anything else that needs the loop (a user's key in the
TUI, and the frame that shows its effect) waits behind all of it.  :func:`hold` pauses reading on
the sockets of every SSH connection of the running loop, including those still in their
handshake, until the hold is released, or :data:`MAX_HOLD` seconds at most.

Nothing is lost: the data waits in the kernel's socket buffers, and the remote side stops at the
end of its SSH window until reading resumes.  Writing is not held.  A connection through a
gateway is held by its gateway's socket.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

MAX_HOLD = 0.25
"""Seconds after which a hold ends even if it was not released (reads never stop for long)."""


class _LoopReads:
    """The sockets of one event loop's SSH connections, and its current hold."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transports: weakref.WeakSet = weakref.WeakSet()
        self.holds = 0
        self.generation = 0  # a hold ended by its deadline: the releases of that hold do nothing
        self.paused: list[asyncio.Transport] = []
        self.deadline: asyncio.TimerHandle | None = None

    def pause(self, transport) -> None:
        if not transport.is_closing() and transport.is_reading():
            transport.pause_reading()
            self.paused.append(transport)

    def end(self) -> None:
        """Reading resumes on every socket paused by the hold."""
        self.holds = 0
        self.generation += 1
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        paused, self.paused = self.paused, []
        for transport in paused:
            if not transport.is_closing():
                transport.resume_reading()


_LOOPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _reads(loop: asyncio.AbstractEventLoop) -> _LoopReads:
    reads = _LOOPS.get(loop)
    if reads is None:
        reads = _LOOPS[loop] = _LoopReads(loop)
    return reads


def watch(transport) -> None:
    """A new connection's socket: held with the others (at once if a hold is on).  Transports
    that cannot pause reading (a gateway's channel) are left alone."""
    if not hasattr(transport, "is_reading"):
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    reads = _reads(loop)
    reads.transports.add(transport)
    if reads.holds:
        reads.pause(transport)


def hold(max_seconds: float = MAX_HOLD) -> Callable[[], None]:
    """Pause reading on every SSH connection of the running loop; returns the release.

    Holds nest: reading resumes when every hold is released, or ``max_seconds`` after the first
    one began, whichever comes first.  A release called twice, or after the deadline, does
    nothing.
    """
    reads = _reads(asyncio.get_running_loop())
    if not reads.holds:
        for transport in list(reads.transports):
            reads.pause(transport)
        reads.deadline = reads.loop.call_later(max_seconds, reads.end)
    reads.holds += 1
    generation = reads.generation
    released = False

    def release() -> None:
        nonlocal released
        if released or generation != reads.generation:
            return
        released = True
        reads.holds -= 1
        if not reads.holds:
            reads.end()

    return release


def held() -> bool:
    """Whether reading is held in the running loop."""
    try:
        reads = _LOOPS.get(asyncio.get_running_loop())
    except RuntimeError:
        return False
    return bool(reads and reads.holds)


"""Keys first: what would delay a key is held back from its arrival to the frame that shows it.

While hundreds of hosts connect or stream, every turn of the event loop reads dozens of sockets
(handshakes' crypto, output), and the garbage collector runs every few thousand allocations (a
frame makes many): a key waited behind both, for 100 to 300 ms.  From the moment a key arrives
until the screen has been refreshed after its binding ran:

- reading from every SSH connection of the loop is held (:mod:`apssh._readhold`; the data waits
  in the sockets, nothing is lost);
- the garbage collector's automatic runs wait (they run after the frame, as much work);
- until its binding has run, the app draws no frame (``hold_frames``): a frame of the screen as
  it was before the key (the output tab with its new lines, 20-35 ms while 200 hosts stream)
  would only delay the one that shows the key.

All three end at :data:`apssh._readhold.MAX_HOLD` seconds at most, whatever happens to the key.
"""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from collections.abc import Callable

from apssh import _readhold


class KeyFirst:
    """The holds of the keys on their way to the screen, in the order they arrived."""

    def __init__(self, max_seconds: float = _readhold.MAX_HOLD,
                 hold_frames: Callable[[], Callable[[], None]] | None = None):
        """``hold_frames``: holds the app's frames, returns the function that ends that hold;
        called when a key arrives, its release when the key's binding has run."""
        self.max_seconds = max_seconds
        self.hold_frames = hold_frames
        # keys not handled yet, with the releases of their reads' and frames' holds
        self._waiting: deque[tuple[object, Callable[[], None], Callable[[], None]]] = deque()
        self._handled: dict[int, tuple[object, Callable[[], None]]] = {}  # id(key) -> its hold
        self._gc_paused = False
        self._deadline: asyncio.TimerHandle | None = None
        self.holds = 0  # keys held for (figures and tests)

    @property
    def holding(self) -> bool:
        return bool(self._waiting or self._handled)

    def arrived(self, key: object) -> None:
        """``key`` (the event object) reached the app: hold until it is on screen."""
        self.holds += 1
        if not self.holding:
            if gc.isenabled():
                gc.disable()
                self._gc_paused = True
            self._deadline = asyncio.get_running_loop().call_later(self.max_seconds, self.release_all)
        frames = self.hold_frames() if self.hold_frames is not None else _nothing
        self._waiting.append((key, _readhold.hold(self.max_seconds), frames))

    def handled(self, key: object) -> None:
        """``key`` ran its binding; its hold goes on until :meth:`on_screen`.  Keys that arrived
        before it and never came back (a widget kept them) end now.  A key that was not held
        (typed into a text field) changes nothing."""
        if not any(waiting is key for waiting, _, _ in self._waiting):
            return
        while self._waiting:
            waiting, release, frames = self._waiting.popleft()
            frames()
            if waiting is key:
                self._handled[id(key)] = (key, release)
                return
            release()
        self._settle()

    def on_screen(self, key: object) -> None:
        """The screen was refreshed after ``key`` was handled: its hold ends."""
        _, release = self._handled.pop(id(key), (None, None))
        if release is not None:
            release()
            self._settle()

    def release_all(self) -> None:
        """Every hold ends (the deadline, or the app closing)."""
        releases = [release for _, release in self._handled.values()]
        releases += [release for _, reads, frames in self._waiting for release in (frames, reads)]
        self._handled, self._waiting = {}, deque()
        for release in releases:
            release()
        self._settle()

    def _settle(self) -> None:
        if self.holding:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._gc_paused:
            self._gc_paused = False
            gc.enable()


def _nothing() -> None:
    """The release of a hold that holds nothing."""

"""Key-to-screen latency of the app, measured as a terminal user would feel it.

Keys go to the app's driver as a terminal sends them: Pilot's ``press`` waits until the whole
process is idle (up to a second, twice), which never happens while hosts connect or stream, and
would be measured instead of the app (and would send a few keys only).

Used by ``bench_tui_storm.py`` (cursor keys in the jobs table during a connection storm) and
``bench_tui.py`` (tab switches and cursor keys while hosts stream).
"""

from __future__ import annotations

import asyncio
import functools
import time

from textual import events

#: the actions whose effect a key waits for: the jobs table's cursor, the app's tab switch
TIMED_ACTIONS = (("jobs_table", "action_cursor_down"), ("jobs_table", "action_cursor_up"), (None, "action_tab"))


class KeyClock:
    """Times keys from the moment they are sent to the end of the screen refresh that follows
    the action they trigger.

    The timed actions (:data:`TIMED_ACTIONS`: the jobs table's cursor moves and the app's tab
    switch) are wrapped: when one has run, ``call_after_refresh`` fires after the next frame,
    which shows its effect (the tab switch changes the visible pane synchronously, see
    ``TabbedContent._watch_active``).
    """

    def __init__(self, app):
        self.app = app
        self.painted: asyncio.Future | None = None
        for owner, name in TIMED_ACTIONS:
            target = app if owner is None else getattr(app, owner)
            setattr(target, name, self._timed(getattr(target, name)))

    def _timed(self, action):
        @functools.wraps(action)
        def timed_action(*args):
            result = action(*args)
            painted = self.painted
            if painted is not None:
                self.app.call_after_refresh(
                    lambda: painted.done() or painted.set_result((time.perf_counter(), time.process_time())))
            return result
        return timed_action

    def send(self, key: str) -> None:
        """``key`` to the app, as its driver (the terminal) would send it."""
        self.app._driver.send_message(events.Key(key, None))

    async def latency(self, key: str, timeout: float = 30.0) -> tuple[float, float]:
        """(wall time, CPU time of this process) from sending ``key`` to its frame.  The CPU time
        is the work the process did before the key reached the screen, whatever share of the
        cores the machine's other work left it."""
        self.painted = asyncio.get_running_loop().create_future()
        sent, cpu = time.perf_counter(), time.process_time()
        self.send(key)
        try:
            painted, painted_cpu = await asyncio.wait_for(self.painted, timeout)
        finally:
            self.painted = None
        return painted - sent, painted_cpu - cpu


def percentile(ordered: list[float], share: float) -> float:
    """The ``share`` percentile of the sorted ``ordered`` (nearest rank below)."""
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

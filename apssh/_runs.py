"""Which scheduler run a job belongs to, and which of its jobs are still to come.

asynciojobs gives a job no link to its scheduler, and a nested scheduler shuts its jobs down
as soon as it is done, while its siblings still run. To decide whether a connection may close,
a job's outermost running scheduler is found from the running tasks (every running
``co_run`` has its scheduler as ``self``). Every access to asyncio/asynciojobs internals for
this lives in this module.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asynciojobs.purescheduler import PureScheduler


def _walk() -> dict[int, tuple[PureScheduler, bool]]:
    from asynciojobs.purescheduler import PureScheduler  # noqa: PLC0415 (the apssh command has no scheduler)

    found: dict[int, tuple[PureScheduler, bool]] = {}
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        depth = 0
        while coro is not None and depth < 64:
            frame = getattr(coro, "cr_frame", None)
            name = frame.f_code.co_name if frame is not None else None
            if name in ("co_run", "co_shutdown"):
                owner = frame.f_locals.get("self")
                if isinstance(owner, PureScheduler):
                    ending = found.get(id(owner), (owner, False))[1] or name == "co_shutdown"
                    found[id(owner)] = (owner, ending)
            coro = getattr(coro, "cr_await", None)
            depth += 1
    return found


class _Snapshot:
    """The running schedulers seen by one walk of the tasks, with their jobs indexed once."""

    def __init__(self):
        self.schedulers = _walk()
        self._members: dict[int, tuple[set[int], int]] = {}

    def members(self, scheduler: PureScheduler) -> tuple[set[int], int]:
        """ids of the jobs of ``scheduler`` (nested included), and how many there are."""
        key = id(scheduler)
        if key not in self._members:
            ids = {id(job) for job in scheduler.iterate_jobs(scan_schedulers=True)}
            self._members[key] = (ids, len(ids))
        return self._members[key]


# one snapshot per event-loop iteration: a scheduler shutting down 1000 jobs starts 1000
# tasks that each ask in the same iteration; walking every task for each of them cost
# O(jobs^2) (a quarter of the library bench's CPU at 1000 jobs). The snapshot is dropped by
# the next iteration's callbacks; a decision taken on it that a scheduler's later state
# changes is taken again, on a fresh walk, when that scheduler shuts its jobs down.
_SNAPSHOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Snapshot] = weakref.WeakKeyDictionary()


def _snapshot() -> _Snapshot:
    loop = asyncio.get_running_loop()
    snapshot = _SNAPSHOTS.get(loop)
    if snapshot is None:
        snapshot = _SNAPSHOTS[loop] = _Snapshot()
        loop.call_soon(_SNAPSHOTS.pop, loop, None)
    return snapshot


def running_schedulers() -> dict[int, tuple[PureScheduler, bool]]:
    """Schedulers whose ``co_run`` is on the await chain of a task of the running loop.

    Returns:
        ``{id: (scheduler, ending)}`` (ids of live objects, valid during this loop iteration);
        ``ending`` is true when the scheduler is inside its ``co_shutdown``.
    """
    return _snapshot().schedulers


def outermost_run(job) -> tuple[PureScheduler | None, bool]:
    """The outermost running scheduler holding ``job`` (nested ones included), or None,
    and whether that scheduler is ending (shutting its jobs down: its run is over)."""
    snapshot = _snapshot()
    holders = [(s, ending, snapshot.members(s)[1]) for s, ending in snapshot.schedulers.values()
               if id(job) in snapshot.members(s)[0]]
    if not holders:
        return None, False
    scheduler, ending, _ = max(holders, key=lambda item: item[2])
    return scheduler, ending


def jobs_to_come(scheduler: PureScheduler, but) -> list:
    """The jobs of ``scheduler`` (nested included) not done yet, other than ``but``."""
    from asynciojobs.purescheduler import PureScheduler  # noqa: PLC0415

    return [job for job in scheduler.iterate_jobs(scan_schedulers=True)
            if job is not but and not job.is_done() and not isinstance(job, PureScheduler)]

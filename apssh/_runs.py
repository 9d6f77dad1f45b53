"""Which scheduler run a job belongs to, and which of its jobs are still to come.

asynciojobs gives a job no link to its scheduler, and a nested scheduler shuts its jobs down
as soon as it is done, while its siblings still run. To decide whether a connection may close,
a job's outermost running scheduler is found from the running tasks (every running
``co_run`` has its scheduler as ``self``). Every access to asyncio/asynciojobs internals for
this lives in this module.
"""

from __future__ import annotations

import asyncio

from asynciojobs.purescheduler import PureScheduler


def running_schedulers() -> dict[int, tuple[PureScheduler, bool]]:
    """Schedulers whose ``co_run`` is on the await chain of a task of the running loop.

    Returns:
        ``{id: (scheduler, ending)}`` (ids of live objects, valid for this call only);
        ``ending`` is true when the scheduler is inside its ``co_shutdown``.
    """
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


def _contains(scheduler: PureScheduler, job) -> bool:
    return any(member is job for member in scheduler.iterate_jobs(scan_schedulers=True))


def outermost_run(job) -> tuple[PureScheduler | None, bool]:
    """The outermost running scheduler holding ``job`` (nested ones included), or None,
    and whether that scheduler is ending (shutting its jobs down: its run is over)."""
    holders = [(s, ending) for s, ending in running_schedulers().values() if _contains(s, job)]
    if not holders:
        return None, False
    return max(holders, key=lambda item: sum(1 for _ in item[0].iterate_jobs(scan_schedulers=True)))


def jobs_to_come(scheduler: PureScheduler, but) -> list:
    """The jobs of ``scheduler`` (nested included) not done yet, other than ``but``."""
    return [job for job in scheduler.iterate_jobs(scan_schedulers=True)
            if job is not but and not job.is_done() and not isinstance(job, PureScheduler)]

"""Every use of asynciojobs internals, in one place.

asynciojobs 0.21.3 (pinned in pyproject.toml) keeps a job's run state in private fields and
offers neither callbacks nor a way to run a scheduler twice.  The runner needs all three; the
few private fields it touches are named here only, so that a new asynciojobs release is checked
against this module alone (tests/test_layers.py keeps them out of every other module).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from asynciojobs import AbstractJob
from asynciojobs.purescheduler import PureScheduler


def prime_unicode_detection() -> None:
    """Make asynciojobs decide now whether the terminal shows unicode.

    It reads ``sys.stdout.encoding`` on first use; inside a Textual app stdout has no encoding,
    so call this before the app starts.
    """
    AbstractJob._detect_support_for_unicode()


def replace_co_run(job: AbstractJob, co_run: Callable) -> None:
    """Run ``co_run()`` (a coroutine function of no argument) instead of the job's own ``co_run``.

    An instance attribute shadows the method: the scheduler calls it at the moment the job
    starts, which is the only hook asynciojobs gives on a job's start and end.
    """
    job.co_run = co_run


def unfinished_task(job: AbstractJob) -> asyncio.Task | None:
    """The task running ``job``, when it has one that is not done (None otherwise)."""
    task = job._task
    return task if task is not None and not task.done() else None


def reset_for_another_run(scheduler: PureScheduler, jobs: Iterable[AbstractJob]) -> None:
    """Forget what the last run left in ``scheduler`` and its ``jobs``, so that they can run again."""
    scheduler._did_shutdown = False
    for job in jobs:
        job._task = None
        job._running = False

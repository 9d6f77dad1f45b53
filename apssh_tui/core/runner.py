"""Start, abort and re-run a scenario's scheduler, recording every job's state.

asynciojobs cannot run a scheduler twice as is, has no job callbacks and no abort; the
runner adds them without changing the scheduler's semantics:

* each job's ``co_run`` is wrapped (an instance attribute shadowing the method): the
  wrapper records the running transition and the outcome, installs the job's output
  formatter, and runs the real ``co_run`` in an inner task that can be cancelled alone;
* aborting cancels those inner tasks (which stops the remote commands), then the run;
* a re-run restricts each scheduler to the jobs to run again (and their requirements to
  that subset), resets asynciojobs' per-run flags, runs, and restores the full graph.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from asynciojobs.bestset import BestSet
from asynciojobs.purescheduler import PureScheduler

from apssh.formatters import COMMAND_FORMATTER
from apssh.sshjob import CommandFailedError, SshJob
from apssh.sshproxy import SshConnectError
from apssh.topology import co_close_ssh_in_scheduler

from .jobs_bridge import replace_co_run, reset_for_another_run, unfinished_task
from .output import JobFormatter, OutputStore
from .states import PROBLEM_STATES, JobRecord, JobState, StateModel

#: what a non-critical SshJob returns for a command that ended without an exit status
NO_EXIT_STATUS = 255


def _connection_failure(job) -> str | None:
    """Why ``job``'s command ended without an exit status (connection lost, closed, keepalive
    unanswered...), or None when it did not."""
    return getattr(job, "failure_reason", None) if isinstance(job, SshJob) else None


class JobAborted(Exception):
    """A job stopped by the user (counts as a failure for the scheduler)."""


class RunnerBusy(RuntimeError):
    """Start or re-run asked while a run is going on."""


class Runner:
    """Drives one scheduler: run, abort everything or one job, re-run failed or selected jobs.

    Args:
        model: the StateModel of the scheduler (the runner instruments its jobs).
        store: where job output goes.
        on_finish: optional callable(ok) called at the end of every run.
    """

    def __init__(self, model: StateModel, store: OutputStore, on_finish=None):
        self.model = model
        self.scheduler = model.scheduler
        self.store = store
        self.on_finish = on_finish
        self.last_error: BaseException | None = None
        self.runs = 0
        self._inner: dict[str, asyncio.Task] = {}
        self._run_task: asyncio.Task | None = None
        self._abort_task: asyncio.Task | None = None
        self._aborting = False
        self.aborted_by_user = False  # the last run was stopped with abort()
        self._abort_requested: set[str] = set()
        for record in model:
            self._instrument(record)

    @property
    def running(self) -> bool:
        return self._run_task is not None and not self._run_task.done()

    # -- instrumentation
    def _instrument(self, record: JobRecord) -> None:
        job = record.job
        original = job.co_run

        async def co_run():
            if self._aborting:  # the run is being aborted: start nothing new
                self.model.set_state(record, JobState.IDLE, error="run aborted")
                raise JobAborted(f"{record.label}: not started, the run was aborted")
            self.model.set_state(record, JobState.RUNNING, attempts=record.attempts + 1,
                                 started=time.time(), ended=None, result=None, error="")
            self.store.begin_attempt(record.key, record.attempts, record.started)
            token = COMMAND_FORMATTER.set(JobFormatter(self.store, record.key))
            try:
                inner = asyncio.ensure_future(original())  # inherits the job's formatter
            finally:
                COMMAND_FORMATTER.reset(token)
            self._inner[record.key] = inner
            try:
                result = await inner
            except asyncio.CancelledError:
                self._cancelled(record)
                if not _being_cancelled() and (self._aborting or record.key in self._abort_requested):
                    raise JobAborted(f"{record.label}: aborted by the user") from None
                raise
            except SshConnectError as exc:
                self._finish(record, JobState.UNREACHABLE, error=str(exc))
                raise
            except Exception as exc:
                lost = _connection_failure(job)
                if isinstance(exc, CommandFailedError) and exc.retcod is None and lost:
                    self._finish(record, JobState.UNREACHABLE, error=lost)
                    raise
                # a critical SshJob's failing command raises: keep its exit code all the same
                self._finish(record, JobState.FAILED, error=f"{type(exc).__name__}: {exc}",
                             result=getattr(exc, "retcod", None))
                raise
            finally:
                self._inner.pop(record.key, None)
            failed = (isinstance(job, SshJob) and result not in (0, None)) or \
                     (isinstance(job, PureScheduler) and result is False)
            lost = _connection_failure(job) if failed and result == NO_EXIT_STATUS else None
            if lost:
                # a non-critical job's command that never got an exit status: 255 is no exit code
                self._finish(record, JobState.UNREACHABLE, error=lost)
                return result
            self._finish(record, JobState.FAILED if failed else JobState.DONE, result=result,
                         error=f"exit code {result}" if failed and isinstance(job, SshJob) else "")
            return result

        replace_co_run(job, co_run)

    def _finish(self, record: JobRecord, state: JobState, **fields) -> None:
        self.model.set_state(record, state, ended=time.time(), **fields)

    def _cancelled(self, record: JobRecord) -> None:
        if record.job.forever and not self._aborting and record.key not in self._abort_requested:
            self._finish(record, JobState.DONE, error="stopped at the end of the run")
        else:
            self._finish(record, JobState.ABORTED, error="aborted")

    # -- planning
    def plan_failed(self) -> dict[str | None, set[str]]:
        """Failed, aborted, unreachable, timed out and never-run jobs, and all downstream."""
        keys = [r.key for r in self.model if not r.is_scheduler and r.state.needs_rerun]
        return self.plan(keys, downstream=True)

    def plan(self, keys: Iterable[str], downstream: bool = True) -> dict[str | None, set[str]]:
        """Which jobs run, per scheduler (None: the top level), to re-run ``keys``.

        An enclosing nested scheduler is re-run with just the needed inner jobs; a nested
        scheduler re-run as a whole (e.g. downstream of a failure) takes all its jobs.
        """
        plan: dict[str | None, set[str]] = {}

        def add_level(level_keys: set[str], parent: str | None) -> set[str]:
            chosen = self.model.downstream(level_keys) if downstream else set(level_keys)
            plan.setdefault(parent, set()).update(chosen)
            for key in chosen:
                if self.model[key].is_scheduler and key not in level_keys:
                    add_whole(key)
            return chosen

        def add_whole(key: str) -> None:
            children = {record.key for record in self.model.children(key)}
            plan.setdefault(key, set()).update(children)
            for child in children:
                if self.model[child].is_scheduler:
                    add_whole(child)

        for key in keys:
            record = self.model[key]
            add_level({key}, record.parent)
            if record.is_scheduler:
                add_whole(key)
            # the enclosing schedulers run too, holding only what is planned inside them
            parent = record.parent
            while parent is not None:
                add_level({parent}, self.model[parent].parent)
                parent = self.model[parent].parent
        return plan

    # -- running
    async def run(self) -> bool:
        """Run the whole scenario (again: everything is reset)."""
        plan: dict[str | None, set[str]] = {None: {r.key for r in self.model.children(None)}}
        for record in self.model:
            if record.is_scheduler:
                plan[record.key] = {r.key for r in self.model.children(record.key)}
        return await self.execute(plan)

    async def rerun_failed(self) -> bool:
        """Run again what did not succeed, and everything downstream; keep what succeeded."""
        return await self.execute(self.plan_failed())

    async def rerun(self, key: str, downstream: bool = True) -> bool:
        """Run one job again (and, by default, everything downstream of it)."""
        return await self.execute(self.plan([key], downstream))

    async def execute(self, plan: dict[str | None, set[str]]) -> bool:
        """Run the jobs of ``plan`` (see :meth:`plan`); returns whether the run succeeded."""
        if self.running:
            raise RunnerBusy("a run is in progress: abort it or wait for its end")
        if not any(plan.values()):
            return True
        self.runs += 1
        self._aborting = False
        self.aborted_by_user = False
        self._abort_requested.clear()
        self.last_error = None
        planned = [self.model[key] for keys in plan.values() for key in keys]
        for record in planned:
            # a job planned again starts afresh: no duration or result of its last attempt on screen
            self.model.set_state(record, JobState.WAITING, error="", started=None, ended=None, result=None)
        restore = self._restrict(plan)
        ok = False
        try:
            self._run_task = asyncio.ensure_future(self.scheduler.co_run())
            try:
                ok = bool(await self._run_task)
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise
            except Exception as exc:
                self.last_error = exc
        finally:
            if self._abort_task is not None:
                await self._abort_task
                self._abort_task = None
            await self._tidy(planned)
            restore()
            self._run_task = None
            self.store.flush()  # the record files hold every line of the run
        ok = ok and not self._aborting and all(r.state == JobState.DONE for r in planned)
        if self.on_finish is not None:
            self.on_finish(ok)
        return ok

    async def _tidy(self, planned: list[JobRecord]) -> None:
        """After a run: stop leftovers, name what never ran, and close connections if aborted."""
        leftovers = [task for task in (unfinished_task(r.job) for r in planned) if task is not None]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        timed_out = self.scheduler.failed_time_out()
        planned_keys = {record.key for record in planned}
        for record in self.model:  # parents before their jobs, requirements before what needs them
            if record.key not in planned_keys:
                continue
            if record.state == JobState.WAITING:
                blocker = None if self._aborting else self._failed_requirement(record)
                if blocker is not None:
                    self.model.set_state(record, JobState.SKIPPED, error=f"skipped: {blocker}")
                else:
                    self.model.set_state(record, JobState.IDLE, error="did not run")
            elif record.state == JobState.ABORTED and timed_out and not self._aborting:
                self.model.set_state(record, JobState.TIMED_OUT, error="scheduler timeout")
            elif record.state == JobState.RUNNING:  # a wrapper that never got to record its end
                self._finish(record, JobState.ABORTED, error="aborted")
        if self._aborting:
            await co_close_ssh_in_scheduler(self.scheduler)

    def _failed_requirement(self, record: JobRecord) -> str | None:
        """Why ``record`` could not run: a requirement (or its scheduler's) that failed or was skipped."""
        for key in record.requires:
            required = self.model[key]
            if required.state in PROBLEM_STATES or required.state == JobState.SKIPPED:
                return f"{key} {required.state.value}"
        if record.parent is not None and self.model[record.parent].state == JobState.SKIPPED:
            return f"{record.parent} skipped"
        return None

    def _restrict(self, plan: dict[str | None, set[str]]):
        """Make each scheduler hold only its planned jobs; returns the function that undoes it."""
        saved_jobs, saved_required = {}, {}
        for parent, keys in plan.items():
            scheduler = self.scheduler if parent is None else self.model[parent].job
            subset = BestSet(self.model[key].job for key in keys)
            saved_jobs[id(scheduler)] = (scheduler, scheduler.jobs)
            scheduler.jobs = subset
            reset_for_another_run(scheduler, subset)
            for job in subset:
                saved_required[id(job)] = (job, job.required)
                job.required = BestSet(req for req in job.required if req in subset)

        def restore():
            for scheduler, jobs in saved_jobs.values():
                scheduler.jobs = jobs
            for job, required in saved_required.values():
                job.required = required
        return restore

    # -- aborting
    def abort(self, *, stop_now: bool = True) -> bool:
        """Stop everything: remote commands are killed, connections closed, output kept.

        The running jobs are marked aborted at once (the screen can show it before anything
        is stopped); then, unless ``stop_now`` is false, they are cancelled and their remote
        commands stopped, and only then is the run itself cancelled, so that no cleanup is cut
        short.  With ``stop_now=False`` the caller calls :meth:`stop_aborted` itself (the app
        does once the aborted rows are on screen: cancelling hundreds of jobs is work for the
        event loop).  Returns False when nothing is running.
        """
        if not self.running:
            return False
        self._aborting = True
        self.aborted_by_user = True
        now = time.time()
        for record in self.model:  # on screen at once; the remote commands are stopped in the background
            if record.state == JobState.RUNNING:
                self.model.set_state(record, JobState.ABORTED, ended=now, error="aborted by user")
        if stop_now:
            self.stop_aborted()
        return True

    def stop_aborted(self) -> None:
        """Cancel the jobs still running after :meth:`abort` (remote commands killed), then the
        run; does nothing when there is no aborted run to stop (or it is being stopped)."""
        if not self._aborting or self._abort_task is not None or not self.running:
            return
        running = list(self._inner.values())
        for task in running:
            task.cancel()
        self._abort_task = asyncio.ensure_future(self._cancel_run_after(running))

    async def _cancel_run_after(self, running: list[asyncio.Task]) -> None:
        await asyncio.gather(*running, return_exceptions=True)
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()

    def abort_job(self, key: str) -> bool:
        """Stop one running job; the scheduler sees it fail (a critical job stops the run)."""
        task = self._inner.get(key)
        if task is None or task.done():
            return False
        self._abort_requested.add(key)
        task.cancel()
        return True


def _being_cancelled() -> bool:
    """Whether the current task itself is being cancelled (not just something it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

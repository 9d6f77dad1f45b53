"""Why a run ended, in one line for the status bar: succeeded, aborted by user, or what stopped it."""

from __future__ import annotations

from .failures import failure_cause, host_of
from .states import PROBLEM_STATES, JobState


def run_outcome(description: str, ok: bool, runner, store=None, rerun_key: str = "r") -> str:
    """``run: succeeded``, ``run: aborted by user``, ``run: stopped: critical job X failed on host Y: why``,
    ``run: stopped: scheduler timeout (30 s)``, or ``run: FAILED (r re-runs failed jobs)`` when only
    non-critical jobs failed.

    Args:
        description: what ran ("run", "re-run of failed jobs"...).
        ok: what the run returned.
        runner: the Runner that ran it (its last_error and aborted_by_user are read).
        store: the OutputStore, for the failed job's last stderr line (optional).
        rerun_key: the key bound to "re-run failed jobs", named in the hint.
    """
    if ok:
        return f"{description}: succeeded"
    if runner.aborted_by_user:
        return f"{description}: aborted by user"
    error = runner.last_error
    model = runner.model
    if isinstance(error, TimeoutError) or (runner.scheduler is not None and runner.scheduler.failed_time_out()):
        timeout = getattr(runner.scheduler, "timeout", None)
        return f"{description}: stopped: scheduler timeout" + (f" ({timeout:g} s)" if timeout else "")
    critical = [record for record in model if not record.is_scheduler and record.state in PROBLEM_STATES
                and record.state != JobState.ABORTED and getattr(record.job, "critical", False)]
    if critical:
        first = min(critical, key=lambda record: record.ended or 0.0)
        host = host_of(first)
        where = f" on host {host}" if host else ""
        return (f"{description}: stopped: critical job {first.key} {first.state.value}{where}: "
                f"{failure_cause(first, store)}")
    if error is not None:
        return f"{description}: stopped: {type(error).__name__}: {error}"
    return f"{description}: FAILED ({rerun_key} re-runs failed jobs)"

"""Runs over time: the record directories under a base, and what changed from one run to another."""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .natural import natural_key
from .output import record_path
from .record import OUTPUT_DIR, RUN_FILE, RecordedRun, load_run


@dataclass
class RunEntry:
    """One past run, as listed: where, when, which scenario, how it went, how long."""

    directory: Path
    scenario: str
    started: float | None
    duration: float | None
    counts: Counter
    succeeded: bool | None

    def counts_text(self) -> str:
        """``3 done, 1 failed`` (states in a fixed order)."""
        order = ["done", "failed", "unreachable", "timed out", "aborted", "skipped", "idle"]
        known = [state for state in order if self.counts.get(state)]
        others = sorted(state for state in self.counts if state not in order)
        return ", ".join(f"{self.counts[state]} {state}" for state in known + others)


def list_runs(base: str | Path) -> list[RunEntry]:
    """Every readable record directory right under ``base``, newest first (unreadable ones skipped)."""
    base = Path(base)
    entries = []
    for directory in sorted(base.glob(f"*/{RUN_FILE}")):
        try:
            data = json.loads(directory.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        jobs = [job for job in data.get("jobs", []) if not job.get("nested")]
        ends = [job["ended"] for job in jobs if job.get("ended")]
        started = data.get("started")
        duration = (max(ends) - started) if started and ends else None
        entries.append(RunEntry(directory.parent, Path(str(data.get("scenario", "?"))).name, started, duration,
                                Counter(job.get("state", "?") for job in jobs), data.get("succeeded")))
    entries.sort(key=lambda entry: entry.started or 0.0, reverse=True)
    return entries


@dataclass
class Change:
    """A job whose state differs between two runs (``None``: not in that run)."""

    key: str
    node: str
    before: str | None
    after: str | None


def compare_runs(before: RecordedRun, after: RecordedRun) -> list[Change]:
    """Jobs (matched by key) whose state changed from ``before`` to ``after``, in natural order."""
    old = {job.key: job for job in before.jobs if not job.nested}
    new = {job.key: job for job in after.jobs if not job.nested}
    changes = []
    for key in sorted(set(old) | set(new), key=natural_key):
        a, b = old.get(key), new.get(key)
        state_a = a.state.value if a else None
        state_b = b.state.value if b else None
        if state_a != state_b:
            changes.append(Change(key, (b or a).node, state_a, state_b))
    return changes


def output_diff(before: RecordedRun, after: RecordedRun, key: str) -> list[str]:
    """A unified diff of job ``key``'s output (last attempt, every host, stdout then stderr)."""
    return list(difflib.unified_diff(_job_output(before, key), _job_output(after, key),
                                     fromfile=f"{before.directory.name} {key}",
                                     tofile=f"{after.directory.name} {key}", lineterm=""))


def _job_output(run: RecordedRun, key: str) -> list[str]:
    job = next((job for job in run.jobs if job.key == key), None)
    if job is None:
        return []
    attempt = max(job.attempts, 1)
    output = run.directory / OUTPUT_DIR
    host = job.node.rpartition("@")[2]
    lines = []
    for stream in ("out", "err"):
        path = record_path(output, key, host, stream, attempt)
        if path.is_file():
            tag = "" if stream == "out" else "stderr: "
            lines += [tag + line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    return lines


def load(directory: str | Path) -> RecordedRun:
    """The record in ``directory`` (see core.record.load_run)."""
    return load_run(directory)

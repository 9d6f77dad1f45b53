"""The state of every job of a scenario, kept by the app itself.

asynciojobs has no callbacks and no "aborted" state, so the runner records each
transition here; screens read this model and never the scheduler's private fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from asynciojobs import AbstractJob
from asynciojobs.purescheduler import PureScheduler

from apssh.nodes import LocalNode

from .natural import natural_key


class JobState(str, Enum):
    """What a job is doing, in the words shown on screen."""

    IDLE = "idle"
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    TIMED_OUT = "timed out"
    ABORTED = "aborted"
    SKIPPED = "skipped"  # not run: a job it requires failed

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES

    @property
    def needs_rerun(self) -> bool:
        """Failed, aborted, unreachable, timed out, or never run."""
        return self not in (JobState.DONE, JobState.RUNNING)


FINISHED_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.UNREACHABLE,
                             JobState.TIMED_OUT, JobState.ABORTED, JobState.SKIPPED})
PROBLEM_STATES = frozenset({JobState.FAILED, JobState.UNREACHABLE, JobState.TIMED_OUT, JobState.ABORTED})


@dataclass
class JobRecord:
    """One job as the app knows it: identity, place in the graph, and run history."""

    key: str
    job: AbstractJob
    label: str
    node: str = ""
    parent: str | None = None
    requires: list[str] = field(default_factory=list)
    layer: int = 0
    state: JobState = JobState.IDLE
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    result: object = None
    error: str = ""
    nested: bool = False  # a nested scheduler (its jobs are records too)
    history: list[dict] = field(default_factory=list)  # one entry per attempt (see note_attempt)

    @property
    def is_scheduler(self) -> bool:
        return self.nested

    @property
    def duration(self) -> float | None:
        """Seconds spent running (so far, while it runs)."""
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started

    def as_dict(self) -> dict:
        """What a record directory keeps of this job."""
        return {"key": self.key, "label": self.label, "node": self.node, "parent": self.parent,
                "requires": self.requires, "layer": self.layer, "state": self.state.value,
                "attempts": self.attempts, "started": self.started, "ended": self.ended,
                "result": _plain(self.result),
                "error": self.error, "nested": self.nested, "history": self.history}

    def note_attempt(self) -> None:
        """Keep the current attempt's state, exit, times and error in :attr:`history`."""
        if self.attempts < 1 or self.state in (JobState.IDLE, JobState.WAITING):
            return
        entry = {"attempt": self.attempts, "state": self.state.value, "started": self.started,
                 "ended": self.ended, "result": _plain(self.result),
                 "error": self.error}
        if len(self.history) >= self.attempts:
            self.history[self.attempts - 1] = entry
        else:
            self.history.append(entry)


def _plain(result: object) -> object:
    """A job's result as JSON can keep it."""
    return result if isinstance(result, (int, float, str, bool, type(None))) else repr(result)


def _node_name(job: AbstractJob) -> str:
    node = getattr(job, "node", None)
    if node is None:
        return ""
    if isinstance(node, LocalNode):  # the local host needs no login to tell it apart
        return node.hostname
    username = getattr(node, "username", None)
    hostname = getattr(node, "hostname", "?")
    return f"{username}@{hostname}" if username else hostname


def _name(job: AbstractJob) -> str | None:
    """A job's key when the scenario gave none: ``install@127.0.1.201`` from its label and host,
    or just its label without a node; None without a label."""
    if not job.label:
        return None
    node = getattr(job, "node", None)
    hostname = getattr(node, "hostname", None) if node is not None else None
    return f"{job.label}@{hostname}" if hostname else str(job.label)


def _label(job: AbstractJob) -> str:
    if job.label:
        return str(job.label)
    text = job.text_label() if hasattr(job, "text_label") else None
    return str(text) if text else type(job).__name__


class StateModel:
    """All job records of a scheduler (nested ones included), and who to tell of changes.

    Args:
        scheduler: the scenario's scheduler; None for records read back (see from_records).
        names: optional job -> key map (e.g. the ids of a YAML scenario); other jobs get
            keys from their label and host (``install@127.0.1.201``, see ``_name``), or
            ``j01``, ``j02``... in dependency order when they have no label.
    """

    def __init__(self, scheduler: PureScheduler | None, names: dict | None = None):
        self.scheduler = scheduler
        self.records: dict[str, JobRecord] = {}
        self._by_job: dict[int, JobRecord] = {}
        self._listeners: list[Callable[[JobRecord], None]] = []
        given = {id(job): str(key) for key, job in (names or {}).items()}
        self._counter = 0
        if scheduler is not None:
            self._collect(scheduler, None, given)

    def _collect(self, scheduler: PureScheduler, parent: str | None, given: dict) -> None:
        order = _layers(scheduler)
        for job in sorted(scheduler.jobs, key=lambda j: (order[id(j)], natural_key(_label(j)),
                                                         natural_key(given.get(id(j), "")),
                                                         natural_key(_node_name(j)))):
            self._counter += 1
            key = given.get(id(job)) or _name(job) or f"j{self._counter:02d}"
            if key in self.records:
                index = 2
                while f"{key}#{index}" in self.records:
                    index += 1
                key = f"{key}#{index}"
            record = JobRecord(key=key, job=job, label=_label(job), node=_node_name(job),
                               parent=parent, layer=order[id(job)], nested=isinstance(job, PureScheduler))
            self.records[key] = record
            self._by_job[id(job)] = record
            if isinstance(job, PureScheduler):
                self._collect(job, key, given)
        position = {key: index for index, key in enumerate(self.records)}
        for job in scheduler.jobs:
            # job.required is a plain set: list requirements in display order, the same on every run
            self._by_job[id(job)].requires = sorted(
                (self._by_job[id(req)].key for req in job.required if id(req) in self._by_job),
                key=position.__getitem__)

    @classmethod
    def from_records(cls, records: list[JobRecord]) -> StateModel:
        """A model of records read back from a record directory (no scheduler behind it)."""
        model = cls(None)
        model.records = {record.key: record for record in records}
        return model

    # -- lookup
    def record_of(self, job: AbstractJob) -> JobRecord:
        return self._by_job[id(job)]

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(self.records.values())

    def __getitem__(self, key: str) -> JobRecord:
        return self.records[key]

    def children(self, parent: str | None) -> list[JobRecord]:
        """Records directly inside ``parent`` (None: the top-level scheduler), in display order."""
        return [record for record in self.records.values() if record.parent == parent]

    def successors(self, key: str) -> list[JobRecord]:
        return [record for record in self.records.values() if key in record.requires]

    def predecessors(self, key: str) -> list[JobRecord]:
        return [self.records[k] for k in self.records[key].requires]

    def upstream(self, keys) -> set[str]:
        """Every job ``keys`` require, transitively (same scheduler level), ``keys`` excluded."""
        result, todo = set(), [req for key in keys for req in self.records[key].requires]
        while todo:
            key = todo.pop()
            if key not in result:
                result.add(key)
                todo.extend(self.records[key].requires)
        return result

    def waits_for(self, key: str) -> list[str]:
        """The requirements of a job that are not done yet (what a waiting job waits for)."""
        return [req for req in self.records[key].requires if self.records[req].state != JobState.DONE]

    def downstream(self, keys) -> set[str]:
        """``keys`` and every job that requires them, transitively (same scheduler level)."""
        result, todo = set(), list(keys)
        while todo:
            key = todo.pop()
            if key in result:
                continue
            result.add(key)
            todo.extend(record.key for record in self.successors(key))
        return result

    # -- changes
    def subscribe(self, listener: Callable[[JobRecord], None]) -> None:
        """``listener(record)`` is called after every change of a record."""
        self._listeners.append(listener)

    def changed(self, record: JobRecord) -> None:
        for listener in self._listeners:
            listener(record)

    def set_state(self, record: JobRecord, state: JobState, **fields) -> None:
        record.state = state
        for name, value in fields.items():
            setattr(record, name, value)
        record.note_attempt()
        self.changed(record)

    def counts(self) -> dict[JobState, int]:
        """How many (non-scheduler) jobs are in each state."""
        result = {state: 0 for state in JobState}
        for record in self.records.values():
            if not record.is_scheduler:
                result[record.state] += 1
        return result

    def summary(self) -> str:
        """``done 3 / failed 1 / aborted 2 / skipped 1 / running 2 / total 9`` (nested schedulers
        not counted; aborted and skipped only when there are some)."""
        counts = self.counts()
        total = sum(counts.values())
        failed = sum(counts[state] for state in PROBLEM_STATES if state != JobState.ABORTED)
        extra = "".join(f" / {state.value} {counts[state]}" for state in (JobState.ABORTED, JobState.SKIPPED)
                        if counts[state])
        return (f"done {counts[JobState.DONE]} / failed {failed}{extra} / running {counts[JobState.RUNNING]}"
                f" / total {total}")

    def succeeded(self) -> bool:
        return all(record.state == JobState.DONE for record in self.records.values())


def _layers(scheduler: PureScheduler) -> dict[int, int]:
    """Dependency layer of each job: 0 for entry jobs, 1 + deepest requirement otherwise."""
    layer: dict[int, int] = {}
    jobs = list(scheduler.jobs)

    def depth(job, trail=()):
        if id(job) in layer:
            return layer[id(job)]
        if id(job) in trail:  # a cycle: asynciojobs refuses to run it anyway
            return 0
        reqs = [req for req in job.required if req in scheduler.jobs]
        value = 1 + max((depth(req, trail + (id(job),)) for req in reqs), default=-1)
        layer[id(job)] = value
        return value

    for job in jobs:
        depth(job)
    return layer

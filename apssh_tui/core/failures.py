"""Failures first: failed, unreachable, timed-out and aborted hosts gathered by cause.

A cause is what a user would read first: the last line a command wrote on stderr with its exit
code (``/data not mounted (exit 2)``), or the connection error of an unreachable host.  Hosts
with the same job label and the same cause are one row, their names folded as a node set:
``127.0.1.[7,23,46]  probe: /data not mounted (exit 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from apssh.targets import fold

from .output import STDERR_NAME
from .states import PROBLEM_STATES, JobRecord, JobState

#: causes longer than this are cut (with an ellipsis) in one-line views; the details pane has it all
CAUSE_WIDTH = 200


def host_of(record: JobRecord) -> str:
    """The host name of a job's node, without the login (``127.0.1.7``); empty for a local job."""
    return record.node.split("@")[-1] if record.node else ""


def last_stderr_line(store, key: str, hosts: list[str]) -> str:
    """The last non-blank line written on stderr by job ``key`` on any of ``hosts`` (empty if none)."""
    if store is None:
        return ""
    for host in hosts:
        for stream, text in reversed(store.lines(key, host)):
            if stream == STDERR_NAME and text.strip():
                return text.strip()
    return ""


def failure_cause(record: JobRecord, store=None) -> str:
    """Why ``record`` did not succeed, in one line: ``/data not mounted (exit 2)``, the connection
    error, ``timed out``, ``aborted by user``; ``store`` (an OutputStore) gives the stderr line."""
    hosts = (store.hosts(record.key) if store is not None else []) or [host_of(record)]
    stderr = last_stderr_line(store, record.key, hosts)
    if record.state == JobState.UNREACHABLE:
        cause = record.error or "unreachable"
    elif record.state == JobState.FAILED and isinstance(record.result, int) and not isinstance(record.result, bool):
        cause = f"{stderr} (exit {record.result})" if stderr else f"exit code {record.result}"
    elif record.state == JobState.FAILED:
        cause = stderr or record.error or "failed"
    elif record.state == JobState.TIMED_OUT:
        cause = f"timed out ({record.error})" if record.error and record.error != "timed out" else "timed out"
    else:
        cause = record.error or record.state.value
    return cause if len(cause) <= CAUSE_WIDTH else cause[: CAUSE_WIDTH - 1] + "…"


@dataclass
class FailureGroup:
    """Hosts where jobs with the same label ended in the same state for the same cause."""

    label: str
    state: JobState
    cause: str
    hosts: list[str]
    keys: list[str]

    @property
    def nodes(self) -> str:
        """The hosts folded as a node set: ``127.0.1.[7,23,46]``."""
        return fold(self.hosts)

    @property
    def line(self) -> str:
        """``127.0.1.[7,23,46]  probe: /data not mounted (exit 2)``."""
        return f"{self.nodes}  {self.label}: {self.cause}"


def gather_failures(model, store=None) -> list[FailureGroup]:
    """Every job in a problem state (failed, unreachable, timed out, aborted), grouped by label,
    state and cause; the largest group first."""
    groups: dict[tuple, FailureGroup] = {}
    for record in model:
        if record.is_scheduler or record.state not in PROBLEM_STATES:
            continue
        cause = failure_cause(record, store)
        key = (record.label, record.state, cause)
        group = groups.setdefault(key, FailureGroup(record.label, record.state, cause, [], []))
        group.keys.append(record.key)
        host = host_of(record) or record.key
        if host not in group.hosts:
            group.hosts.append(host)
    return sorted(groups.values(), key=lambda group: (-len(group.keys), group.label, group.cause))

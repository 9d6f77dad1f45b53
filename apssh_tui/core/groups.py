"""Sibling jobs: the same step on many nodes, shown as one row with a node set.

A scenario over 100 nodes has 100 "probe" jobs in the same dependency layer; listing them one
by one hides the shape of the graph.  Jobs of one scheduler level with the same layer and
label, each on a node, are siblings; a group of them reads ``probe  root@fit[001-100]``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from apssh.targets import fold

from .natural import natural_key
from .states import PROBLEM_STATES, JobRecord, JobState

#: groups with at least this many siblings start folded
FOLD_THRESHOLD = 5
# which state a group shows: the most worrying one among its members
_PRECEDENCE = [JobState.FAILED, JobState.UNREACHABLE, JobState.TIMED_OUT, JobState.ABORTED,
               JobState.SKIPPED, JobState.RUNNING, JobState.WAITING, JobState.IDLE, JobState.DONE]


@dataclass
class SiblingGroup:
    """Sibling jobs: same scheduler, same layer, same label, one node each."""

    key: str
    label: str
    members: list[JobRecord]

    @property
    def state(self) -> JobState:
        present = {member.state for member in self.members}
        return next(state for state in _PRECEDENCE if state in present)

    def counts(self) -> Counter:
        return Counter(member.state for member in self.members)

    def progress(self) -> str:
        """``3/4 done``, or what is not done: ``1 failed, 3 done``."""
        counts = self.counts()
        if counts[JobState.DONE] == len(self.members):
            return f"{len(self.members)}/{len(self.members)} done"
        return ", ".join(f"{count} {state.value}" for state, count in sorted(
            counts.items(), key=lambda item: _PRECEDENCE.index(item[0])))

    @cached_property
    def nodes(self) -> str:
        """The members' nodes folded as a node set: ``root@node[1-4]`` (members never change)."""
        return fold(member.node for member in self.members)

    @property
    def keys(self) -> list[str]:
        return [member.key for member in self.members]

    @cached_property
    def member_keys(self) -> frozenset[str]:
        """The members' keys, to test membership."""
        return frozenset(member.key for member in self.members)

    @property
    def duration(self) -> float | None:
        durations = [member.duration for member in self.members if member.duration is not None]
        return max(durations) if durations else None

    @property
    def attempts(self) -> int:
        return max(member.attempts for member in self.members)

    @property
    def requires(self) -> str:
        return fold(sorted({key for member in self.members for key in member.requires}, key=natural_key))

    @property
    def has_problem(self) -> bool:
        return any(member.state in PROBLEM_STATES for member in self.members)


def sibling_groups(records: list[JobRecord]) -> dict[str, SiblingGroup]:
    """Groups of two or more siblings among ``records``, by group key (``group:<first member>``)."""
    buckets: dict[tuple, list[JobRecord]] = {}
    for record in records:
        if record.is_scheduler or not record.node:
            continue
        buckets.setdefault((record.parent, record.layer, record.label), []).append(record)
    groups = {}
    for (_, _, label), members in buckets.items():
        if len(members) >= 2:
            members.sort(key=lambda member: natural_key(member.key))
            group = SiblingGroup(f"group:{members[0].key}", label, members)
            groups[group.key] = group
    return groups


def siblings_of(records: list[JobRecord], key: str) -> list[str]:
    """The keys of ``key``'s sibling group (the folded row it belongs to), or just ``[key]``."""
    for group in sibling_groups(records).values():
        if key in group.keys:
            return group.keys
    return [key]

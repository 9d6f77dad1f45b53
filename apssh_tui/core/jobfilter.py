"""Which jobs the jobs table shows: a filter by state, node set and text.

A query is words separated by spaces; all must hold:

* ``state:failed`` or ``state:failed,aborted`` (``problem`` stands for failed, unreachable,
  timed out and aborted; ``timed-out`` for timed out);
* ``node:fit[01-10]`` or ``node:127.0.0.[11-12]``: the job's host is in the node set;
* any other word: found (case-insensitive) in the job's key, label or node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apssh.targets import TargetError, expand_word

from .states import PROBLEM_STATES, JobRecord, JobState

_STATE_NAMES = {state.value.replace(" ", "-"): {state} for state in JobState}
_STATE_NAMES["problem"] = set(PROBLEM_STATES)


@dataclass
class JobFilter:
    """A parsed query (see the module doc); an empty one keeps every job."""

    text: str = ""
    states: set[JobState] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    words: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> JobFilter:
        """Parse ``text``.

        Raises:
            ValueError naming the word and what is accepted.
        """
        result = cls(text.strip())
        for word in text.split():
            name, colon, value = word.partition(":")
            if colon and name == "state":
                for state in value.lower().split(","):
                    if state not in _STATE_NAMES:
                        raise ValueError(f"filter {word!r}: unknown state {state!r}; use one of "
                                         f"{', '.join(sorted(_STATE_NAMES))}")
                    result.states |= _STATE_NAMES[state]
            elif colon and name == "node":
                try:
                    result.hosts.update(expand_word(value))
                except TargetError as exc:
                    raise ValueError(f"filter {word!r}: {exc}; write a node set such as fit[01-10]") from None
            else:
                result.words.append(word.lower())
        return result

    def __bool__(self) -> bool:
        return bool(self.states or self.hosts or self.words)

    def keeps(self, record: JobRecord) -> bool:
        """Whether ``record`` passes every part of the query."""
        if self.states and record.state not in self.states:
            return False
        if self.hosts and record.node.rpartition("@")[2] not in self.hosts and record.node not in self.hosts:
            return False
        haystack = f"{record.key}\n{record.label}\n{record.node}".lower()
        return all(word in haystack for word in self.words)


def find_host(records, name: str) -> JobRecord | None:
    """The first job (in ``records`` order) whose host is ``name``, or whose host starts with it."""
    name = name.strip().lower()
    if not name:
        return None
    hosts = [(record, record.node.rpartition("@")[2].lower()) for record in records if record.node]
    exact = next((record for record, host in hosts if host == name), None)
    return exact or next((record for record, host in hosts if host.startswith(name)), None)

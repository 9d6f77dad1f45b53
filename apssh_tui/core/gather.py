"""Gathering: hosts with identical output and exit code shown once, under a folded node set.

As clush does: the largest group is the reference, and every other group can be shown as a
unified diff against it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from apssh.targets import fold


@dataclass
class Group:
    """Hosts that printed the same thing and ended with the same exit code."""

    hosts: list[str]
    exit_code: object
    lines: list[str]
    diff: list[str] = field(default_factory=list)  # against the largest group; empty for it

    @property
    def header(self) -> str:
        """``fit[01-03] (3 hosts, exit 0)``."""
        count = len(self.hosts)
        return f"{fold(self.hosts)} ({count} host{'s' if count > 1 else ''}, exit {self.exit_code})"


def gather(outputs: dict[str, tuple[str, list[str], object]]) -> list[Group]:
    """Group hosts by (output digest, exit code); largest group first, with diffs for the others.

    Args:
        outputs: host -> (digest of its complete output, lines to show, exit code).
    """
    groups: dict[tuple, Group] = {}
    for host in sorted(outputs):
        digest, lines, exit_code = outputs[host]
        key = (digest, repr(exit_code))
        if key not in groups:
            groups[key] = Group([], exit_code, list(lines))
        groups[key].hosts.append(host)
    ordered = sorted(groups.values(), key=lambda group: (-len(group.hosts), fold(group.hosts)))
    if ordered:
        reference = ordered[0]
        for group in ordered[1:]:
            group.diff = list(difflib.unified_diff(
                reference.lines, group.lines, fromfile=fold(reference.hosts), tofile=fold(group.hosts),
                lineterm=""))
    return ordered

"""The selected job: what it needs, what needs it, and how it went."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from .styles import duration_text, job_state_text


class JobDetails(Static):
    """Predecessors, successors, state, attempts, result and error of one job."""

    def __init__(self, model, **kwds):
        super().__init__("", **kwds)
        self.model = model
        self.key: str | None = None
        self.group = None

    def show(self, key: str | None, group=None) -> None:
        """Details of job ``key``, or of a sibling ``group`` (its row key is ``key``)."""
        self.key = key
        self.group = group
        self.refresh_details()

    def refresh_details(self) -> None:
        if self.group is not None:
            self.update(self.group_text(self.group))
            return
        if self.key is None or self.key not in self.model.records:
            self.update("no job selected")
            return
        record = self.model[self.key]
        text = Text()
        text.append(f"{record.key}: {record.label}\n", style="bold")
        if record.node:
            text.append(f"node      {record.node}\n")
        text.append("state     ").append_text(job_state_text(record.state)).append("\n")
        text.append(f"tries     {record.attempts}\n")
        if record.duration is not None:
            text.append(f"duration  {duration_text(record.duration)}\n")
        if record.result is not None:
            text.append(f"result    {record.result}\n")
        if record.error:
            text.append(f"error     {record.error}\n", style="red")
        text.append("\nneeds\n", style="bold")
        for other in self.model.predecessors(record.key) or []:
            text.append("  ← ").append_text(job_state_text(other.state)).append(f"  {other.key} {other.label}\n")
        text.append("needed by\n", style="bold")
        for other in self.model.successors(record.key) or []:
            text.append("  → ").append_text(job_state_text(other.state)).append(f"  {other.key} {other.label}\n")
        self.update(text)

    def group_text(self, group) -> Text:
        text = Text()
        text.append(f"{group.label} on {len(group.members)} nodes\n", style="bold")
        text.append(f"nodes     {group.nodes}\n")
        text.append("state     ").append_text(job_state_text(group.state)).append(f"  {group.progress()}\n")
        if group.requires:
            text.append(f"needs     {group.requires}\n")
        text.append("\njobs (space unfolds)\n", style="bold")
        for member in group.members:
            text.append("  ").append_text(job_state_text(member.state)).append(f"  {member.key} {member.node}")
            text.append(f"  {member.error}\n" if member.error else "\n", style="red" if member.error else "")
        return text

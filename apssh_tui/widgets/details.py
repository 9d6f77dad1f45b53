"""The selected job: what it needs, what needs it, and how it went."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from apssh_tui.core.failures import failure_cause, last_stderr_line
from apssh_tui.core.states import PROBLEM_STATES, JobState

from .styles import duration_text, job_state_text


class JobDetails(Static):
    """Predecessors, successors, state, attempts, result and error of one job."""

    def __init__(self, model, store=None, **kwds):
        super().__init__("", **kwds)
        self.model = model
        self.store = store  # an OutputStore: a failed job's last stderr line shows by its exit code
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
        stderr = last_stderr_line(self.store, record.key, self.store.hosts(record.key)) \
            if self.store is not None and record.state in PROBLEM_STATES else ""
        if record.result is not None:
            text.append(f"result    {record.result}")
            text.append(f"  {stderr}\n" if stderr else "\n", style="red" if stderr else "")
        if record.state in PROBLEM_STATES and not (stderr and record.result is not None):
            text.append(f"cause     {failure_cause(record, self.store)}\n", style="red")
        elif record.error:
            text.append(f"error     {record.error}\n", style="red")
        waits = self.waiting_for(record)
        if waits:
            text.append(f"waits for {waits}\n", style="yellow")
        text.append("\nneeds\n", style="bold")
        for other in self.model.predecessors(record.key) or []:
            text.append("  ← ").append_text(job_state_text(other.state)).append(f"  {other.key} {other.label}\n")
        text.append("needed by\n", style="bold")
        for other in self.model.successors(record.key) or []:
            text.append("  → ").append_text(job_state_text(other.state)).append(f"  {other.key} {other.label}\n")
        self.update(text)

    def waiting_for(self, record) -> str:
        """What a waiting job waits for: its unfinished requirements, or a free slot."""
        if record.state != JobState.WAITING:
            return ""
        pending = [other for other in self.model.predecessors(record.key) if other.state != JobState.DONE]
        if pending:
            return ", ".join(f"{other.key} ({other.state.value})" for other in pending)
        return "a free slot (jobs_window) or its scheduler"

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

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

    def show(self, key: str | None) -> None:
        self.key = key
        self.refresh_details()

    def refresh_details(self) -> None:
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

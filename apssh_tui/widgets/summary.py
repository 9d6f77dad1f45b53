"""The progress line that stays in view: done / failed / running / total, and the run status."""

from __future__ import annotations

from textual.widgets import Static


class RunSummary(Static):
    """``done 3 / failed 1 / running 2 / total 8 - running``."""

    def __init__(self, model, **kwds):
        super().__init__("", **kwds)
        self.model = model
        self.status = "ready: press s to start"

    def set_status(self, status: str) -> None:
        self.status = status
        self.refresh_summary()

    def refresh_summary(self) -> None:
        self.update(f"{self.model.summary()}  -  {self.status}")

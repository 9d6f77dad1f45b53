"""The progress line that stays in view: done / failed / running / total, and the run status."""

from __future__ import annotations

from textual.widgets import Static


class RunSummary(Static):
    """``done 3 / failed 1 / running 2 / total 8 - running``."""

    def __init__(self, model, connections=None, **kwds):
        super().__init__("", **kwds)
        self.model = model
        self.connections = connections  # a ConnectionModel: its meter shows while connections open
        self.status = "ready: press s to start"
        self._shown = ""

    def set_status(self, status: str) -> None:
        self.status = status
        self.refresh_summary()

    def refresh_summary(self) -> None:
        meter = self.connections.connecting_meter() if self.connections is not None else ""
        line = f"{self.model.summary()}{'  -  ' + meter if meter else ''}  -  {self.status}"
        if line != self._shown:  # one line, always: redrawn only when it changed, never laid out again
            self._shown = line
            self.update(line, layout=False)

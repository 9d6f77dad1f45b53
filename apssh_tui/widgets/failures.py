"""The Failures view: failed, unreachable, timed-out and aborted hosts gathered by cause."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from apssh_tui.core.failures import FailureGroup, gather_failures

from .styles import job_state_text


class FailuresTable(DataTable):
    """One row per cause: state, how many jobs, the hosts (a node set), ``label: cause``."""

    class Chosen(Message):
        """The user picked a row (enter): its jobs, the first one to select elsewhere."""

        def __init__(self, keys: list[str]):
            super().__init__()
            self.keys = keys

    def __init__(self, session, **kwds):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwds)
        self.session = session
        self.failure_groups: list[FailureGroup] = []
        self._stamp = None

    def on_mount(self) -> None:
        for column in ("state", "jobs", "hosts", "cause"):
            self.add_column(column, key=column)
        self.refresh_failures()

    def refresh_failures(self) -> None:
        """Gather again when a job's state changed since the last time."""
        stamp = tuple((record.key, record.state, record.ended) for record in self.session.model)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self.failure_groups = gather_failures(self.session.model, self.session.store)
        self.clear()
        for index, group in enumerate(self.failure_groups):
            self.add_row(job_state_text(group.state), str(len(group.keys)), group.nodes,
                         Text(f"{group.label}: {group.cause}"), key=str(index))
        if not self.failure_groups:
            self.add_row("", "", "no failure", "", key="none")

    def lines(self) -> list[str]:
        """The rows as the user reads them: ``hosts  label: cause``."""
        return [group.line for group in self.failure_groups]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value if event.row_key else None
        if key is not None and key.isdigit() and int(key) < len(self.failure_groups):
            self.post_message(self.Chosen(self.failure_groups[int(key)].keys))

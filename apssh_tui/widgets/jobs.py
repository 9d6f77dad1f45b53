"""The jobs table: one row per job, ordered by dependency layer, nested schedulers foldable."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from apssh_tui.core.states import JobRecord, JobState

from .styles import duration_text, job_state_text

COLUMNS = ("state", "job", "node", "label", "duration", "tries", "requires")
WIDTHS = {"state": 11, "duration": 8, "tries": 5}


class JobsTable(DataTable):
    """Jobs as people read a scenario: by layer, with state, node, label, time, tries, needs."""

    BINDINGS = [Binding("space", "toggle_fold", "Fold/unfold", id="jobs.toggle_fold")]

    class Selected(Message):
        """The highlighted job changed."""

        def __init__(self, key: str | None):
            super().__init__()
            self.key = key

    def __init__(self, model, **kwds):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwds)
        self.model = model
        self.expanded: set[str] = {r.key for r in model if r.is_scheduler}
        self._dirty: set[str] = set()

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column, width=WIDTHS.get(column))
        self.rebuild()

    # -- rows
    def visible_records(self) -> list[JobRecord]:
        """Records in display order: each level by layer, nested ones under their scheduler."""
        rows: list[JobRecord] = []

        def walk(parent, depth):
            for record in sorted(self.model.children(parent), key=lambda r: (r.layer, r.label, r.key)):
                rows.append((record, depth))
                if record.is_scheduler and record.key in self.expanded:
                    walk(record.key, depth + 1)
        walk(None, 0)
        self._depths = {record.key: depth for record, depth in rows}
        return [record for record, _ in rows]

    def cells(self, record: JobRecord) -> list:
        depth = self._depths.get(record.key, 0)
        fold = ""
        if record.is_scheduler:
            fold = "▾ " if record.key in self.expanded else "▸ "
        return [job_state_text(record.state), Text("  " * depth + fold + record.key),
                record.node, record.label, duration_text(record.duration),
                str(record.attempts), ", ".join(record.requires)]

    def rebuild(self) -> None:
        selected = self.selected_key()
        self.clear()
        for record in self.visible_records():
            self.add_row(*self.cells(record), key=record.key)
        if selected is not None and selected in self._depths:
            self.move_cursor(row=self.get_row_index(selected))

    def mark_dirty(self, key: str) -> None:
        self._dirty.add(key)

    def refresh_rows(self) -> None:
        """Update the cells of rows that changed (and the running ones, for their duration)."""
        keys = self._dirty | {r.key for r in self.model if r.state == JobState.RUNNING}
        self._dirty = set()
        for key in keys:
            if key not in self._depths:
                continue
            for column, value in zip(COLUMNS, self.cells(self.model[key]), strict=True):
                self.update_cell(key, column, value)

    def selected_key(self) -> str | None:
        if self.row_count == 0 or self.cursor_row < 0:
            return None
        try:
            return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:  # an empty or rebuilding table has no key there
            return None

    def select(self, key: str) -> None:
        """Move the cursor to ``key``, unfolding its schedulers if needed."""
        parent = self.model[key].parent
        changed = False
        while parent is not None:
            if parent not in self.expanded:
                self.expanded.add(parent)
                changed = True
            parent = self.model[parent].parent
        if changed:
            self.rebuild()
        self.move_cursor(row=self.get_row_index(key))

    def action_toggle_fold(self) -> None:
        key = self.selected_key()
        if key is None or not self.model[key].is_scheduler:
            return
        self.expanded.symmetric_difference_update({key})
        self.rebuild()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.post_message(self.Selected(event.row_key.value if event.row_key else None))

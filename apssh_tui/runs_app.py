"""``apssh-tui --runs``: past runs listed (date, scenario, counts, duration); open one, or compare two."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Log, Static

from .core.runs import compare_runs, list_runs, load, output_diff
from .widgets.styles import duration_text


class CompareScreen(Screen):
    """Jobs whose state changed between two runs; the highlighted job's output diff below."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="runs.back")]
    CSS = """
    #changes { height: 1fr; }
    #diff { height: 2fr; border-top: solid $accent; }
    """

    def __init__(self, before: Path, after: Path):
        super().__init__()
        self.before, self.after = load(before), load(after)
        self.changes = compare_runs(self.before, self.after)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f" {self.before.directory.name}  →  {self.after.directory.name}: "
                     f"{len(self.changes)} job(s) changed state", id="compare-title")
        yield DataTable(cursor_type="row", id="changes")
        yield Log(id="diff")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#changes", DataTable)
        for column in ("job", "node", "before", "after"):
            table.add_column(column, key=column)
        for change in self.changes:
            table.add_row(change.key, change.node, change.before or "-", change.after or "-", key=change.key)
        table.focus()
        if not self.changes:
            self.query_one("#diff", Log).write_line("no job changed state")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        log = self.query_one("#diff", Log)
        log.clear()
        if key is not None:
            log.write_lines(output_diff(self.before, self.after, key) or [f"{key}: same output in both runs"])


class RunsApp(App):
    """The record directories under ``base``, newest first; returns the directory to open (or None).

    Keys: ``enter`` opens the highlighted run (a replay), ``c`` marks it for comparison, then
    ``c`` on another run compares the two.
    """

    TITLE = "apssh-tui: past runs"
    BINDINGS = [Binding("enter", "open", "Open", id="runs.open", priority=True),
                Binding("c", "compare", "Compare", id="runs.compare"),
                Binding("q", "quit", "Quit", id="runs.quit")]

    def __init__(self, base: str | Path):
        super().__init__()
        self.base = Path(base)
        self.entries = list_runs(self.base)
        self.marked: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f" {len(self.entries)} run(s) in {self.base}", id="runs-title")
        yield DataTable(cursor_type="row", id="runs")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for column in ("date", "scenario", "jobs", "duration", "record"):
            table.add_column(column, key=column)
        for entry in self.entries:
            date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.started)) if entry.started else "?"
            table.add_row(date, entry.scenario, entry.counts_text(), duration_text(entry.duration),
                          entry.directory.name, key=str(entry.directory))
        table.focus()

    def highlighted(self) -> Path | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0 or len(self.screen_stack) > 1:  # none, or a comparison is on screen
            return None
        return Path(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)

    def action_open(self) -> None:
        chosen = self.highlighted()
        if chosen is not None:
            self.exit(chosen)

    def action_compare(self) -> None:
        chosen = self.highlighted()
        if chosen is None:
            return
        if self.marked is None or self.marked == chosen:
            self.marked = chosen
            self.notify(f"{chosen.name} marked: press c on another run to compare")
            return
        before, after = sorted((self.marked, chosen), key=lambda path: self._started(path))
        self.marked = None
        self.push_screen(CompareScreen(before, after))

    def _started(self, path: Path) -> float:
        return next((entry.started or 0.0 for entry in self.entries if entry.directory == path), 0.0)

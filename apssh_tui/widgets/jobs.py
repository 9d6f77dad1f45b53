"""The jobs table: one row per job, ordered by dependency layer; nested schedulers and sibling
groups (the same step on many nodes, ``probe  root@fit[01-12]``) fold and unfold."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from apssh.targets import fold as fold_names
from apssh_tui.core.groups import FOLD_THRESHOLD, SiblingGroup, sibling_groups
from apssh_tui.core.jobfilter import JobFilter
from apssh_tui.core.natural import natural_key
from apssh_tui.core.states import JobRecord, JobState

from .styles import duration_text, job_state_text

COLUMNS = ("state", "job", "node", "label", "duration", "tries", "requires")
#: how the selected job's upstream (what it needs) and downstream (what needs it) rows stand out
RELATED_STYLES = {"up": "bold #5fafff", "down": "bold #d787ff"}
WIDTHS = {"state": 11, "duration": 8, "tries": 5}
GROWING_COLUMNS = ("label", "requires")
#: the durations of running rows advance every this many refreshes (ticks), all together: any
#: changed cell makes DataTable draw every row in view again
DURATION_TICKS = 10


class JobsTable(DataTable):
    """Jobs as people read a scenario: by layer, with state, node, label, time, tries, needs."""

    BINDINGS = [Binding("space", "toggle_fold", "Fold", id="jobs.toggle_fold"),
                Binding("f", "toggle_groups", "Fold siblings", show=False, id="jobs.toggle_groups")]

    class Selected(Message):
        """The highlighted job changed."""

        def __init__(self, key: str | None):
            super().__init__()
            self.key = key

    def __init__(self, model, **kwds):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwds)
        self.model = model
        self.expanded: set[str] = {r.key for r in model if r.is_scheduler}
        self.groups: dict[str, SiblingGroup] = sibling_groups(list(model))
        self.group_of = {member.key: group for group in self.groups.values() for member in group.members}
        self.folded_groups = {key for key, group in self.groups.items() if len(group.members) >= FOLD_THRESHOLD}
        self._dirty: set[str] = set()
        self._pending: set[str] = set()  # rows changed while out of view (see refresh_rows)
        self._ticks = 0
        self._running_keys: set[str] = set()
        self._depths: dict[str, int] = {}
        self.related: dict[str, str] = {}  # job key -> "up" or "down", around the selected row
        self._needed_by: dict[str, list[str]] = {}  # for "waits for": redraw a job when a requirement changes
        for record in model:
            for required in record.requires:
                self._needed_by.setdefault(required, []).append(record.key)
        self.job_filter = JobFilter()

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column, width=WIDTHS.get(column))
        self.rebuild()

    # -- rows
    def row_items(self) -> list[tuple[object, int]]:
        """(record or sibling group, depth) in display order: each level by layer, nested jobs
        under their scheduler, a folded group in place of its members."""
        rows: list[tuple[object, int]] = []
        keep = self.job_filter.keeps if self.job_filter else None

        def walk(parent, depth, into):
            children = self.model.children(parent)
            for record in sorted(children, key=lambda r: (r.layer, natural_key(r.label), natural_key(r.key))):
                group = self.group_of.get(record.key)
                if group is not None and group.key in self.folded_groups:
                    if record is group.members[0] and (keep is None or any(map(keep, group.members))):
                        into.append((group, depth))
                    continue
                if record.is_scheduler:
                    inside: list[tuple[object, int]] = []
                    if record.key in self.expanded:
                        walk(record.key, depth + 1, inside)
                    if keep is None or keep(record) or inside:
                        into.append((record, depth))
                        into.extend(inside)
                elif keep is None or keep(record):
                    into.append((record, depth))
        walk(None, 0, rows)
        self._depths = {item.key: depth for item, depth in rows}
        return rows

    def visible_records(self) -> list[JobRecord]:
        """The jobs shown on a row of their own, in display order."""
        return [item for item, _ in self.row_items() if isinstance(item, JobRecord)]

    def display_order(self) -> list[str]:
        """Every job key in display order, members of folded groups included."""
        keys = []
        for item, _ in self.row_items():
            keys.extend(item.keys if isinstance(item, SiblingGroup) else [item.key])
        return keys

    def cells(self, item) -> list:
        depth = self._depths.get(item.key, 0)
        if isinstance(item, SiblingGroup):
            relation = next((self.related[m.key] for m in item.members if m.key in self.related), None)
            return [job_state_text(item.state), Text("  " * depth + f"▸ {item.label} ×{len(item.members)}",
                                                     style=RELATED_STYLES.get(relation, "")),
                    item.nodes, item.progress(), duration_text(item.duration), str(item.attempts),
                    item.requires]
        fold = ""
        if item.is_scheduler:
            fold = "▾ " if item.key in self.expanded else "▸ "
        requires = fold_names(item.requires)
        if item.state == JobState.WAITING and self.model.waits_for(item.key):
            requires = "waits for " + fold_names(self.model.waits_for(item.key))
        return [job_state_text(item.state), Text("  " * depth + fold + item.key,
                                                 style=RELATED_STYLES.get(self.related.get(item.key), "")),
                item.node, item.label, duration_text(item.duration),
                str(item.attempts), requires]

    def rebuild(self) -> None:
        selected = self.selected_key()
        self._pending = set()
        self.clear()
        for item, _ in self.row_items():
            self.add_row(*self.cells(item), key=item.key)
        if selected in self.groups and selected not in self._depths:
            selected = self.groups[selected].members[0].key  # the group was unfolded
        elif selected in self.group_of and selected not in self._depths:
            selected = self.group_of[selected].key  # its group was folded
        if selected is not None and selected in self._depths:
            self.move_cursor(row=self.get_row_index(selected))
        # the cursor may stay on the same row index while the row changed (a group unfolded)
        self.post_message(self.Selected(self.selected_key()))

    def mark_dirty(self, key: str) -> None:
        self._dirty.add(key)
        self._dirty.update(self._needed_by.get(key, ()))
        # running jobs are redrawn every tick (their duration grows): keep them at hand
        if self.model[key].state == JobState.RUNNING:
            self._running_keys.add(key)
        else:
            self._running_keys.discard(key)

    def refresh_rows(self) -> None:
        """Update the rows that changed and are in view, and (every DURATION_TICKS calls) the
        duration of the running rows in view.

        A tick costs what the view holds, not what the scenario holds: during a storm of 250
        jobs changing state at once, a row out of view is only noted (``_pending``) and updated
        when it scrolls into view or is read (:meth:`get_cell`); only the cells whose value
        changed are written (each write makes DataTable refresh).
        """
        if self.job_filter.states and self._dirty:  # a state filter: rows come and go as states change
            self._dirty = set()
            self._pending = set()
            self.rebuild()
            return

        changed = {self._row_of(key) for key in self._dirty} | self._pending
        self._dirty = set()
        in_view = self.rows_in_view()
        self._pending = {key for key in changed - in_view if key in self._depths}
        for key in changed & in_view:
            self._update_row(key)
        self._ticks += 1
        if self._ticks % DURATION_TICKS:
            return
        ticking = {self._row_of(key) for key in self._running_keys} & in_view - changed
        for key in ticking:
            item = self.groups[key] if key in self.groups else self.model[key]
            self._set_cell(key, "duration", duration_text(item.duration))

    def _row_of(self, key: str) -> str:
        """The row showing job ``key``: its own, or its folded group's."""
        group = self.group_of.get(key)
        return group.key if group is not None and group.key in self.folded_groups else key

    def _update_row(self, key: str) -> None:
        if key not in self._depths:
            return
        item = self.groups[key] if key in self.groups else self.model[key]
        for column, value in zip(COLUMNS, self.cells(item), strict=True):
            self._set_cell(key, column, value)

    def _set_cell(self, key: str, column: str, value) -> None:
        """Write one cell if its value changed."""
        if super().get_cell(key, column) == value:
            return
        # a group's counts and a waiting job's "waits for" grow: widen their column, never cut
        # them; only when wider (a narrower cell makes DataTable measure the whole column)
        grow = column in GROWING_COLUMNS and Text(str(value)).cell_len > self.columns[column].content_width
        self.update_cell(key, column, value, update_width=grow)

    def get_cell(self, row_key, column_key):
        """The cell as shown, brought up to date first if its row changed while out of view."""
        key = getattr(row_key, "value", row_key)
        if key in self._pending:
            self._pending.discard(key)
            self._update_row(key)
        return super().get_cell(row_key, column_key)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._pending and round(old_value) != round(new_value):
            for key in self._pending & self.rows_in_view():  # rows that changed while out of view
                self._pending.discard(key)
                self._update_row(key)

    def rows_in_view(self) -> set[str]:
        """Keys of the rows visible now."""
        top = int(self.scroll_offset.y)
        rows = self.ordered_rows[top: top + max(1, self.size.height)]
        return {row.key.value for row in rows}

    def selected_key(self) -> str | None:
        if self.row_count == 0 or self.cursor_row < 0:
            return None
        try:
            return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:  # an empty or rebuilding table has no key there
            return None

    def selected_keys(self) -> list[str]:
        """The jobs of the highlighted row: one job, or every member of a folded group."""
        key = self.selected_key()
        if key is None:
            return []
        return self.groups[key].keys if key in self.groups else [key]

    def select(self, key: str) -> None:
        """Move the cursor to ``key``, unfolding its schedulers and its sibling group if needed."""
        parent = self.model[key].parent
        group = self.group_of.get(key)
        changed = group is not None and group.key in self.folded_groups
        if changed:
            self.folded_groups.discard(group.key)
        while parent is not None:
            if parent not in self.expanded:
                self.expanded.add(parent)
                changed = True
            parent = self.model[parent].parent
        if changed:
            self.rebuild()
        self.move_cursor(row=self.get_row_index(key))

    def action_toggle_fold(self) -> None:
        """Fold or unfold the nested scheduler or the sibling group of the highlighted row."""
        key = self.selected_key()
        if key is None:
            return
        if key in self.groups:
            self.folded_groups.discard(key)
        elif self.model[key].is_scheduler:
            self.expanded.symmetric_difference_update({key})
        elif key in self.group_of:
            self.folded_groups.add(self.group_of[key].key)
            self.rebuild()
            self.move_cursor(row=self.get_row_index(self.group_of[key].key))
            return
        else:
            return
        self.rebuild()

    def set_filter(self, job_filter: JobFilter) -> None:
        """Show only the jobs ``job_filter`` keeps (an empty filter shows them all)."""
        self.job_filter = job_filter
        self.rebuild()

    def action_toggle_groups(self) -> None:
        """Fold every sibling group, or unfold them all when all are folded."""
        if self.folded_groups == set(self.groups):
            self.folded_groups = set()
        else:
            self.folded_groups = set(self.groups)
        self.rebuild()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.highlight_related()
        self.post_message(self.Selected(event.row_key.value if event.row_key else None))

    def highlight_related(self) -> None:
        """Mark the upstream and downstream jobs of the highlighted row (redrawn at the next tick)."""
        keys = self.selected_keys()
        related = {key: "down" for key in self.model.downstream(keys) if key not in keys} if keys else {}
        related.update({key: "up" for key in self.model.upstream(keys)} if keys else {})
        if related != self.related:
            self._dirty |= set(related) | set(self.related)
            self.related = related

"""The jobs table: one row per job, ordered by dependency layer; nested schedulers and sibling
groups (the same step on many nodes, ``probe  root@fit[01-12]``) fold and unfold.

It is drawn with Textual's Line API: ``render_line`` draws the rows in view straight from the
state model, each row's strip cached until that row changes.  A state change, a running
duration or a cursor move redraws the rows concerned and nothing else, so a key or a tick costs
the same with 10 jobs or 1000 (DataTable drew every row in view again after any cell update).
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from apssh.targets import fold as fold_names
from apssh_tui.core.groups import FOLD_THRESHOLD, SiblingGroup, sibling_groups
from apssh_tui.core.jobfilter import JobFilter
from apssh_tui.core.natural import natural_key
from apssh_tui.core.states import JobRecord, JobState

from .shown import shown
from .styles import DURATION_TICKS, duration_text, job_state_text

COLUMNS = ("state", "job", "node", "label", "duration", "tries", "requires")
#: how the selected job's upstream (what it needs) and downstream (what needs it) rows stand out
RELATED_STYLES = {"up": "bold #5fafff", "down": "bold #d787ff"}
#: fixed widths; the other columns are as wide as their widest cell (and grow, never cut)
WIDTHS = {"state": 11, "duration": 8, "tries": 5}
GROWING_COLUMNS = ("label", "requires")
#: spaces on each side of a cell
CELL_PADDING = 1


class JobsTable(ScrollView, can_focus=True):
    """Jobs as people read a scenario: by layer, with state, node, label, time, tries, needs."""

    DEFAULT_CSS = """
    JobsTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .jobs-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .jobs-table--header { background-tint: $foreground 5%; }
        }
        &:dark > .jobs-table--even-row { background: $surface-darken-1 40%; }
        & > .jobs-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .jobs-table--even-row { background: $surface-lighten-1 50%; }
        & > .jobs-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    COMPONENT_CLASSES = {"jobs-table--header", "jobs-table--even-row", "jobs-table--cursor"}
    BINDINGS = [Binding("space", "toggle_fold", "Fold", id="jobs.toggle_fold"),
                Binding("f", "toggle_groups", "Fold siblings", show=False, id="jobs.toggle_groups"),
                Binding("up", "cursor_up", "Cursor up", show=False, id="jobs.cursor_up"),
                Binding("down", "cursor_down", "Cursor down", show=False, id="jobs.cursor_down"),
                Binding("pageup", "page_up", "Page up", show=False, id="jobs.page_up"),
                Binding("pagedown", "page_down", "Page down", show=False, id="jobs.page_down"),
                Binding("home,ctrl+home", "first_row", "First row", show=False, id="jobs.first_row"),
                Binding("end,ctrl+end", "last_row", "Last row", show=False, id="jobs.last_row")]

    #: the highlighted row's index (-1: no row)
    cursor_row: reactive[int] = reactive(-1, always_update=False, layout=False, repaint=False)

    class Selected(Message):
        """The highlighted job changed."""

        def __init__(self, key: str | None):
            super().__init__()
            self.key = key

    def __init__(self, model, **kwds):
        super().__init__(**kwds)
        self.model = model
        self.expanded: set[str] = {r.key for r in model if r.is_scheduler}
        self.groups: dict[str, SiblingGroup] = sibling_groups(list(model))
        self.group_of = {member.key: group for group in self.groups.values() for member in group.members}
        self.folded_groups = {key for key, group in self.groups.items() if len(group.members) >= FOLD_THRESHOLD}
        self._dirty: set[str] = set()
        self._running_keys: set[str] = set()
        self._depths: dict[str, int] = {}
        self._rows: list[str] = []  # row keys in display order
        self._row_index: dict[str, int] = {}
        self._widths: dict[str, int] = {}
        self._strips: dict[str, tuple[tuple, Strip]] = {}  # row key -> (what it was drawn for, strip)
        self._versions: dict[str, int] = {}  # row key -> bumped when the row must be drawn again
        self._header: Strip | None = None
        self._ticks = 0
        self.redraws = 0  # redraws for rows that changed (none while the table is hidden)
        self._row_styles: dict[str, Style] = {}
        # the drawing (strips, header, styles) of the other focus state, kept for the next
        # switch: a focused table looks different, and tab switches move the focus every time
        self._drawing_focused = False
        self._other_drawing: tuple[dict, Strip | None, dict] = ({}, None, {})
        self._style_keys: dict[bool, tuple] = {}  # focus state -> the styles it was drawn with
        self._styles_to_check = True
        self._frame = ((0, 0), 0)  # scroll offset and width of the frame being drawn
        self.related: dict[str, str] = {}  # job key -> "up" or "down", around the selected row
        self._needed_by: dict[str, list[str]] = {}  # for "waits for": redraw a job when a requirement changes
        for record in model:
            for required in record.requires:
                self._needed_by.setdefault(required, []).append(record.key)
        self.job_filter = JobFilter()

    def on_mount(self) -> None:
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
                    item.nodes, item.progress(), duration_text(item.duration, item.state == JobState.RUNNING),
                    str(item.attempts),
                    item.requires]
        fold = ""
        if item.is_scheduler:
            fold = "▾ " if item.key in self.expanded else "▸ "
        requires = fold_names(item.requires)
        if item.state == JobState.WAITING and self.model.waits_for(item.key):
            requires = "waits for " + fold_names(self.model.waits_for(item.key))
        return [job_state_text(item.state), Text("  " * depth + fold + item.key,
                                                 style=RELATED_STYLES.get(self.related.get(item.key), "")),
                item.node, item.label, duration_text(item.duration, item.state == JobState.RUNNING),
                str(item.attempts), requires]

    def item(self, key: str):
        """The record or sibling group shown on row ``key``."""
        return self.groups[key] if key in self.groups else self.model[key]

    def rebuild(self) -> None:
        """Lay the rows out again (folding, filter); the selection stays on its job if shown."""
        selected = self.selected_key()
        self._rows = [item.key for item, _ in self.row_items()]
        self._row_index = {key: index for index, key in enumerate(self._rows)}
        self._forget_rows()
        self._measure()
        if selected in self.groups and selected not in self._depths:
            selected = self.groups[selected].members[0].key  # the group was unfolded
        elif selected in self.group_of and selected not in self._depths:
            selected = self.group_of[selected].key  # its group was folded
        if selected is not None and selected in self._row_index:
            self.move_cursor(row=self._row_index[selected])
        else:  # the cursor may stay on the same row index while the row changed (a group unfolded)
            self.move_cursor(row=min(max(self.cursor_row, 0), len(self._rows) - 1))
        self.highlight_related()
        self.refresh()
        self.post_message(self.Selected(self.selected_key()))

    def _measure(self) -> None:
        """Column widths: fixed ones, the others as wide as their header and widest cell."""
        widths = {column: WIDTHS.get(column, len(column)) for column in COLUMNS}
        for key in self._rows:
            for column, value in zip(COLUMNS, self.cells(self.item(key)), strict=True):
                if column not in WIDTHS:
                    widths[column] = max(widths[column], _cell_len(value))
        self._set_widths(widths)

    def _set_widths(self, widths: dict[str, int]) -> None:
        self._widths = widths
        self._forget_rows()
        total = sum(width + 2 * CELL_PADDING for width in widths.values())
        self.virtual_size = Size(total, len(self._rows) + 1)  # the header line, then the rows

    # -- updates
    def mark_dirty(self, key: str) -> None:
        self._dirty.add(key)
        self._dirty.update(self._needed_by.get(key, ()))
        # running jobs are redrawn every tick (their duration grows): keep them at hand
        if self.model[key].state == JobState.RUNNING:
            self._running_keys.add(key)
        else:
            self._running_keys.discard(key)

    def refresh_rows(self) -> None:
        """Redraw the rows that changed, and every DURATION_TICKS calls the running rows in view
        (their duration, in whole seconds while running: a frame a second, not ten).

        Rows are drawn from the model when they come into view: a row out of view costs
        nothing here, whatever happened to its job.
        """
        if self.job_filter.states and self._dirty:  # a state filter: rows come and go as states change
            self._dirty = set()
            self.rebuild()
            return
        changed = {self._row_of(key) for key in self._dirty}
        self._dirty = set()
        in_view = self.rows_in_view()
        self._ticks += 1
        if self._ticks % DURATION_TICKS == 0:  # running durations, in whole seconds: all together
            changed |= {self._row_of(key) for key in self._running_keys} & in_view
        redraw = False
        for key in changed:
            if key in self._row_index:
                self._versions[key] = self._versions.get(key, 0) + 1
                redraw = redraw or key in in_view
        if redraw and shown(self):  # hidden, it is drawn again when shown (see the app's _catch_up)
            self.redraws += 1
            self.refresh()

    def _grow(self, values: list) -> None:
        """Widen a growing column (a group's counts, "waits for") to a row's new cell: never cut
        it (the rows in view are drawn again)."""
        wider = {column: _cell_len(value) for column, value in zip(COLUMNS, values, strict=True)
                 if column in GROWING_COLUMNS and _cell_len(value) > self._widths[column]}
        if wider:
            self._set_widths({**self._widths, **wider})
            self.call_later(self.refresh)

    def _row_of(self, key: str) -> str:
        """The row showing job ``key``: its own, or its folded group's."""
        group = self.group_of.get(key)
        return group.key if group is not None and group.key in self.folded_groups else key

    def rows_in_view(self) -> set[str]:
        """Keys of the rows visible now."""
        top = int(self.scroll_offset.y)
        return set(self._rows[top: top + max(1, self.size.height - 1)])

    # -- what DataTable offered and the app and tests use
    @property
    def row_count(self) -> int:
        return len(self._rows)

    def get_row_index(self, key: str) -> int:
        """The index of row ``key``.

        Raises:
            KeyError: no row has that key (a folded or filtered-out job).
        """
        return self._row_index[key]

    def column_widths(self) -> list[tuple[str, int]]:
        """(column, cells it takes on screen, padding included), left to right."""
        return [(column, self._widths[column] + 2 * CELL_PADDING) for column in COLUMNS]

    def get_cell(self, row_key: str, column: str):
        """What row ``row_key`` shows in ``column`` (one of COLUMNS), as drawn now."""
        return self.cells(self.item(row_key))[COLUMNS.index(column)]

    def move_cursor(self, *, row: int) -> None:
        """Highlight row ``row`` (clamped to the rows) and scroll it into view."""
        self.cursor_row = min(max(row, 0), len(self._rows) - 1)
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        row, height = self.cursor_row, max(1, self.size.height - 1)
        if row < 0:
            return
        top = int(self.scroll_offset.y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)

    def watch_cursor_row(self, old: int, new: int) -> None:
        for index in (old, new):
            if 0 <= index < len(self._rows):
                self.refresh_line(index)
        if new != old:
            self.highlight_related()
            self.post_message(self.Selected(self.selected_key()))

    def refresh_line(self, index: int) -> None:
        """Repaint row ``index`` if it is in view."""
        y = index - int(self.scroll_offset.y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def selected_key(self) -> str | None:
        if not self._rows or not 0 <= self.cursor_row < len(self._rows):
            return None
        return self._rows[self.cursor_row]

    # -- keys and mouse
    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self.cursor_row - max(1, self.size.height - 1))

    def action_page_down(self) -> None:
        self.move_cursor(row=self.cursor_row + max(1, self.size.height - 1))

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:  # not the header
            self.move_cursor(row=int(self.scroll_offset.y) + event.y - 1)

    # -- drawing
    def drawn(self, key: str) -> Strip | None:
        """Row ``key`` as drawn last (on screen when in view), or None if it changed since (or
        was never drawn): what the screen shows, for tests and benchmarks."""
        cached = self._strips.get(key)
        if cached is None or cached[0][0] != self._versions.get(key, 0):
            return None
        return cached[1]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles_to_check = True  # at the next frame (the focus changes the styles too)

    def _check_styles(self, focused: bool) -> None:
        """The drawings of both focus states are kept over focus changes, and dropped when the
        styles themselves changed (a theme, the CSS)."""
        styles = (self.rich_style, *(self.get_component_rich_style(f"jobs-table--{part}")
                                     for part in ("header", "even-row", "cursor")))
        if self._style_keys.get(focused, styles) != styles:
            self._forget_drawing()
        self._style_keys[focused] = styles

    def _forget_drawing(self) -> None:
        """Every drawing dropped, of both focus states."""
        self._strips, self._header, self._row_styles = {}, None, {}
        self._other_drawing = ({}, None, {})
        self._style_keys = {}

    def _forget_rows(self) -> None:
        """The rows (and the header) of both focus states are drawn again; styles are kept."""
        self._strips, self._header = {}, None
        self._other_drawing = ({}, None, self._other_drawing[2])

    def _use_drawing_of(self, focused: bool) -> None:
        if focused != self._drawing_focused:
            self._drawing_focused = focused
            current = (self._strips, self._header, self._row_styles)
            self._strips, self._header, self._row_styles = self._other_drawing
            self._other_drawing = current

    def _style_of(self, part: str) -> Style:
        """The Rich style of ``part`` ("base", "header", "even-row", "cursor"), kept until the
        styles or the focus change (working a style out from the CSS is dear, per line)."""
        style = self._row_styles.get(part)
        if style is None:
            style = self.rich_style if part == "base" else self.get_component_rich_style(f"jobs-table--{part}")
            self._row_styles[part] = style
        return style

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = (self.scroll_offset, self.size.width)  # the same for every line of the frame
        focused = self.has_focus
        self._use_drawing_of(focused)
        if self._styles_to_check:
            self._styles_to_check = False
            self._check_styles(focused)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        (scroll_x, scroll_y), width = self._frame
        base = self._style_of("base")
        if y == 0:
            if self._header is None:
                self._header = self._draw([Text(column) for column in COLUMNS], self._style_of("header"))
            strip = self._header
        else:
            index = scroll_y + y - 1
            if index >= len(self._rows):
                return Strip.blank(width, base)
            strip = self._row_strip(index)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _row_strip(self, index: int) -> Strip:
        key = self._rows[index]
        cursor = index == self.cursor_row
        drawn_for = (self._versions.get(key, 0), cursor, index % 2)
        cached = self._strips.get(key)
        if cached is not None and cached[0] == drawn_for:
            return cached[1]
        style = self._style_of("base")
        if index % 2 == 0:
            style += self._style_of("even-row")
        if cursor:
            style += self._style_of("cursor")
        values = self.cells(self.item(key))
        self._grow(values)
        strip = self._draw(values, style)
        self._strips[key] = (drawn_for, strip)
        return strip

    def _draw(self, values: list, style: Style) -> Strip:
        """One line of cells, each padded to its column's width, over ``style``.

        A cell is a string or a Text of one style (what :meth:`cells` makes): one segment each,
        no Rich rendering (a Text with spans of its own goes through Rich).
        """
        segments: list[Segment] = []
        pad = " " * CELL_PADDING
        for column, value in zip(COLUMNS, values, strict=True):
            width = self._widths[column]
            if isinstance(value, Text) and value.spans:
                text = value.copy()
                text.truncate(width, overflow="ellipsis", pad=True)
                own = _style(text.style)
                segments.append(Segment(pad, style))
                segments.extend(Segment.apply_style(text.render(self.app.console, end=""), style + own))
                segments.append(Segment(pad, style))
                continue
            plain, own = (value.plain, _style(value.style)) if isinstance(value, Text) else (str(value), None)
            if cell_len(plain) > width:
                plain = set_cell_size(plain, width - 1) + "…"
            segments.append(Segment(f"{pad}{set_cell_size(plain, width)}{pad}", style + own if own else style))
        return Strip(segments)

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

    def highlight_related(self) -> None:
        """Mark the upstream and downstream jobs of the highlighted row (redrawn at the next tick)."""
        keys = self.selected_keys()
        related = {key: "down" for key in self.model.downstream(keys) if key not in keys} if keys else {}
        related.update({key: "up" for key in self.model.upstream(keys)} if keys else {})
        if related != self.related:
            self._dirty |= set(related) | set(self.related)
            self.related = related


def _style(style) -> Style | None:
    """A Text's style as a Style (None when it has none)."""
    if isinstance(style, Style):
        return style
    return Style.parse(style) if style else None


def _cell_len(value) -> int:
    return value.cell_len if isinstance(value, Text) else Text(str(value)).cell_len

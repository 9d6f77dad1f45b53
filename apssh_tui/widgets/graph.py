"""The Graph view: the scheduler's DAG drawn as boxes in dependency layers, coloured by live state.

Layout (graphviz's dot) runs in a thread; the drawing reads the layout computed by
apssh_tui.core.graph and paints only the visible lines (Textual's Line API).  Sibling groups
and nested schedulers fold as in the jobs table; arrows move the selection, shift+arrows pan,
``z`` switches between boxes and a compact zoom for large graphs.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from apssh_tui.core.graph import (
    Box,
    GraphLayout,
    GraphLayoutError,
    box_text,
    compute_layout,
    graph_spec,
    nearest,
)
from apssh_tui.core.groups import FOLD_THRESHOLD, sibling_groups

from .shown import shown
from .styles import JOB_STYLES

EDGE_STYLE = Style.parse("grey50")
RELATED_EDGE_STYLE = Style.parse("bold yellow")
FRAME_STYLE = Style.parse("grey62")
PLAIN = Style()
_BORDERS = {False: "┌─┐│└┘", True: "┏━┓┃┗┛"}  # normal, selected


class GraphView(ScrollView, can_focus=True):
    """Jobs as boxes in layers, edges between them; folded groups and schedulers as one box."""

    DEFAULT_CSS = """
    GraphView { height: 1fr; }
    """
    BINDINGS = [
        Binding("left", "move('left')", "Previous box", show=False, id="graph.left"),
        Binding("right", "move('right')", "Next box", show=False, id="graph.right"),
        Binding("up", "move('up')", "Layer above", show=False, id="graph.up"),
        Binding("down", "move('down')", "Layer below", show=False, id="graph.down"),
        Binding("shift+left", "pan(-8, 0)", "Pan left", show=False, id="graph.pan_left"),
        Binding("shift+right", "pan(8, 0)", "Pan right", show=False, id="graph.pan_right"),
        Binding("shift+up", "pan(0, -4)", "Pan up", show=False, id="graph.pan_up"),
        Binding("shift+down", "pan(0, 4)", "Pan down", show=False, id="graph.pan_down"),
        Binding("space", "toggle_fold", "Fold/unfold", id="graph.toggle_fold"),
        Binding("z", "zoom", "Zoom", id="graph.zoom"),
    ]

    class Selected(Message):
        """The selected box changed (a job key, a group key ``group:...``, or a scheduler key)."""

        def __init__(self, key: str | None):
            super().__init__()
            self.key = key

    def __init__(self, model, **kwds):
        super().__init__(**kwds)
        self.model = model
        self.groups = sibling_groups(list(model))
        self.group_of = {member.key: group for group in self.groups.values() for member in group.members}
        self.folded_groups = {key for key, group in self.groups.items() if len(group.members) >= FOLD_THRESHOLD}
        self.expanded = {record.key for record in model if record.is_scheduler}
        self.zoom_level = "boxes"
        self.graph_layout: GraphLayout | None = None
        self.selected: str | None = None
        self.notice = "laying out the graph..."
        self._generation = 0
        self._wanted: str | None = None  # a job to select once the layout is there
        self._rows: dict[int, list[str]] = {}
        self._frame_rows: dict[int, list[str]] = {}
        self._cache: dict[tuple[int, int, int], Strip] = {}
        self._related: set[int] | None = None  # edges of the selected box (computed once per repaint)
        self._ports_by_row: dict[int, dict[int, set[int]]] = {}
        self._dirty = False
        self.repaints = 0  # repaints for state changes (none while the graph is hidden)
        self._scroll_pending = False  # the selection moved while hidden: scroll to it when shown

    # -- layout (in a thread)
    def on_mount(self) -> None:
        self.request_layout()

    def request_layout(self) -> None:
        """Lay the graph out again (after a fold or a zoom change), off the UI loop."""
        spec = graph_spec(self.model, self.folded_groups, self.expanded, self.zoom_level, self.groups)
        self._generation += 1
        generation = self._generation

        def work() -> None:
            try:
                layout = compute_layout(spec)
            except GraphLayoutError as exc:
                self.app.call_from_thread(self._failed, generation, str(exc))
                return
            self.app.call_from_thread(self._apply, generation, layout)

        self.run_worker(work, thread=True, group="graph-layout", exit_on_error=False)

    def _failed(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.graph_layout = None
            self.notice = message
            self._repaint()

    def _apply(self, generation: int, layout: GraphLayout) -> None:
        if generation != self._generation:  # a newer layout is on its way
            return
        self.graph_layout = layout
        self._rows = layout.rows_of_boxes()
        self._frame_rows = {}
        for key, rect in layout.frames.items():
            for row in range(rect.row, rect.bottom + 1):
                self._frame_rows.setdefault(row, []).append(key)
        self._ports_by_row = {}
        for (row, col), edges in layout.ports.items():
            self._ports_by_row.setdefault(row, {})[col] = edges
        self.virtual_size = Size(layout.width, layout.height)
        wanted, self._wanted = self._wanted, None
        if wanted is not None:
            self.selected = self.box_of(wanted)
        elif self.selected is not None:
            self.selected = self.box_of(self.selected)
        if self.selected is None and layout.boxes:
            self.selected = layout.reading_order()[0]
        self._repaint()
        self.scroll_to_selected()

    @property
    def ready(self) -> bool:
        """Whether a layout is drawn (the first one takes a moment)."""
        return self.graph_layout is not None

    # -- selection
    def box_of(self, key: str | None) -> str | None:
        """The box or frame that shows job (or group, or scheduler) ``key`` now."""
        if key is None or self.graph_layout is None:
            return None
        if key in self.graph_layout.boxes or key in self.graph_layout.frames:
            return key
        if key in self.groups:  # a group unfolded here: its first member
            key = self.groups[key].members[0].key
        visible = self.graph_layout.spec.visible.get(key)
        return visible if visible in self.graph_layout.boxes or visible in self.graph_layout.frames else None

    def select_job(self, key: str | None) -> None:
        """Select the box of ``key`` (from the jobs table: no Selected message is sent back)."""
        if self.graph_layout is None:
            self._wanted = key
            return
        box = self.box_of(key)
        if box is not None and box != self.selected:
            self.selected = box
            if shown(self):
                self._repaint()
                self.scroll_to_selected()
            else:  # the cursor of the jobs table moves: the hidden graph follows when shown
                self._dirty = self._scroll_pending = True

    def _select(self, key: str | None) -> None:
        if key is None or key == self.selected:
            return
        self.selected = key
        self._repaint()
        self.scroll_to_selected()
        self.post_message(self.Selected(key))

    def selected_keys(self) -> list[str]:
        """The jobs of the selected box (a folded group's or scheduler's all)."""
        if self.selected is None:
            return []
        if self.selected in self.groups:
            return self.groups[self.selected].keys
        return [self.selected]

    def scroll_to_selected(self) -> None:
        if self.graph_layout is None or self.selected is None:
            return
        rect = self.graph_layout.boxes.get(self.selected) or self.graph_layout.frames.get(self.selected)
        if rect is None:
            return
        x, y = self.scroll_offset
        width, height = self.scrollable_content_region.size
        new_x = x if rect.col >= x and rect.right < x + width else max(0, rect.col - 2)
        new_y = y if rect.row >= y and rect.bottom < y + height else max(0, rect.row - 2)
        if (new_x, new_y) != (x, y):
            self.scroll_to(new_x, new_y, animate=False)

    def action_move(self, direction: str) -> None:
        if self.graph_layout is None:
            return
        current = self.selected
        if current in self.graph_layout.frames:  # a frame: go to its first box
            members = self.graph_layout.spec.frames[current].boxes
            inside = [key for key in self.graph_layout.reading_order() if key in members]
            current = inside[0] if inside else None
            if direction in ("down", "right"):
                self._select(current)
                return
        self._select(nearest(self.graph_layout, current, direction) if current else None)

    def action_pan(self, columns: int, rows: int) -> None:
        self.scroll_relative(columns, rows, animate=False)

    def action_toggle_fold(self) -> None:
        """Fold or unfold the selected group or nested scheduler (a frame folds into one box)."""
        key = self.selected
        if key is None:
            return
        if key in self.groups:
            self.folded_groups.discard(key)
            self._wanted = self.groups[key].members[0].key
        elif key in self.model.records and self.model[key].is_scheduler:
            self.expanded.symmetric_difference_update({key})
            self._wanted = key
        elif key in self.group_of:
            self.folded_groups.add(self.group_of[key].key)
            self._wanted = self.group_of[key].key
        elif self.graph_layout is not None and self.graph_layout.spec.boxes[key].frame is not None:
            frame = self.graph_layout.spec.boxes[key].frame  # a job inside a frame: fold the frame
            self.expanded.discard(frame)
            self._wanted = frame
        else:
            return
        self.request_layout()

    def action_zoom(self) -> None:
        """Switch between boxes and the compact zoom (one line per box, short names)."""
        self.zoom_level = "compact" if self.zoom_level == "boxes" else "boxes"
        self._wanted = self.selected
        self.request_layout()

    def on_click(self, event) -> None:
        if self.graph_layout is None:
            return
        x, y = self.scroll_offset
        row, col = event.y + y, event.x + x
        for key in self._rows.get(row, []):
            if self.graph_layout.boxes[key].contains(row, col):
                self._select(key)
                return
        for key in self._frame_rows.get(row, []):
            if self.graph_layout.frames[key].row == row:
                self._select(key)
                return

    # -- live states
    def mark_dirty(self) -> None:
        """Some job changed state: repaint at the next refresh_states()."""
        self._dirty = True

    def refresh_states(self) -> None:
        """Repaint if some job changed state since the last repaint, and the graph is shown
        (hidden, it waits until its tab is shown again: see apssh_tui.widgets.shown)."""
        if self._dirty and shown(self):
            self._dirty = False
            self.repaints += 1
            self._repaint()
            if self._scroll_pending:
                self._scroll_pending = False
                self.scroll_to_selected()

    def _repaint(self) -> None:
        self._cache.clear()
        self._related = None
        self.refresh()

    # -- drawing
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if self.graph_layout is None:
            return Strip([Segment(self.notice if y == 0 else "")]).crop_extend(0, width, None)
        row = y + scroll_y
        key = (row, scroll_x, width)
        strip = self._cache.get(key)
        if strip is None:  # only the part in view is painted: a graph may be thousands of columns wide
            strip = self._cache[key] = self.paint_row(row, scroll_x, scroll_x + width).extend_cell_length(width)
        return strip

    def paint_row(self, row: int, x0: int = 0, x1: int | None = None) -> Strip:
        """Columns ``x0`` to ``x1`` (default: all) of one line of the graph, styled."""
        layout = self.graph_layout
        if layout is None or row >= layout.height:
            return Strip([])
        x1 = layout.width if x1 is None else min(x1, layout.width)
        width = max(0, x1 - x0)
        if width == 0:
            return Strip([])
        chars = [" "] * width
        styles: list[Style] = [PLAIN] * width

        def put(col: int, char: str, style: Style) -> None:
            if x0 <= col < x1:
                chars[col - x0] = char
                styles[col - x0] = style

        if self._related is None:
            self._related = self._related_edges()
        related = self._related
        titles: set[int] = set()
        for key in self._frame_rows.get(row, []):
            rect = layout.frames[key]
            if rect.right >= x0 and rect.col < x1:
                titles |= self._paint_frame(key, row, put)
        for col in range(x0, x1):
            if col in titles:  # a frame's title stays readable where a line crosses it
                continue
            char = layout.char(row, col)
            if char is not None:
                edges = layout.edge_cells.get((row, col), set()) | layout.arrows.get((row, col), set())
                put(col, char, RELATED_EDGE_STYLE if edges & related else EDGE_STYLE)
        for key in self._rows.get(row, []):
            rect = layout.boxes[key]
            if rect.right >= x0 and rect.col < x1:
                self._paint_box(key, row, put, related)
        segments, start = [], 0
        for col in range(1, width + 1):
            if col == width or styles[col] != styles[start]:
                segments.append(Segment("".join(chars[start:col]), styles[start]))
                start = col
        return Strip(segments, width)

    def _related_edges(self) -> set[int]:
        if self.graph_layout is None or self.selected is None:
            return set()
        return {index for index, edge in enumerate(self.graph_layout.spec.edges) if self.selected in edge}

    def _paint_box(self, key: str, row: int, put, related: set[int]) -> None:
        rect = self.graph_layout.boxes[key]
        box: Box = self.graph_layout.spec.boxes[key]
        text, state = box_text(box, self.model, self.groups)
        style = Style.parse(JOB_STYLES[state])
        chosen = key == self.selected
        inner = rect.width - 2
        if rect.height == 1:
            line = ("▶" if chosen else "[") + text[:inner].ljust(inner) + ("◀" if chosen else "]")
            text_style = style + Style(reverse=True) if chosen else style
            for offset, char in enumerate(line):
                put(rect.col + offset, char, text_style)
            return
        tl, horizontal, tr, vertical, bl, br = _BORDERS[chosen]
        border_style = style + Style(bold=True) if chosen else style
        ports = self._ports_by_row.get(row, {}) if row == rect.bottom else {}
        if row == rect.row:
            line = tl + horizontal * inner + tr
        elif row == rect.bottom:
            line = bl + horizontal * inner + br
            line = "".join("┬" if rect.col + offset in ports else char for offset, char in enumerate(line))
        else:
            line = vertical + (" " + text)[:inner].ljust(inner) + vertical
        for offset, char in enumerate(line):
            col = rect.col + offset
            cell_style = border_style
            if rect.row < row < rect.bottom and 0 < offset < rect.width - 1 and chosen:
                cell_style = style + Style(reverse=True)
            if ports.get(col, set()) & related:
                cell_style = RELATED_EDGE_STYLE
            put(col, char, cell_style)

    def _paint_frame(self, key: str, row: int, put) -> set[int]:
        """Paint a frame's part on ``row``; returns the columns of its title (lines do not cross it)."""
        rect = self.graph_layout.frames[key]
        record = self.model[key]
        chosen = key == self.selected
        titles: set[int] = set()
        if row in (rect.row, rect.bottom):
            left, right = ("╭", "╮") if row == rect.row else ("╰", "╯")
            line = left + "┄" * (rect.width - 2) + right
            title = ""
            if row == rect.row:
                title = f" ▾ {self.graph_layout.spec.frames[key].title} {record.state.value} "[: rect.width - 4]
                line = line[:2] + title + line[2 + len(title):]
            title_style = Style.parse(JOB_STYLES[record.state]) + Style(reverse=chosen)
            for offset, char in enumerate(line):
                in_title = row == rect.row and 2 <= offset < 2 + len(title)
                put(rect.col + offset, char, title_style if in_title else FRAME_STYLE)
                if in_title:
                    titles.add(rect.col + offset)
        else:
            for col in (rect.col, rect.right):
                put(col, "┆", FRAME_STYLE)
        return titles

    def screen_text(self) -> list[str]:
        """The lines of the whole graph as plain text (what the view shows, scrolled anywhere)."""
        if self.graph_layout is None:
            return [self.notice]
        return [self.paint_row(row).text for row in range(self.graph_layout.height)]

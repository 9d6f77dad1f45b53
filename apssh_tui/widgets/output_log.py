"""The scrolling body of the output pane, drawn with Textual's Line API.

It draws the lines of an :class:`~apssh_tui.core.views.OutputView` straight from the view's
list (``render_line`` reads line ``scroll_y + y``): new output only extends the list and the
virtual size, nothing is copied or rewritten.  Colours come from each line's kind.  It
follows the newest line until the user scrolls up; ``End`` follows again.
"""

from __future__ import annotations

from functools import lru_cache

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Offset, Region, Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from apssh_tui.core.views import OutputView

#: the colour of each kind of line (see apssh_tui.core.views.ViewLine)
KIND_STYLES = {
    "out": "", "err": "red", "event": "dim", "attempt": "bold yellow", "header": "bold",
    "diff-file": "bold", "diff-hunk": "cyan", "diff-add": "green", "diff-del": "red", "diff-same": "",
    "note": "dim italic",
}
PREFIX_STYLE = "dim"
MATCH_STYLE = "bold reverse"


class OutputLog(ScrollView, can_focus=True):
    """The lines of one output view; follows the end while ``follow`` is true.

    Lines are not selectable with the mouse (no text selection in a Line API widget without
    mouse offsets in every segment, which cost as much as drawing the line); the output is
    saved with the save key, or selected with the terminal's own selection (shift + drag in
    most terminals)."""

    ALLOW_SELECT = False

    DEFAULT_CSS = """
    OutputLog { background: $surface; color: $text; }
    """
    BINDINGS = [Binding("end", "follow", "Follow", show=False, id="output.follow"),
                Binding("f3", "match(1)", "Next match", show=False, id="output.next_match"),
                Binding("shift+f3", "match(-1)", "Previous match", show=False, id="output.previous_match")]

    follow: var[bool] = var(True)

    def __init__(self, **kwds):
        super().__init__(**kwds)
        self.view: OutputView | None = None
        self._auto_scrolling = False
        self._cache: dict[int, Strip] = {}  # line index -> its strip, as painted in _frame
        self._frame = (Offset(0, 0), 0, Style())  # scroll offset, width, style of the last frame
        self.current_match: int | None = None  # the line index of the match found last

    @property
    def lines(self) -> list[str]:
        """The plain text of every line (prefix and text)."""
        return self.view.texts() if self.view else []

    def line_kinds(self) -> list[tuple[str, str]]:
        """(kind, plain text) of every line."""
        view = self.view
        return [(line.kind, line.plain) for line in map(view.display, range(len(view)))] if view else []

    # -- content
    def set_view(self, view: OutputView) -> None:
        """Show ``view`` from its start, following its end."""
        self.view = view
        self.follow = True
        self.current_match = None
        self.reset()

    def action_match(self, direction: int) -> None:
        """Go to the next (1) or previous (-1) line holding a match of the search."""
        view = self.view
        if view is None or not view.filter or not len(view):
            return
        count = len(view)
        start = self.current_match if self.current_match is not None else (
            int(self.scroll_y) - 1 if direction > 0 else int(self.scroll_y) + self.size.height)
        for step in range(1, count + 1):
            index = (start + direction * step) % count
            if view.filter.spans(view.item(index).text):  # store and view lines both have .text
                self.follow = False
                self.current_match = index
                self._cache.clear()
                self.scroll_to(y=max(0, index - self.size.height // 2), animate=False, immediate=True)
                self.refresh()
                return
        self.notify(f"no match of {view.filter.text!r}", severity="warning")

    def reset(self) -> None:
        """The view was rebuilt: draw it again (keeping the place unless following)."""
        self._cache.clear()
        self._resize()
        self.refresh()

    def appended(self, count: int) -> None:
        """``count`` lines were appended to the view."""
        if count <= 0:
            return
        self._resize()
        self.refresh()

    def _set_virtual_size(self, size: Size) -> None:
        """Textual lays the whole screen out again on every change of ``virtual_size``: ten times
        a second while hosts stream, a third of the app's CPU. When the scrollbars stay as they
        are (the view was and stays taller than the pane, at the same width), only the scrollbars
        are updated; otherwise the screen is laid out as usual."""
        old, height = self.virtual_size, self.container_size.height
        if size == old:
            return
        if size.width == old.width and old.height > height and size.height > height:
            self.set_reactive(OutputLog.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size

    def _resize(self) -> None:
        view = self.view
        self._auto_scrolling = True
        try:
            self._set_virtual_size(Size(view.width if view else 0, len(view) if view else 0))
            if self.follow:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
        finally:
            self._auto_scrolling = False

    # -- following
    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._auto_scrolling:
            return
        if new_value < old_value:
            self.follow = False  # the user went back to read: new lines must not move the view
        elif self.is_vertical_scroll_end:
            self.follow = True

    def action_follow(self) -> None:
        """Follow the newest line again."""
        self.follow = True
        self._resize()

    # -- drawing
    def render_lines(self, crop: Region) -> list[Strip]:
        # what every line of the frame needs, worked out once (rich_style walks the ancestors)
        frame = (self.scroll_offset, self.size.width, self.rich_style)
        if frame[0].x != self._frame[0].x or frame[1:] != self._frame[1:]:
            self._cache.clear()  # drawn for another width, horizontal scroll or style
        self._frame = frame
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        (scroll_x, scroll_y), width, rich_style = self._frame
        index = scroll_y + y
        if self.view is None or index >= len(self.view):
            return Strip.blank(width, rich_style)
        strip = self._cache.get(index)
        if strip is None:  # a line is drawn once, then moves up the pane as new lines come
            strip = self._strip(index, rich_style).crop_extend(scroll_x, scroll_x + width, rich_style)
            if len(self._cache) > 2000:
                self._cache.clear()
            self._cache[index] = strip
        return strip

    def _strip(self, index: int, rich_style: Style) -> Strip:
        strip = line_strip(self.view.display(index), self.view.filter, rich_style,
                           underline=index == self.current_match)
        if strip.cell_length > self.view.width:
            # a line read back from the record, longer than any in memory: room to scroll to its end
            self.view.width = strip.cell_length
            self.call_later(self._resize)
        return strip

    def styles_of(self, index: int) -> list[tuple[str, str]]:
        """(style, text) pieces of line ``index``: what the screen paints."""
        return pieces(self.view.display(index), self.view.filter)


def pieces(line, search) -> list[tuple[str, str]]:
    """A view line as (style, text) pieces: the prefix dim (red on stderr), the text in its
    kind's colour, the matches of ``search`` (a Filter) highlighted."""
    result = []
    if line.prefix:
        result.append((PREFIX_STYLE if line.kind != "err" else KIND_STYLES["err"], line.prefix))
    style = KIND_STYLES.get(line.kind, "")
    position = 0
    for start, end in search.spans(line.text):
        if start > position:
            result.append((style, line.text[position:start]))
        result.append((f"{style} {MATCH_STYLE}".strip(), line.text[start:end]))
        position = end
    if position < len(line.text) or not line.text:
        result.append((style, line.text[position:]))
    return result


def line_strip(line, search, base: Style, underline: bool = False) -> Strip:
    """A view line as one strip of segments over the ``base`` style (see :func:`pieces`),
    control characters removed (as Rich text does).  Built straight from the pieces: a fourth
    of the cost of Rich text rendered by the console, for every line the pane shows."""
    segments = []
    width = 0
    for style, piece in pieces(line, search):
        piece = strip_control_codes(piece)
        segments.append(Segment(piece, _style(base, style, underline)))
        width += cell_len(piece)
    return Strip(segments, width)


@lru_cache(maxsize=256)
def _style(base: Style, style: str, underline: bool) -> Style:
    """``style`` (a KIND_STYLES definition) over ``base``."""
    combined = base + Style.parse(style) if style else base
    return combined + Style(underline=True) if underline else combined

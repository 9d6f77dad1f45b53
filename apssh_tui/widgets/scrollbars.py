"""Scrollbars drawn once per look, not once per frame that touches them.

Textual draws a scrollbar again whenever its widget's styles are applied again, which every focus
change does (so every tab switch, twice), whether or not anything about the bar changed; a bar
is about 100 us per line to draw (the jobs table's two bars were a fifth of a tab switch).
:func:`keep_scrollbar_drawings` makes every ScrollBar keep its last drawing and reuse it while
everything the drawing depends on is the same: its size and crop, the window and thumb
position, the hover and drag state, its colours as :meth:`ScrollBar.render` works them out, and
the colours it inherits.

Textual 8.2.8 (pinned): this replaces ``ScrollBar.render_lines``; an upgrade must check that
``ScrollBar.render`` still depends on nothing else.
"""

from __future__ import annotations

from textual.geometry import Region
from textual.scrollbar import ScrollBar
from textual.strip import Strip

_original_render_lines = ScrollBar.render_lines


def _look(bar: ScrollBar, crop: Region) -> tuple:
    """Everything a drawing of ``bar`` depends on (what ScrollBar.render reads)."""
    styles = bar.parent.styles
    if bar.grabbed:
        colors = (styles.scrollbar_background_active, styles.scrollbar_color_active)
    elif bar.mouse_over:
        colors = (styles.scrollbar_background_hover, styles.scrollbar_color_hover)
    else:
        colors = (styles.scrollbar_background, styles.scrollbar_color)
    # the parent's colours (under a translucent bar) and the bar's own style (its blank cells)
    return (bar.size, crop, bar.vertical, bar.thickness, bar.window_size, bar.window_virtual_size,
            bar.position, colors, bar.parent.background_colors, bar.rich_style,
            bar.screen.styles.scrollbar_color.a == 0)


def _render_lines(self: ScrollBar, crop: Region) -> list[Strip]:
    if self.parent is None:
        return _original_render_lines(self, crop)
    look = _look(self, crop)
    kept = getattr(self, "_apssh_drawing", None)
    if kept is not None and kept[0] == look:
        return kept[1]
    lines = _original_render_lines(self, crop)
    self._apssh_drawing = (look, lines)
    return lines


def keep_scrollbar_drawings() -> None:
    """Every ScrollBar of the process reuses its last drawing while its look is the same."""
    ScrollBar.render_lines = _render_lines

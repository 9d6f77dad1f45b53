"""The output pane draws each line as one strip built straight from its pieces (prefix, text,
search matches); it must paint what Rich's own text rendering paints, for any line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.style import Style
from rich.text import Text

from apssh_tui.core.views import Filter, ViewLine
from apssh_tui.widgets.output_log import KIND_STYLES, line_strip, pieces

CONSOLE = Console(width=200)
BASE = Style.parse("#e0e0e0 on #1e1e1e")


def by_character(segments) -> list[tuple[str, Style]]:
    return [(character, segment.style) for segment in segments for character in segment.text]


def rich_painted(line: ViewLine, search: Filter, underline: bool) -> tuple[list[tuple[str, Style]], int]:
    """What Rich paints for the line (the way the pane drew it before strips), over the base
    style (which Rich leaves out of a text without any style of its own)."""
    text = Text(no_wrap=True, end="", style=BASE)
    for style, piece in pieces(line, search):
        text.append(piece, style=style or None)
    if underline:
        text.stylize("underline")
    return [(character, BASE + style if style else BASE)
            for character, style in by_character(text.render(CONSOLE))], text.cell_len


# any text, control characters, wide and combining characters included
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(KIND_STYLES)), text=texts, prefix=st.sampled_from(["", "node1 ", "job@host: "]),
       search=st.sampled_from(["", "a", "/[0-9]+/", "é"]), underline=st.booleans())
def test_a_line_strip_paints_what_rich_paints(kind, text, prefix, search, underline):
    line = ViewLine(kind, text, prefix)
    found = Filter.parse(search, hide=False)
    strip = line_strip(line, found, BASE, underline=underline)
    painted, width = rich_painted(line, found, underline)
    assert by_character(strip) == painted
    assert strip.cell_length == width

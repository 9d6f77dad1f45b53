"""The tab bar: one line of tab titles, the active one highlighted; a click chooses a tab.

One widget that draws a line of text, where Textual's TabbedContent is a dozen widgets (a tab
per title, an underline, three containers) and two more container layers over every pane.
Each of those is drawn again, whole, on every frame that touches its region: a tab switch
drew about 450 lines in three frames.  The panes themselves are plain containers that the app
shows and hides (see ``ApsshTui.action_tab``).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.containers import Container
from textual.message import Message
from textual.widget import Widget

#: columns around each title
PADDING = 2


class TabBar(Widget):
    """Titles of the tabs in order; :attr:`active` is the id of the one shown."""

    DEFAULT_CSS = """
    TabBar {
        height: 1;
        background: $panel;
        color: $foreground-muted;
        & > .tab-bar--active { background: $surface; color: $foreground; text-style: bold; }
    }
    """
    COMPONENT_CLASSES = {"tab-bar--active"}

    class Chosen(Message):
        """A tab was clicked."""

        def __init__(self, tab: str):
            super().__init__()
            self.tab = tab

    def __init__(self, tabs: list[tuple[str, str]], active: str, **kwds):
        """``tabs``: (id, title) pairs in order; ``active``: the id of the tab shown first."""
        super().__init__(**kwds)
        self.tabs = list(tabs)
        self._active = active

    @property
    def active(self) -> str:
        return self._active

    @active.setter
    def active(self, tab: str) -> None:
        if tab not in dict(self.tabs):
            raise ValueError(f"no tab {tab!r}; the tabs are {', '.join(tab for tab, _ in self.tabs)}")
        if tab != self._active:
            self._active = tab
            self.refresh()

    def _cells(self) -> list[tuple[str, str]]:
        """(tab id, its title with the padding around it), in order: what the line shows."""
        pad = " " * PADDING
        return [(tab, f"{pad}{title}{pad}") for tab, title in self.tabs]

    def render(self) -> Text:
        active_style = self.get_component_rich_style("tab-bar--active")
        line = Text(no_wrap=True, overflow="ellipsis")
        for tab, cell in self._cells():
            line.append(cell, style=active_style if tab == self._active else None)
        return line

    def on_click(self, event: events.Click) -> None:
        end = 0  # of the title being looked at
        for tab, cell in self._cells():
            end += len(cell)
            if 0 <= event.x < end:
                self.post_message(self.Chosen(tab))
                return


class Pane(Container):
    """The content of one tab: shown when its tab is the active one (the app sets ``display``)."""

    DEFAULT_CSS = """
    Pane { height: auto; }
    """

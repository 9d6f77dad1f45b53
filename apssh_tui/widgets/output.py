"""Remote output: one job, one host, all hosts interleaved, or gathered by identical output;
with a search that keeps the matching lines and highlights the matches.

The lines come from an :class:`~apssh_tui.core.views.OutputView` of the core's OutputStore,
brought up to date on the app's timer; an :class:`OutputLog` draws them.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from apssh_tui.core.groups import siblings_of
from apssh_tui.core.views import MODES, Filter, OutputView

from .output_log import OutputLog
from .shown import shown

__all__ = ["MODES", "OutputPane"]


class OutputPane(Vertical):
    """The output of the selected job, of a host, of every host, or gathered; ``/`` searches."""

    DEFAULT_CSS = """
    OutputPane > #output-title { height: 1; background: $boost; }
    OutputPane > OutputLog { height: 1fr; }
    OutputPane > Input { display: none; }
    OutputPane > Input.visible { display: block; }
    """
    BINDINGS = [Binding("escape", "close_search", "Close search", show=False, id="output.close_search")]

    def __init__(self, session, **kwds):
        super().__init__(**kwds)
        self.session = session
        self.view: OutputView | None = None
        self.job: str | None = None
        self.host: str | None = None
        self.search = Filter()
        self._hide = True  # what the search field being typed in will do (see open_search)
        self.polls = 0  # the updates of the view done (none while the pane is hidden)

    def compose(self) -> ComposeResult:
        yield Static("", id="output-title")
        yield OutputLog(id="output-log")
        yield Input(placeholder="search output: text or /regex/ (enter applies, empty clears, F3 next match)",
                    id="output-search")

    @property
    def log_widget(self) -> OutputLog:
        return self.query_one("#output-log", OutputLog)

    @property
    def mode(self) -> str:
        return self.view.mode if self.view else "all"

    @property
    def search_text(self) -> str:
        return self.search.text

    def show(self, mode: str, job: str | None = None, host: str | None = None) -> None:
        """Switch view: ``job`` (one job's hosts), ``host`` (every job of one host),
        ``all`` (interleaved) or ``gathered`` (``job`` and its sibling jobs, the folded row)."""
        if job is not None:
            self.job = job
        if host is not None:
            self.host = host
        keys = None
        if mode == "gathered" and self.job is not None:
            keys = siblings_of(list(self.session.model), self.job)
        self.view = OutputView(self.session.store, self.session.model, mode, job=self.job, host=self.host,
                               keys=keys, filter=self.search)
        self.query_one("#output-title", Static).update(self.view.title())
        self.log_widget.set_view(self.view)

    def reload(self) -> None:
        """Show the current view again, from the store."""
        self.show(self.mode)

    def title(self) -> str:
        return self.view.title() if self.view else ""

    @property
    def shown(self) -> bool:
        """Whether the pane is displayed (its tab is the active one)."""
        return shown(self)

    def poll(self) -> None:
        """Bring the view up to date (called on the app's timer, and when the pane is shown).

        A hidden pane does nothing: the new lines wait in the store, and the view catches up
        with them when the pane is shown again (rebuilt from the store when more arrived than
        memory keeps), so a hidden pane costs nothing per line."""
        if self.shown:
            self.catch_up()

    def catch_up(self) -> None:
        """Bring the view up to date with the store, shown or not."""
        if self.view is None or not self.query("#output-log"):  # none: the app is being taken down
            return
        self.polls += 1
        added = self.view.update()
        if added < 0:
            self.log_widget.reset()
        elif added:
            self.log_widget.appended(added)

    def save(self, path):
        """Write the view on screen (with its search) to ``path``."""
        self.catch_up()
        return self.view.save(path)

    # -- search
    def open_search(self, hide: bool = True) -> None:
        """Ask for a search: ``hide`` keeps only the matching lines; otherwise matches are
        highlighted among all lines (F3 / shift+F3 go from one to the next)."""
        self._hide = hide
        search = self.query_one("#output-search", Input)
        search.add_class("visible")
        search.focus()

    def action_close_search(self) -> None:
        """Leave the search field without changing the search."""
        search = self.query_one("#output-search", Input)
        if search.has_class("visible"):
            search.remove_class("visible")
            self.log_widget.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            self.search = Filter.parse(event.value, hide=self._hide)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        event.input.remove_class("visible")
        self.log_widget.focus()
        self.reload()

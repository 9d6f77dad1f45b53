"""F1: every key binding and what it does (from the bindings themselves, so never stale)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen):
    """Lists the app's key bindings with their ids (usable in a keymap)."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close help", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; height: 80%; border: round $accent; background: $panel; }
    """

    def __init__(self, bindings: list[Binding]):
        super().__init__()
        self.bindings_text = "\n".join(
            f"{binding.key:<12} {binding.description:<32} id={binding.id}" for binding in bindings)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("[b]apssh-tui keys[/b]  (escape closes; remap with ids)\n\n" + self.bindings_text)

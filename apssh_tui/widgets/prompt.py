"""A one-line question under the jobs table: the jobs filter, or the host to jump to."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class JobsPrompt(Input):
    """Hidden until :meth:`ask`; Enter answers (posts :class:`Answered`), Escape gives up."""

    DEFAULT_CSS = """
    JobsPrompt { display: none; }
    JobsPrompt.visible { display: block; }
    """
    BINDINGS = [Binding("escape", "give_up", "Cancel", show=False, id="prompt.cancel")]

    class Answered(Message):
        """The user answered ``purpose`` with ``value``."""

        def __init__(self, purpose: str, value: str):
            super().__init__()
            self.purpose = purpose
            self.value = value

    def __init__(self, **kwds):
        super().__init__(**kwds)
        self.purpose = ""

    def ask(self, purpose: str, placeholder: str, value: str = "") -> None:
        self.purpose = purpose
        self.placeholder = placeholder
        self.value = value
        self.add_class("visible")
        self.focus()

    def close(self) -> None:
        self.remove_class("visible")

    def action_give_up(self) -> None:
        self.close()
        self.post_message(self.Answered(self.purpose, None))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Answered(self.purpose, event.value))

"""The services a scenario uses, on their nodes, with start / stop / status / journal actions."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable


class ServicesTable(DataTable):
    """One row per (service, node); keys act on the highlighted one."""

    BINDINGS = [
        Binding("u", "service('start')", "Start service", id="services.start"),
        Binding("d", "service('stop')", "Stop service", id="services.stop"),
        Binding("t", "service('status')", "Service status", id="services.status"),
        Binding("j", "service('journal')", "Service journal", id="services.journal"),
    ]

    class Action(Message):
        """The user asked for ``action`` on service ``key``."""

        def __init__(self, key: str, action: str):
            super().__init__()
            self.key = key
            self.action = action

    def __init__(self, services: dict, **kwds):
        super().__init__(cursor_type="row", **kwds)
        self.services = services
        self.last: dict[str, str] = {}

    def on_mount(self) -> None:
        for column, width in (("service", 16), ("node", 24), ("command", 40), ("last action", 24)):
            self.add_column(column, key=column, width=width)
        for key, use in self.services.items():
            self.add_row(use.service.service_id, use.node_name, str(use.service.command), "", key=key)

    def set_last(self, key: str, text: str) -> None:
        self.update_cell(key, "last action", text)

    def action_service(self, action: str) -> None:
        if self.row_count == 0:
            return
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        self.post_message(self.Action(key, action))

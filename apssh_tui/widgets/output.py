"""Remote output: one job, all hosts interleaved, or gathered by identical output; with search.

Lines are pulled from the core's OutputStore on a timer and written in batches.
"""

from __future__ import annotations

import re

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Log, Static

from apssh_tui.core.gather import gather
from apssh_tui.core.output import EVENT_NAME, STDERR_NAME, Entry

MODES = ("job", "host", "all", "gathered")
MAX_LINES = 10000


# "host[ [job]]! text" is stderr, "host[ [job]]* text" an event (see entry_line)
_STREAM_TAG = re.compile(r"^\S+(?: \[[^\]]*\])?([!*]) ")


class OutputHighlighter(Highlighter):
    """Colours at render time (visible lines only): stderr red, events dim, diff lines, headers."""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        match = _STREAM_TAG.match(plain)
        if match:
            text.stylize("red" if match.group(1) == "!" else "dim")
        elif plain.startswith("----------------"):
            text.stylize("bold")
        elif plain.startswith("+") and not plain.startswith("+++"):
            text.stylize("green")
        elif plain.startswith("-") and not plain.startswith("---"):
            text.stylize("red")


def entry_line(entry: Entry, with_job: bool) -> str:
    tag = "!" if entry.stream == STDERR_NAME else "*" if entry.stream == EVENT_NAME else ":"
    job = f" [{entry.job}]" if with_job else ""
    return f"{entry.host}{job}{tag} {entry.text}"


class OutputPane(Vertical):
    """The output of the selected job, of every host, or gathered; ``/`` searches."""

    DEFAULT_CSS = """
    OutputPane > #output-title { height: 1; background: $boost; }
    OutputPane > Log { height: 1fr; }
    OutputPane > Input { display: none; }
    OutputPane > Input.visible { display: block; }
    """

    def __init__(self, session, **kwds):
        super().__init__(**kwds)
        self.session = session
        self.mode = "all"
        self.job: str | None = None
        self.host: str | None = None
        self.search_text = ""
        self._cursor = 0
        self._gathered_stamp = None

    def compose(self) -> ComposeResult:
        yield Static("", id="output-title")
        log = Log(max_lines=MAX_LINES, id="output-log", highlight=True)
        log.highlighter = OutputHighlighter()
        yield log
        yield Input(placeholder="search output (enter to apply, empty to clear)", id="output-search")

    @property
    def log_widget(self) -> Log:
        return self.query_one("#output-log", Log)

    def show(self, mode: str, job: str | None = None, host: str | None = None) -> None:
        """Switch view: ``job`` (one job's hosts), ``host`` (every job of one host),
        ``all`` (interleaved) or ``gathered``."""
        self.mode = mode
        if job is not None:
            self.job = job
        if host is not None:
            self.host = host
        self.reload()

    def title(self) -> str:
        what = {"job": f"job {self.job}", "host": f"host {self.host}", "all": "all hosts, interleaved",
                "gathered": f"gathered: {self.job} and the same commands on other nodes"}[self.mode]
        search = f"  search: {self.search_text!r}" if self.search_text else ""
        return f" output - {what}{search}"

    def _matches(self, entry: Entry) -> bool:
        if self.mode == "job" and entry.job != self.job:
            return False
        if self.mode == "host" and entry.host != self.host:
            return False
        return not self.search_text or self.search_text.lower() in entry.text.lower()

    def reload(self) -> None:
        self.query_one("#output-title", Static).update(self.title())
        log = self.log_widget
        log.clear()
        store = self.session.store
        self._cursor = store.seq
        if self.mode == "gathered":
            self._gathered_stamp = None
            self.refresh_gathered()
            return
        log.write_lines([entry_line(e, self.mode in ("all", "host")) for e in store.interleaved if self._matches(e)])

    def poll(self) -> None:
        """Append what arrived since the last poll (one batch per tick)."""
        store = self.session.store
        if self.mode == "gathered":
            self.refresh_gathered()
            return
        if store.seq == self._cursor:
            return
        fresh = store.since(self._cursor)
        self._cursor = store.seq
        lines = [entry_line(e, self.mode in ("all", "host")) for e in fresh if self._matches(e)]
        if lines:
            self.log_widget.write_lines(lines)

    def siblings(self):
        """Jobs running the same commands as the selected one, on other nodes."""
        model = self.session.model
        if self.job is None or self.job not in model.records:
            return []
        chosen = model[self.job]
        signature = _commands_signature(chosen.job, chosen.label)
        return [r for r in model if r.parent == chosen.parent and not r.is_scheduler
                and _commands_signature(r.job, r.label) == signature]

    def refresh_gathered(self) -> None:
        store = self.session.store
        siblings = self.siblings()
        stamp = (store.seq, tuple((r.key, r.state) for r in siblings))
        if stamp == self._gathered_stamp:
            return
        self._gathered_stamp = stamp
        outputs = {}
        for record in siblings:
            for host in store.hosts(record.key) or [record.node or record.key]:
                lines = [text for stream, text in store.lines(record.key, host) if stream != EVENT_NAME]
                exit_code = record.result if record.result is not None else record.state.value
                outputs[host] = (store.digest(record.key, host), lines, exit_code)
        lines = []
        for index, group in enumerate(gather(outputs)):
            lines.append(f"---------------- {group.header}")
            shown = group.lines if index == 0 else (group.diff or group.lines)
            if self.search_text:
                shown = [line for line in shown if self.search_text.lower() in line.lower()]
            lines.extend(shown)
        log = self.log_widget
        log.clear()
        log.write_lines(lines or ["(no output yet)"])

    # -- search
    def open_search(self) -> None:
        search = self.query_one("#output-search", Input)
        search.add_class("visible")
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search_text = event.value.strip()
        event.input.remove_class("visible")
        self.reload()


def _commands_signature(job, label: str = "") -> str:
    if job is None:  # a replayed record has no job object: jobs with the same label go together
        return f"label:{label}"
    commands = getattr(job, "commands", None)
    if commands is None:
        return f"{type(job).__name__}:{job.label}"
    return "\n".join(command.label_line() for command in commands)

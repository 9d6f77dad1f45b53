"""The selected job: what it needs, what needs it, and how it went."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from apssh_tui.core.failures import failure_cause, last_stderr_line
from apssh_tui.core.states import PROBLEM_STATES, JobState

from .shown import shown
from .styles import DURATION_TICKS, duration_text, job_state_text

#: lines of the pane used when it has no size yet (before the first layout)
DEFAULT_ROOM = 50
# the order of a folded group's members when they do not all fit: the ones worth a look first
_WORTH_A_LOOK = {**{state: 0 for state in PROBLEM_STATES}, JobState.RUNNING: 1}


class JobDetails(Static):
    """Predecessors, successors, state, attempts, result and error of one job.

    The pane does not scroll: lists longer than the pane (the members of a 250-node group,
    the 250 jobs that need a setup job) are cut to what fits, with a ``… and N more`` line, so
    redrawing it costs the same whatever the scenario's size.  It is redrawn only when what it
    shows changed (see :meth:`changed`), or once a second for a running job (its duration).
    """

    DEFAULT_CSS = "JobDetails { height: 1fr; }"

    def __init__(self, model, store=None, **kwds):
        super().__init__("", **kwds)
        self.model = model
        self.store = store  # an OutputStore: a failed job's last stderr line shows by its exit code
        self.key: str | None = None
        self.group = None
        self._stale = True
        self._shown: Text | str | None = None
        self._ticks = 0

    def show(self, key: str | None, group=None) -> None:
        """Details of job ``key``, or of a sibling ``group`` (its row key is ``key``)."""
        self.key = key
        self.group = group
        self._stale = True
        self.refresh_details()

    def redraw(self) -> None:
        """Draw the details again (the pane is shown again after a hidden while)."""
        self._stale = True
        self.refresh_details()

    def on_show(self) -> None:
        """Shown again (its tab, or a terminal wide enough again): what changed meanwhile."""
        self.redraw()

    def changed(self, key: str) -> None:
        """Job ``key`` changed: redraw at the next refresh if the pane shows it (the job, a member
        of the group, or a job it needs or that needs it)."""
        if self._stale:
            return
        if self.group is not None:
            self._stale = key in self.group.member_keys
        elif self.key is not None and self.key in self.model.records:
            self._stale = key == self.key or key in self.model[self.key].requires or \
                self.key in self.model[key].requires

    def room(self) -> int:
        """Lines the pane shows."""
        return self.size.height or DEFAULT_ROOM

    def refresh_details(self) -> None:
        """Redraw if what is shown changed (a running job's duration changes all the time); not
        while the pane is hidden (see apssh_tui.widgets.shown and :meth:`redraw`)."""
        if not shown(self):
            return
        record = self.model.records.get(self.key) if self.group is None and self.key is not None else None
        self._ticks += 1
        running = record is not None and record.state == JobState.RUNNING
        if not self._stale and not (running and self._ticks % DURATION_TICKS == 0):
            return
        self._stale = False
        if self.group is not None:
            text = self.group_text(self.group)
        elif record is None:
            text = "no job selected"
        else:
            text = self.job_text(record)
        if text != self._shown:
            self._shown = text
            # the pane's size does not depend on its text (height 1fr): no layout needed
            self.update(text, layout=False)

    def job_text(self, record) -> Text:
        """The details of one job."""
        text = Text()
        text.append(f"{record.key}: {record.label}\n", style="bold")
        if record.node:
            text.append(f"node      {record.node}\n")
        text.append("state     ").append_text(job_state_text(record.state)).append("\n")
        text.append(f"tries     {record.attempts}\n")
        if record.duration is not None:
            text.append(f"duration  {duration_text(record.duration, record.state == JobState.RUNNING)}\n")
        stderr = last_stderr_line(self.store, record.key, self.store.hosts(record.key)) \
            if self.store is not None and record.state in PROBLEM_STATES else ""
        if record.result is not None:
            text.append(f"result    {record.result}")
            text.append(f"  {stderr}\n" if stderr else "\n", style="red" if stderr else "")
        if record.state in PROBLEM_STATES and not (stderr and record.result is not None):
            text.append(f"cause     {failure_cause(record, self.store)}\n", style="red")
        elif record.error:
            text.append(f"error     {record.error}\n", style="red")
        waits = self.waiting_for(record)
        if waits:
            text.append(f"waits for {waits}\n", style="yellow")
        needs = self.model.predecessors(record.key) or []
        needed_by = self.model.successors(record.key) or []
        # both lists share the lines left: each gets at least half of them
        left = max(2, self.room() - len(text.plain.splitlines()) - 3)
        needs_room = max(left // 2, left - len(needed_by))
        text.append("\nneeds\n", style="bold")
        self._append_jobs(text, "  ← ", needs, needs_room)
        text.append("needed by\n", style="bold")
        self._append_jobs(text, "  → ", needed_by, left - min(len(needs), needs_room))
        return text

    @staticmethod
    def _append_jobs(text: Text, arrow: str, records: list, room: int) -> None:
        """One line per job, at most ``room`` lines (the last one says how many are left out)."""
        shown = records if len(records) <= room else records[:max(0, room - 1)]
        for other in shown:
            text.append(arrow).append_text(job_state_text(other.state)).append(f"  {other.key} {other.label}\n")
        if len(shown) < len(records):
            text.append(f"  … and {len(records) - len(shown)} more\n", style="dim")

    def waiting_for(self, record) -> str:
        """What a waiting job waits for: its unfinished requirements, or a free slot."""
        if record.state != JobState.WAITING:
            return ""
        pending = [other for other in self.model.predecessors(record.key) if other.state != JobState.DONE]
        if pending:
            return ", ".join(f"{other.key} ({other.state.value})" for other in pending)
        return "a free slot (jobs_window) or its scheduler"

    def group_text(self, group) -> Text:
        text = Text()
        text.append(f"{group.label} on {len(group.members)} nodes\n", style="bold")
        text.append(f"nodes     {group.nodes}\n")
        text.append("state     ").append_text(job_state_text(group.state)).append(f"  {group.progress()}\n")
        if group.requires:
            text.append(f"needs     {group.requires}\n")
        text.append("\njobs (space unfolds)\n", style="bold")
        members = group.members
        room = max(2, self.room() - len(text.plain.splitlines()))
        if len(members) > room:  # what fits: failed ones first, then running ones, each in order
            members = sorted(members, key=lambda member: _WORTH_A_LOOK.get(member.state, 2))[:room - 1]
        for member in members:
            text.append("  ").append_text(job_state_text(member.state)).append(f"  {member.key} {member.node}")
            text.append(f"  {member.error}\n" if member.error else "\n", style="red" if member.error else "")
        if len(members) < len(group.members):
            text.append(f"  … and {len(group.members) - len(members)} more\n", style="dim")
        return text

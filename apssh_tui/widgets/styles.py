"""Colours of job and connection states, shared by the widgets (Rich styles)."""

from rich.text import Text

from apssh_tui.core.connections import ConnectionState
from apssh_tui.core.states import JobState

JOB_STYLES = {
    JobState.IDLE: "dim",
    JobState.WAITING: "yellow",
    JobState.RUNNING: "bold cyan",
    JobState.DONE: "green",
    JobState.FAILED: "bold red",
    JobState.UNREACHABLE: "bold magenta",
    JobState.TIMED_OUT: "red",
    JobState.ABORTED: "red",
    JobState.SKIPPED: "yellow dim",
}

CONNECTION_STYLES = {
    ConnectionState.NOT_CONNECTED: "dim",
    ConnectionState.CONNECTING: "yellow",
    ConnectionState.CONNECTED: "green",
    ConnectionState.SFTP_OPEN: "bold green",
    ConnectionState.FAILED: "bold red",
    ConnectionState.CLOSED: "dim",
}


def job_state_text(state: JobState) -> Text:
    return Text(state.value, style=JOB_STYLES[state])


#: the durations of running jobs advance on screen every this many refreshes (ticks of 0.1 s)
DURATION_TICKS = 10


def duration_text(seconds: float | None, running: bool = False) -> str:
    """``12.3s``, ``2m05s``; while running (the screen updates it once a second) ``12s``."""
    if seconds is None:
        return ""
    if seconds < 60 and running:
        return f"{int(seconds)}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"

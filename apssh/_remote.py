"""Run one remote command on an open connection: stream its lines, stop it on abort.

An aborted command is stopped through its channel first (TERM, then KILL); sshd refuses
channel signals for root logins ("session signalling requires privilege separation") and
only ever signals the session leader, so a node may also mark its commands with an
environment variable (``abort_marker``), by which a second session finds and kills them.
A stop that fails is reported to the formatter, never swallowed.
"""

from __future__ import annotations

import asyncio
import secrets
import signal as signal_module

import asyncssh

from ._lines import LineSplitter, block_lines
from .formatters import STDERR, STDOUT, Formatter

# how long a remote command gets between TERM and KILL when it is aborted
ABORT_GRACE_SECONDS = 1.0
# environment variable marking the processes of one remote run (abort_marker)
RUN_MARKER_VARIABLE = "APSSH_RUN_ID"
# how long the remote kill script of an aborted command may take
KILL_SCRIPT_SECONDS = 10.0


class ExitCode(int):
    """An exit status that may come from a signal: then ``signal`` is its name (e.g. 'TERM').

    A command killed by a signal gets ``128 + signal number``, as in a shell.
    """

    signal: str | None = None

    def __new__(cls, value: int, signal: str | None = None):
        code = super().__new__(cls, value)
        code.signal = signal
        return code

    def __repr__(self) -> str:
        return f"ExitCode({int(self)}, signal={self.signal!r})" if self.signal else str(int(self))


def signal_code(name: str) -> int:
    """``128 + N`` for signal ``name`` (e.g. 'TERM'), 255 for an unknown name."""
    number = getattr(signal_module, f"SIG{name}", None)
    return 128 + int(number) if number is not None else 255


class CommandSession(asyncssh.SSHClientSession):
    """Receives a remote command's output and hands whole lines to a formatter.

    A formatter with ``receives_bytes = True`` also gets every raw chunk, as received,
    through ``bytes_received(data, datatype, hostname, username)``.
    """

    def __init__(self, hostname: str, username: str, formatter: Formatter, stdout_sink: list | None):
        self._hostname = hostname
        self._username = username
        self._formatter = formatter
        self._stdout_sink = stdout_sink
        self._raw = bool(getattr(formatter, "receives_bytes", False))
        # the formatter may take whole blocks of lines as bytes (see Formatter.write_block)
        self._blocks = type(formatter).write_block is not Formatter.write_block
        self._splitters = {STDOUT: LineSplitter(), STDERR: LineSplitter()}
        self.lost: Exception | None = None

    def _dispatch(self, block: bytes, datatype) -> None:
        if not block:
            return
        sink = self._stdout_sink if datatype == STDOUT else None
        if sink is None and self._blocks and self._formatter.write_block(
                block, datatype, self._hostname, self._username):
            return
        lines = block_lines(block)
        if sink is not None:
            sink.extend(lines)
        self._formatter.lines(lines, datatype, self._hostname, self._username)

    def data_received(self, data, datatype) -> None:
        datatype = STDERR if datatype == STDERR else STDOUT
        if self._raw:
            self._formatter.bytes_received(data, datatype, self._hostname, self._username)
        self._dispatch(self._splitters[datatype].feed_block(data), datatype)

    def flush(self) -> None:
        """Deliver the last partial lines of both streams."""
        for datatype, splitter in self._splitters.items():
            self._dispatch(splitter.flush_block(), datatype)

    def connection_lost(self, exc) -> None:
        self.lost = exc
        self.flush()


def marked(command: str, run_id: str) -> str:
    """``command`` preceded by the marker export (POSIX shells only)."""
    return f"export {RUN_MARKER_VARIABLE}={run_id}; {command}"


def new_run_id() -> str:
    return secrets.token_hex(12)


async def kill_marked(conn: asyncssh.SSHClientConnection, run_id: str, signal: str) -> str | None:
    """Send ``signal`` to the remote processes of run ``run_id`` and their process groups.

    They are found by the marker in their environment (inherited by every child) or in
    their command line (the shell that sshd started has it in its ``-c`` argument only).
    The marker is quoted in two halves so that this script never matches itself.

    Returns:
        None, or why the kill command could not run.
    """
    if conn is None or conn.is_closed():
        return "connection closed"
    script = (f"m='{RUN_MARKER_VARIABLE}''={run_id}'; "
              f"l=$(grep -l \"$m\" /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null); "
              f"for f in $l; do p=${{f#/proc/}}; kill -{signal} -${{p%/*}} 2>/dev/null; done; "
              f"for f in $l; do p=${{f#/proc/}}; kill -{signal} ${{p%/*}} 2>/dev/null; done; true")
    try:
        # not the short grace: on a loaded host the login shell alone can take a second
        await asyncio.wait_for(conn.run(script, check=False), KILL_SCRIPT_SECONDS)
    except (asyncio.TimeoutError, TimeoutError):
        return f"kill command took more than {KILL_SCRIPT_SECONDS:g} s"
    except (OSError, asyncssh.Error) as exc:
        return str(exc) or type(exc).__name__
    return None


async def stop_remote(conn, channel, run_id: str | None, kill_slot: asyncio.Semaphore) -> str | None:
    """Abort path: TERM the command (and with a marker its descendants), KILL if it lingers, close.

    Returns:
        None when the command stopped, else why it may still run (for the formatter).
    """
    problem = None
    stopped = False
    for signal in ("TERM", "KILL"):
        if channel is not None:
            try:
                channel.send_signal(signal)
            except (OSError, asyncssh.Error) as exc:
                problem = f"signal {signal} not sent: {exc}"
        if run_id is not None:
            async with kill_slot:
                trouble = await kill_marked(conn, run_id, signal)
            if trouble:
                problem = f"kill by marker failed: {trouble}"
        if channel is None:  # nothing to watch: TERM gets the grace period, then KILL
            if signal == "TERM":
                await asyncio.sleep(ABORT_GRACE_SECONDS)
            continue
        try:
            await asyncio.wait_for(asyncio.shield(channel.wait_closed()), ABORT_GRACE_SECONDS)
            stopped = True
            break
        except (asyncio.TimeoutError, asyncio.CancelledError):
            continue
    if channel is not None:
        channel.close()
        if not stopped and run_id is None:
            problem = problem or ("the command did not end after TERM and KILL through its channel "
                                  "(sshd ignores signals for root logins: use abort_marker=True)")
    elif run_id is None:
        problem = problem or "the command's channel was never opened: nothing to signal"
    return problem

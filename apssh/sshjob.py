"""SshJob: an asynciojobs job that runs a sequence of commands on one node."""

from __future__ import annotations

import asyncssh
from asynciojobs import AbstractJob

from .commands import AbstractCommand, CommandFailedError, Run
from .deferred import StrLikeMixin, template_errors
from .formatters import formatter_for
from .nodes import LocalNode
from .sshproxy import CURRENT_HOLDER, SshConnectError, SshProxy


def _normalize_commands(command, commands) -> list[AbstractCommand]:
    """The four accepted forms of ``commands`` as a list of command objects."""
    if command is not None and commands is not None:
        raise TypeError("SshJob: give either command= or commands=, not both")
    given = commands if commands is not None else command
    if given is None:
        raise TypeError("SshJob: no command given; use commands=[Run(...), ...] or command='...'")
    if isinstance(given, AbstractCommand):
        return [given]
    if isinstance(given, (str, StrLikeMixin)):
        return [Run(given)]
    if not isinstance(given, (list, tuple)):
        raise TypeError(f"SshJob: commands must be a command, a string, or a list of either, "
                        f"got {type(given).__name__} {given!r}")
    if not given:
        raise TypeError("SshJob: commands is an empty list")
    parts = (str, int, float, StrLikeMixin)
    if all(isinstance(item, AbstractCommand) for item in given):
        return list(given)
    # a command is str-like, yet a list mixing commands and strings is a mistake, not one command line
    # booleans are parts too (shown as str() does, as in apssh 0.27)
    if all(isinstance(item, parts) and not isinstance(item, AbstractCommand) for item in given):
        return [Run(*given)]
    wrong = [item for item in given if not isinstance(item, (AbstractCommand, *parts))]
    odd = wrong[0] if wrong else next(item for item in given if isinstance(item, AbstractCommand))
    raise TypeError(f"SshJob: commands must be all command objects (Run, Push...) or all strings "
                    f"(the parts of one command line); {odd!r} does not fit in {list(given)!r}")


class SshJob(AbstractJob):
    """Run commands in sequence on one node, as one job of an asynciojobs Scheduler.

    Args:
        node: an SshNode (or SshProxy), or a LocalNode to run commands locally.
        command: alias for ``commands``; give exactly one of both.
        commands: (1) a list of commands, (2) one command, (3) a list of strings making
            one Run, or (4) one string making one Run.
        keep_connection: do not close the node's connection when the scheduler ends.
        verbose: when not None, overrides the ``verbose`` of every command.
        forever: passed to AbstractJob, default False.
        critical: passed to AbstractJob, default True: the first failing command raises
            CommandFailedError, which aborts the scheduler.  A non-critical job runs all
            its commands and returns the last failing exit code.
        kwds: passed to AbstractJob (``required``, ``scheduler``, ``label``).

    Attributes:
        failure_reason: after a run in which a command ended without an exit status, why (the
            node's ``failure_reason``: "connection lost", "cannot start ...: connection closed",
            "server not responding to keepalive after 60 s"...); None otherwise.

    Raises:
        TypeError at build time for a malformed ``commands`` or a node of the wrong kind.
    """

    def __init__(self, node, *, command=None, commands=None, keep_connection: bool = False,
                 verbose: bool | None = None, forever: bool | None = None,
                 critical: bool | None = None, **kwds):
        if not isinstance(node, (SshProxy, LocalNode)):
            raise TypeError(f"SshJob: node must be an SshNode or a LocalNode, got {type(node).__name__} {node!r}")
        self.node = node
        self.commands = _normalize_commands(command, commands)
        if isinstance(node, LocalNode):
            for cmd in self.commands:
                if not cmd.runs_locally:
                    raise TypeError(f"SshJob: {type(cmd).__name__} cannot run on a LocalNode "
                                    f"({cmd.label_line()})")
        for cmd in self.commands:
            cmd.node = node
            if verbose is not None and hasattr(cmd, "verbose"):
                cmd.verbose = verbose
        self.keep_connection = keep_connection
        self.verbose = verbose
        self.failure_reason: str | None = None
        super().__init__(forever=bool(forever), critical=True if critical is None else critical, **kwds)

    async def _run_one(self, cmd: AbstractCommand):
        if isinstance(self.node, LocalNode):
            return await cmd.co_run_local(self.node)
        return await cmd.co_run_remote(self.node)

    def _failure(self, cmd: AbstractCommand, retcod) -> CommandFailedError:
        what = "could not be started" if retcod is None else f"failed with exit code {retcod}"
        reason = getattr(self.node, "failure_reason", None)
        if retcod is None and reason:
            what = f"could not be run: {reason}"
        signal = getattr(retcod, "signal", None)
        if signal:
            what = f"was killed by signal {signal}"
        return CommandFailedError(f"{self.node.hostname}: command {cmd.label_line()!r} {what}",
                                  hostname=self.node.hostname, command=cmd.label_line(), retcod=retcod)

    async def co_run(self):
        """Run all commands in order; the node's connection is held for this job meanwhile.

        Returns:
            0 when every command succeeded, otherwise (non-critical job) the last failing code.

        Raises:
            CommandFailedError: a command of a critical job failed; for a non-critical job,
                when a command raised (e.g. a missing file), after all commands ran.
            SshConnectError: the node cannot be reached (no further command is tried).
        """
        # this task's connections are held by this job, until its scheduler shuts it down
        token = CURRENT_HOLDER.set(self)
        self.failure_reason = None
        try:
            return await self._run_commands()
        finally:
            CURRENT_HOLDER.reset(token)

    async def _run_commands(self):
        result = 0
        error: CommandFailedError | None = None
        for cmd in self.commands:
            try:
                retcod = await self._run_one(cmd)
                if retcod is None:
                    # read at once: the node's own attribute changes with the next command run on it
                    self.failure_reason = getattr(self.node, "failure_reason", None) or self.failure_reason
            except SshConnectError:
                raise
            except (OSError, asyncssh.Error, ValueError, *template_errors()) as exc:
                error = CommandFailedError(f"{self.node.hostname}: command {cmd.label_line()!r}: {exc}",
                                           hostname=self.node.hostname, command=cmd.label_line())
                error.__cause__ = exc
                if self.critical:
                    raise error from exc
                formatter_for(self.node).event(self.node.hostname, str(error))
                continue
            if not cmd.is_success(retcod):
                if self.critical:
                    raise self._failure(cmd, retcod)
                result = retcod if retcod is not None else 255
        if error is not None:
            raise error
        return result

    async def close(self):
        """This job is done with its node: the connection closes once no other job of the
        run needs it (never with ``keep_connection``)."""
        await self.node.release_job(self)

    async def co_shutdown(self):
        """Called by the scheduler at the end of every run: same as :meth:`close`."""
        await self.close()

    # -- rendering for asynciojobs listings and graphs
    def text_label(self) -> str:
        """The first command's label, then ``.. + N`` for N more commands (as apssh 0.27)."""
        first = self.commands[0].label_line()
        more = len(self.commands) - 1
        return f"{first}.. + {more}" if more else first

    def graph_label(self) -> str:
        """``user@host`` of the node, then one line per command (as apssh 0.27, without the job id)."""
        lines = [f"{self.node.username}@{self.node.hostname}"]
        lines += [line for line in (cmd.label_line() for cmd in self.commands) if line]
        return "\n".join(lines)

    def details(self) -> str:
        lines = [f"{self.node.describe()}:"] + [f"  {cmd.label_line()}" for cmd in self.commands]
        return "\n".join(lines)

    def repr_result(self) -> str:
        exception = self.raised_exception()
        if exception:
            kind = "CRIT. EXC." if self.is_critical() else "exception"
            return f"!! {kind} => {type(exception).__name__}: {exception} !!"
        if self.is_done():
            return f"[[ -> {self.result()} ]]"
        return "[not done]"

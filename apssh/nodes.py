"""The nodes a job runs on: SshNode (a remote host) and LocalNode (this machine)."""

from __future__ import annotations

import asyncio
import os
import signal

from ._lines import LineSplitter, block_lines
from ._remote import ABORT_GRACE_SECONDS, ExitCode
from .formatters import COMMAND_FORMATTER, STDERR, STDOUT, ColonFormatter, Formatter
from .sshproxy import SshProxy

# bytes read from a local process at a time: output is handled in chunks, not lines
READ_CHUNK = 1 << 16


class SshNode(SshProxy):
    """A remote host for SshJob: an SshProxy whose login defaults to ``root``.

    Args:
        hostname: the remote host.
        username: remote login; default the ``User`` of ~/.ssh/config for that host, else
            ``root`` as in apssh 0.27 (SshProxy's last resort is the local user).
        keys: private keys; None means the ssh agent's keys, then ~/.ssh/id_ed25519,
            id_ecdsa, id_rsa (keys are read when connecting, never at construction).
        kwds: passed to :class:`~apssh.sshproxy.SshProxy` (gateway, port, formatter,
            verbose, timeout, known_hosts, host_key_policy...).
    """

    def __init__(self, hostname: str, *, username: str | None = None, keys=None, **kwds):
        kwds.setdefault("default_username", "root")
        super().__init__(hostname, username=username, keys=keys, **kwds)


class LocalNode:
    """This machine, as the node of an SshJob: Run, RunScript and RunString run locally.

    Args:
        formatter: where output goes, default a ColonFormatter (``LOCALNODE:line``).
        verbose: when not None, sets the formatter's verbosity.

    As in apssh 0.27, ``hostname`` is ``"LOCALNODE"`` and ``username`` the login of the
    controlling terminal (``os.getlogin()``), ``"LOCALUSER"`` when there is none.
    """

    hostname = "LOCALNODE"
    gateway = None

    def __init__(self, formatter: Formatter | None = None, verbose: bool | None = None):
        self.formatter = formatter if formatter is not None else ColonFormatter(verbose=bool(verbose))
        if verbose is not None:
            self.formatter.verbose = verbose
        self.verbose = verbose
        try:
            self.username = os.getlogin()
        except OSError:  # no controlling terminal (cron, containers, CI)
            self.username = "LOCALUSER"

    def __repr__(self) -> str:
        return "LocalNode()"

    def describe(self) -> str:
        return "localhost"

    def distance(self) -> int:
        """The local node is 0 hops away."""
        return 0

    def is_connected(self) -> bool:
        return True

    async def close(self) -> None:
        """Nothing to close locally."""

    async def release_job(self, job) -> None:
        """Nothing to let go of locally."""

    async def read_and_display(self, stream: asyncio.StreamReader, datatype, *,
                               formatter: Formatter | None = None,
                               stdout_sink: list | None = None) -> None:
        """Read a process's stdout or stderr in chunks until EOF; hand whole lines to the formatter."""
        formatter = formatter or self.formatter
        splitter = LineSplitter()
        sink = stdout_sink if datatype == STDOUT else None
        while True:
            chunk = await stream.read(READ_CHUNK)
            if chunk and getattr(formatter, "receives_bytes", False):
                formatter.bytes_received(chunk, datatype, self.hostname, self.username)
            block = splitter.feed_block(chunk) if chunk else splitter.flush_block()
            # one write per chunk when the formatter can (see Formatter.write_block), else lines
            if block and (sink is not None
                          or not formatter.write_block(block, datatype, self.hostname, self.username)):
                lines = block_lines(block)
                if sink is not None:
                    sink.extend(lines)
                formatter.lines(lines, datatype, self.hostname, self.username)
            if not chunk:
                return

    async def run(self, command: str, *, formatter: Formatter | None = None,
                  stdout_sink: list | None = None, ignore_outputs: bool = False) -> ExitCode:
        """Run ``command`` with /bin/sh in a process group of its own.

        Args:
            ignore_outputs: bind stdout/stderr to /dev/null and read nothing (useful for
                port-forwarding ssh sessions that never close their output).

        Returns:
            the exit status (128+N when killed by signal N, with ``.signal`` set).

        Cancelling the calling task sends TERM to the process group, then KILL.
        """
        formatter = formatter or COMMAND_FORMATTER.get() or self.formatter
        formatter.session_start(self.hostname, command)
        output = asyncio.subprocess.DEVNULL if ignore_outputs else asyncio.subprocess.PIPE
        process = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output,
            start_new_session=True)
        readers = []
        if not ignore_outputs:
            readers = [self.read_and_display(process.stdout, STDOUT, formatter=formatter,
                                             stdout_sink=stdout_sink),
                       self.read_and_display(process.stderr, STDERR, formatter=formatter)]
        try:
            await asyncio.gather(*readers)
            returncode = await process.wait()
        except asyncio.CancelledError:
            await _stop_process_group(process)
            raise
        formatter.session_stop(self.hostname, command)
        if returncode < 0:
            name = signal.Signals(-returncode).name[3:]
            return ExitCode(128 - returncode, name)
        return ExitCode(returncode)


async def _stop_process_group(process: asyncio.subprocess.Process) -> None:
    """TERM the whole process group, KILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), ABORT_GRACE_SECONDS)
            return
        except (asyncio.TimeoutError, asyncio.CancelledError):
            continue

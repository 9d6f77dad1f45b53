"""Where remote output goes: formatters receive lines in batches, plus connection events.

A formatter is attached to each node (SshProxy / LocalNode).  Lines arrive in
batches (one call per received chunk, never one call per line); each line keeps
its trailing newline, except perhaps the very last one of a stream.

Format placeholders, usable in any ``custom_format``:

* ``@line@`` / ``{linenl}``: the line with its newline; ``{line}``: without it;
  ``{nl}``: a newline;
* ``@host@`` / ``{fqdn}``: the hostname as given; ``{host}``: its first label
  (``fit01`` for ``fit01.example.org``; IP addresses are kept whole);
* ``@user@`` / ``{user}``: the remote login name;
* ``@time@`` / ``{time}``: ``%H-%M-%S``; any strftime code such as ``%H`` is
  applied to the local reception time.

Every formatted line ends with exactly one newline.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import sys
import time
from pathlib import Path
from typing import Iterable

from asyncssh import EXTENDED_DATA_STDERR

#: datatype of stdout lines (asyncssh's convention)
STDOUT = None
#: datatype of stderr lines
STDERR = EXTENDED_DATA_STDERR

#: the formatter that commands started in the current task use instead of their node's
#: (a front-end sets it around a job to tell which job each line belongs to)
COMMAND_FORMATTER: contextvars.ContextVar[Formatter | None] = contextvars.ContextVar(
    "apssh_command_formatter", default=None)



def formatter_for(node) -> Formatter:
    """Where a command on ``node`` reports: the task's COMMAND_FORMATTER when a front-end set
    one, else the node's own formatter.  Lines, announcements (what a verbose command runs) and
    events of one command all go through this one channel."""
    return COMMAND_FORMATTER.get() or node.formatter


_LINE_PLACEHOLDERS = re.compile(r"(@line@|\{linenl\}|\{line\})")


def short_hostname(hostname: str) -> str:
    """``fit01`` for ``fit01.example.org``; IP addresses are returned whole."""
    try:
        ipaddress.ip_address(hostname)
        return hostname
    except ValueError:
        return hostname.split(".", 1)[0]


class _CompiledFormat:
    """A custom format split once, so that formatting a batch costs one join per line."""

    def __init__(self, custom_format: str):
        text = custom_format.replace("@time@", "%H-%M-%S").replace("{time}", "%H-%M-%S")
        self.has_time = "%" in text
        self.text = text

    def segments(self, hostname: str, username: str | None) -> list[str]:
        """The format with host, user and time filled in, split at line placeholders."""
        text = time.strftime(self.text) if self.has_time else self.text
        user = username or ""
        text = (text.replace("@host@", hostname).replace("{fqdn}", hostname)
                .replace("{host}", short_hostname(hostname))
                .replace("@user@", user).replace("{user}", user).replace("{nl}", "\n"))
        return _LINE_PLACEHOLDERS.split(text)

    def prefix(self, hostname: str, username: str | None) -> str | None:
        """The text before each line when the format is ``<prefix>@line@`` (or ``{linenl}``
        last), host, user and time filled in; None for any other format."""
        segments = self.segments(hostname, username)
        if len(segments) == 3 and segments[1] != "{line}" and not segments[2]:
            return segments[0]
        return None

    def apply(self, lines: Iterable[str], hostname: str, username: str | None) -> str:
        """All lines formatted and concatenated, each ending with one newline."""
        segments = self.segments(hostname, username)
        lines = [line if line.endswith("\n") else line + "\n" for line in lines]
        if not lines:
            return ""
        if len(segments) == 1:  # no line placeholder: the format alone, once per line
            text = segments[0] if segments[0].endswith("\n") else segments[0] + "\n"
            return text * len(lines)
        if len(segments) == 3:  # the usual case, one line placeholder: no per-line loop in Python
            before, placeholder, after = segments
            if placeholder != "{line}" and not after:  # @line@ or {linenl} last: "host:line\n"
                return before + before.join(lines) if before else "".join(lines)
            if placeholder == "{line}":
                formatted = [before + line[:-1] + after for line in lines]
            else:
                formatted = [before + line + after for line in lines]
            return "".join([text if text.endswith("\n") else text + "\n" for text in formatted])
        out = []
        for with_nl in lines:
            bare = with_nl[:-1]
            parts = []
            for index, segment in enumerate(segments):
                if index % 2 == 0:
                    parts.append(segment)
                else:
                    parts.append(bare if segment == "{line}" else with_nl)
            formatted = "".join(parts)
            out.append(formatted if formatted.endswith("\n") else formatted + "\n")
        return "".join(out)


class Formatter:
    """Base class: decides what happens to remote output and connection events.

    Args:
        custom_format: how each line is rendered (see the module doc for placeholders).
        verbose: when true, connection events are reported too.

    Subclasses override :meth:`lines` (preferred, called once per batch) or
    :meth:`line`, and :meth:`event` to see connection events.
    """

    def __init__(self, custom_format: str = "@line@", verbose: bool = False):
        self.custom_format = custom_format
        self.verbose = verbose
        self._format = _CompiledFormat(custom_format)

    # -- output
    def format_lines(self, lines: Iterable[str], hostname: str, username: str | None = None) -> str:
        """Render ``lines`` with this formatter's format; returns one string."""
        return self._format.apply(lines, hostname, username)

    def lines(self, lines: list[str], datatype, hostname: str, username: str | None = None) -> None:
        """A batch of lines from ``hostname``; ``datatype`` is STDOUT or STDERR."""
        for line in lines:
            self.line(line, datatype, hostname)

    def line(self, line: str, datatype, hostname: str) -> None:
        """One line; the default does nothing (subclasses decide)."""

    def write_block(self, block: bytes, datatype, hostname: str, username: str | None = None) -> bool:
        """The fast path: complete lines as one block of valid UTF-8 bytes (each line ends with
        a newline, but perhaps the last).  Returns True when the block was handled, False to get
        the same lines through :meth:`lines` instead (the default)."""
        return False

    # -- events
    def event(self, hostname: str, message: str) -> None:
        """A connection-level event about ``hostname``: announced when ``verbose`` is set."""
        if self.verbose:
            self.announce(hostname, message)

    def announce(self, hostname: str, message: str) -> None:
        """Show ``message`` whatever ``verbose`` says (what a verbose command runs, events);
        the default shows nothing."""

    def connecting(self, hostname: str, username: str | None, via: str | None) -> None:
        self.event(hostname, f"connecting as {username}" + (f" via {via}" if via else ""))

    def connection_failed(self, hostname: str, username: str | None, reason: str) -> None:
        self.event(hostname, f"connection failed: {reason}")

    def connection_made(self, hostname: str, username: str | None, direct: bool) -> None:
        how = "direct" if direct else "tunnelled"
        self.event(hostname, f"connected ({how}) as {username}")

    def connection_lost(self, hostname: str, exc: BaseException | None, username: str | None) -> None:
        self.event(hostname, f"connection closed{f': {exc}' if exc else ''}")

    def auth_completed(self, hostname: str, username: str | None) -> None:
        self.event(hostname, f"authenticated as {username}")

    def session_start(self, hostname: str, command: str) -> None:
        self.event(hostname, f"session started for {command}")

    def session_stop(self, hostname: str, command: str) -> None:
        self.event(hostname, f"session ended for {command}")

    def sftp_start(self, hostname: str) -> None:
        self.event(hostname, "SFTP subsystem started")

    def sftp_stop(self, hostname: str) -> None:
        self.event(hostname, "SFTP subsystem stopped")


class VerboseFormatter(Formatter):
    """A Formatter that prints connection events on stderr when ``verbose`` is set (apssh 0.27 name).

    The base of formatters that print; subclass it and define :meth:`~Formatter.lines` (or
    :meth:`~Formatter.line`) to decide where output lines go.

    Args:
        custom_format: the line format (see the module doc).
        verbose: print connection events (connecting, authenticated, sessions...) on stderr.
    """

    def __init__(self, custom_format: str = "@line@", verbose: bool = False):
        super().__init__(custom_format, verbose)
        #: the port of the hosts this formatter serves: shown after the host name when not 22,
        #: as the line prefixes of the commands do (``127.0.0.11:2222: connected ...``)
        self.port: int | None = None

    def announce(self, hostname, message):
        host = hostname if self.port in (None, 22) else f"{hostname}:{self.port}"
        sys.stderr.write(f"{time.strftime('%H-%M-%S')} {host}: {message}\n")
        sys.stderr.flush()


#: apssh 0.27 name of :func:`short_hostname`
shorten_hostname = short_hostname


class TerminalFormatter(VerboseFormatter):
    """Prints lines as they come: remote stdout to stdout, remote stderr to stderr.

    Args:
        custom_format: the line format (see the module doc).
        verbose: also print connection events on stderr.
    """

    def __init__(self, custom_format: str, verbose: bool = False):
        super().__init__(custom_format, verbose)

    def lines(self, lines, datatype, hostname, username=None):
        stream = sys.stderr if datatype == STDERR else sys.stdout
        stream.write(self.format_lines(lines, hostname, username))
        stream.flush()

    def line(self, line, datatype, hostname):
        self.lines([line], datatype, hostname)

    def write_block(self, block, datatype, hostname, username=None):
        """One write per received chunk: the prefix (``host:`` for ``@host@:@line@``) inserted
        after every newline with ``bytes.replace``, the bytes written to the stream's binary
        buffer.  Declined (False: lines go through :meth:`lines`) when a subclass overrides
        :meth:`lines`, when the format puts anything after the line, or when the stream has no
        UTF-8 binary buffer."""
        if type(self).lines is not TerminalFormatter.lines:
            return False
        stream = sys.stderr if datatype == STDERR else sys.stdout
        buffer = getattr(stream, "buffer", None)
        if buffer is None or (getattr(stream, "encoding", None) or "").lower().replace("-", "") != "utf8":
            return False
        prefix = self._format.prefix(hostname, username)
        if prefix is None:
            return False
        if not block.endswith(b"\n"):
            block += b"\n"
        if prefix:
            head = prefix.encode("utf-8", "replace")
            block = head + block[:-1].replace(b"\n", b"\n" + head) + b"\n"
        stream.flush()  # text written before (announcements) goes out first
        buffer.write(block)
        buffer.flush()
        return True


class RawFormatter(TerminalFormatter):
    """Lines printed as they are: ``TerminalFormatter("@line@")``."""

    def __init__(self, format: str = "@line@", verbose: bool = False):  # noqa: A002 - API name
        super().__init__(format, verbose)


class ColonFormatter(TerminalFormatter):
    """Lines prefixed with the host: ``TerminalFormatter("@host@:@line@")``."""

    def __init__(self, format: str = "@host@:@line@", verbose: bool = False):  # noqa: A002
        super().__init__(format, verbose)


class TimeColonFormatter(TerminalFormatter):
    """Lines prefixed with reception time and host."""

    def __init__(self, format: str = "%H-%M-%S:@host@:@line@", verbose: bool = False):  # noqa: A002
        super().__init__(format, verbose)


#: apssh 0.27 names
HostFormatter = ColonFormatter
TimeHostFormatter = TimeColonFormatter


class SubdirFormatter(Formatter):
    """Stores each host's output in ``<run_name>/<hostname>``, byte for byte.

    The files hold the bytes as the host sent them (no decoding, no newline added, binary
    kept); a file is replaced, not appended to, the first time this formatter writes it.
    Connection events (``verbose``) are appended to the stdout file as text lines.

    Args:
        run_name: local directory, created when the first output arrives.
        verbose: also write connection events in the files.
        stderr_suffix: when set (e.g. ``".err"``), stderr goes to ``<name><suffix>``;
            otherwise stdout and stderr share one file.
        name: when set, every host's output goes to ``<run_name>/<name>`` instead of
            ``<run_name>/<hostname>`` (the apssh command gives one formatter per target,
            named as its ``-m`` marks, so that two ports or two users on one address get
            distinct files).
    """

    #: output arrives through :meth:`bytes_received` (raw chunks), not through :meth:`lines`
    receives_bytes = True

    def __init__(self, run_name: str, *, verbose: bool = True, stderr_suffix: str | None = None,
                 name: str | None = None):
        super().__init__("@line@", verbose)
        self.run_name = Path(run_name)
        self.stderr_suffix = stderr_suffix
        self.name = name
        self._written: set[Path] = set()  # files already replaced by this formatter

    def filename(self, hostname: str, datatype=STDOUT) -> Path:
        """The file that receives ``hostname``'s output (stderr apart when ``stderr_suffix`` is set)."""
        base = self.name or hostname
        if datatype == STDERR and self.stderr_suffix:
            return self.run_name / f"{base}{self.stderr_suffix}"
        return self.run_name / base

    def _append(self, hostname: str, data: bytes, datatype=STDOUT) -> None:
        path = self.filename(hostname, datatype)
        mode = "ab" if path in self._written else "wb"
        if mode == "wb":
            self.run_name.mkdir(parents=True, exist_ok=True)
            self._written.add(path)
        # opened per chunk: 1000 hosts must not hold 1000 descriptors
        with open(path, mode) as out:
            out.write(data)

    def bytes_received(self, data: bytes, datatype, hostname: str, username: str | None = None) -> None:
        """A raw chunk of ``hostname``'s stdout or stderr, written as is."""
        self._append(hostname, data, datatype)

    def lines(self, lines, datatype, hostname, username=None):
        """Nothing: the same output arrives, undecoded, through :meth:`bytes_received`."""

    def write_block(self, block, datatype, hostname, username=None):
        """Nothing to do (the bytes arrived through :meth:`bytes_received`): no line is decoded."""
        return type(self).lines is SubdirFormatter.lines

    def announce(self, hostname, message):
        self._append(hostname, f"{time.strftime('%H-%M-%S')} {message}\n".encode())


class CaptureFormatter(Formatter):
    """Keeps stdout in memory instead of printing it; stderr still goes to stderr.

    Use :meth:`start_capture` to empty the capture and :meth:`get_capture` to read it.
    """

    def __init__(self, custom_format: str = "@line@", verbose: bool = True):
        super().__init__(custom_format, verbose)
        self._captured: list[str] = []

    def start_capture(self) -> None:
        """Forget everything captured so far."""
        self._captured = []

    def get_capture(self) -> str:
        """The stdout lines captured since the last :meth:`start_capture`."""
        return "".join(self._captured)

    def lines(self, lines, datatype, hostname, username=None):
        text = self.format_lines(lines, hostname, username)
        if datatype == STDERR:
            sys.stderr.write(text)
        else:
            self._captured.append(text)

    def line(self, line, datatype, hostname):
        self.lines([line], datatype, hostname)

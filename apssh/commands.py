"""The commands an SshJob runs in sequence: Run, RunScript, RunString, Push, Pull."""

from __future__ import annotations

import copy
import os
import secrets
import shlex
import shutil
import signal as signal_module
import tempfile
from pathlib import Path

import asyncssh

from .deferred import Capture, Deferred, StrLikeMixin, is_undefined_error, render
from .formatters import formatter_for

# remote directory (relative to the login's home) where scripts are copied before they run
REMOTE_DIR = ".apssh-remote"
# the name of a run's own directory in REMOTE_DIR: 24 hex digits (secrets.token_hex(12))
_RUN_DIR_BYTES = 12
# run directories older than this many days are left-overs of runs cut short (a lost connection):
# removed by the next RunScript/RunString on that host, in the same remote command
STALE_RUN_DIR_DAYS = 1
STALE_RUN_DIR_CLEANUP = (f"find {REMOTE_DIR} -mindepth 1 -maxdepth 1 -type d "
                         f"-name '{'[0-9a-f]' * (2 * _RUN_DIR_BYTES)}' -mtime +{STALE_RUN_DIR_DAYS - 1} "
                         f"-exec rm -rf {{}} + >/dev/null 2>&1; ")

__all__ = ["AbstractCommand", "CapturableMixin", "Run", "RunLocalStuff", "RunScript",
           "RunString", "Push", "Pull", "StrLikeMixin", "REMOTE_DIR"]


def _normalize_allowed_exits(owner: str, allowed_exits) -> frozenset:
    """Exit codes (ints) and signal names ('TERM' or 'SIGTERM'), checked at build time."""
    if allowed_exits is None:
        return frozenset()
    if isinstance(allowed_exits, (str, int)):
        allowed_exits = [allowed_exits]
    result = set()
    for item in allowed_exits:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise TypeError(f"{owner}: allowed_exits entries are exit codes or signal names, got {item!r}")
        if isinstance(item, str):
            name = item.upper().removeprefix("SIG")
            if item.isdigit():
                result.add(int(item))
                continue
            if not hasattr(signal_module, f"SIG{name}"):
                raise ValueError(f"{owner}: allowed_exits: unknown signal name {item!r} (e.g. 'TERM', 'INT')")
            result.add(name)
        else:
            result.add(item)
    return frozenset(result)



class CommandFailedError(Exception):
    """A command of a critical SshJob failed; this aborts the surrounding scheduler.

    Attributes:
        hostname: the node's host name.
        command: the failing command's label.
        retcod: its exit status (None when it could not run at all).
    """

    def __init__(self, message: str, *, hostname: str | None = None, command: str | None = None,
                 retcod=None):
        super().__init__(message)
        self.hostname = hostname
        self.command = command
        self.retcod = retcod


class AbstractCommand:
    """Base class of all commands.

    Args:
        label: how the command shows in scheduler listings and graphs.
        allowed_exits: exit codes and signal names that count as success besides 0,
            e.g. ``["TERM", 4]``; a signal name matches a command killed by that signal.
    """

    #: whether the command can run on a LocalNode
    runs_locally = False
    #: set (by the YAML loader) when a local file the command needs was not found: the
    #: message, naming the paths tried, that the command fails with when it runs
    missing_files: str | None = None

    def __init__(self, *, label: str | None = None, allowed_exits=None):
        self.label = label
        self.allowed_exits = _normalize_allowed_exits(type(self).__name__, allowed_exits)
        self.node = None  # set by SshJob

    def is_success(self, retcod) -> bool:
        """Whether ``retcod`` (an int, possibly an ExitCode with ``.signal``) is a success."""
        if retcod is None:
            return False
        if retcod == 0 or int(retcod) in self.allowed_exits:
            return True
        return getattr(retcod, "signal", None) in self.allowed_exits

    async def co_run_remote(self, node) -> int | None:
        """Run on an SshNode; returns 0 when all is fine."""
        raise NotImplementedError(f"{type(self).__name__} must define co_run_remote()")

    async def co_run_local(self, localnode) -> int | None:
        """Run on a LocalNode; returns 0 when all is fine."""
        raise NotImplementedError(f"{type(self).__name__} cannot run on a LocalNode")

    def label_line(self) -> str:
        """One line describing the command, for listings and graphs."""
        return self.label or type(self).__name__

    def get_label_line(self) -> str:
        """apssh 0.27 name of :meth:`label_line`."""
        return self.label_line()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.label_line()}>"

    def __bool__(self) -> bool:
        # a command is never false, even when its text (len() of a str-like command) is empty
        return True


class CapturableMixin:
    """Stores a command's stdout into a :class:`~apssh.deferred.Capture` variable.

    Only the output of this very command is captured, even when other jobs run on the
    same node at the same time.
    """

    def __init__(self, capture: Capture | None):
        if capture is not None and not isinstance(capture, Capture):
            raise TypeError(f"capture must be a Capture(varname, variables), got {capture!r}")
        self.capture = capture

    def _capture_sink(self) -> list | None:
        return [] if self.capture is not None else None

    def _store_capture(self, sink: list | None) -> None:
        if self.capture is not None and sink is not None:
            self.capture.store("".join(sink))


def _check_parts(owner: str, parts) -> None:
    """Parts are text: str, numbers and booleans (shown as ``str()`` does, as in apssh 0.27),
    paths, Deferred, or another command (its command line)."""
    for part in parts:
        if not isinstance(part, (str, int, float, StrLikeMixin, os.PathLike)):
            raise TypeError(f"{owner}: command parts must be strings, numbers, booleans, paths, Deferred "
                            f"or commands, got {type(part).__name__} {part!r}")


class _StrLikeCommand(StrLikeMixin):
    """A command that stands where a str is expected (apssh 0.27's ``StrLikeMixin``).

    ``str(Run("a", "b"))`` is ``"a b"``, so f-strings and ``Run(other_command)`` see the
    command line; Deferred parts are rendered with the variables known now (a variable not
    captured yet stays as its ``{{ name }}`` template).  ``repr()`` keeps ``<Run: a b>``.
    """

    def render(self) -> str:
        """The command line as it runs now (Deferred parts rendered)."""
        raise NotImplementedError

    def __str__(self) -> str:
        try:
            return self.render()
        except Exception as exc:
            if is_undefined_error(exc):
                return self._template_text()
            raise

    def dup_from_string(self, new_template):
        raise TypeError(f"{type(self).__name__} cannot be concatenated; build a new command from parts, "
                        f"e.g. Run(command, 'more words')")


def _x11_options(owner: str, x11: bool) -> dict:
    """create_session options for X11 forwarding; without a local DISPLAY, say so (ValueError)."""
    if not x11:
        return {}
    if not os.environ.get("DISPLAY"):
        raise ValueError(f"{owner}(x11=True): no local DISPLAY to forward X11 to (DISPLAY is not set)")
    return {"x11_forwarding": True}


def _join(parts) -> str:
    return " ".join(render(part) for part in parts)


def _template_line(parts) -> str:
    """The command as written, Deferred parts shown as their template."""
    return " ".join(part._template_text() if isinstance(part, StrLikeMixin) else str(part)
                    for part in parts)


class Run(AbstractCommand, CapturableMixin, _StrLikeCommand):
    """Run a command line remotely (or locally on a LocalNode).

    The parts are joined with spaces: ``Run("tail -n", 1, "/etc/hosts")`` runs
    ``tail -n 1 /etc/hosts``.  Parts may be numbers or booleans (``str()`` of them),
    Deferred (rendered when the command starts) or another command: ``Run(other)`` runs
    ``other``'s command line, and keeps its allowed exits (and its service, if any).

    A Run is str-like: ``str(Run("a", "b"))`` is ``"a b"``; ``Run("a") + " b"`` is a new Run.

    Args:
        argv: the parts of the command line.
        verbose: print the command line before it runs.
        x11: forward X11 to the local DISPLAY.
        ignore_outputs: on a LocalNode, bind stdout/stderr to /dev/null (for commands
            such as port-forwarding ssh sessions that never close their output).
        label: how the command shows in listings and graphs.
        allowed_exits: see :class:`AbstractCommand`.
        capture: store stdout in this Capture's variable.
    """

    runs_locally = True

    def __init__(self, *argv, verbose: bool = False, x11: bool = False, ignore_outputs: bool = False,
                 label: str | None = None, allowed_exits=None, capture: Capture | None = None):
        if not argv:
            raise TypeError("Run() needs a command, e.g. Run('uname -a')")
        _check_parts("Run", argv)
        AbstractCommand.__init__(self, label=label, allowed_exits=allowed_exits)
        CapturableMixin.__init__(self, capture)
        self.argv = argv
        self.verbose = verbose
        self.x11 = x11
        self.ignore_outputs = ignore_outputs
        for part in argv:
            if isinstance(part, AbstractCommand):
                # Run(service.stop_command()) keeps what the inner command counts as success
                self.allowed_exits = self.allowed_exits | part.allowed_exits
        if len(argv) == 1 and isinstance(argv[0], AbstractCommand):
            if label is None:
                self.label = argv[0].label
            if getattr(argv[0], "service", None) is not None:
                self.service = argv[0].service

    def command_line(self) -> str:
        """The command line as it runs now (Deferred parts rendered)."""
        return _join(self.argv)

    render = command_line

    def _template_text(self) -> str:
        return _template_line(self.argv)

    def label_line(self) -> str:
        return self.label or _template_line(self.argv)

    def _with_argv(self, argv) -> Run:
        other = copy.copy(self)
        other.argv = tuple(argv)
        return other

    def __add__(self, other) -> Run:
        """``Run("ls") + " -l"`` is ``Run("ls -l")``: the text is appended to the last part."""
        *head, last = self.argv
        last = last if isinstance(last, (str, StrLikeMixin)) else str(last)
        tail = other if isinstance(other, StrLikeMixin) else str(other)
        return self._with_argv([*head, last + tail])

    def __radd__(self, other) -> Run:
        """``"sudo " + Run("ls")`` is ``Run("sudo ls")``."""
        first, *rest = self.argv
        first = first if isinstance(first, (str, StrLikeMixin)) else str(first)
        head = other if isinstance(other, StrLikeMixin) else str(other)
        return self._with_argv([head + first, *rest])

    def _x11_options(self) -> dict:
        return _x11_options(type(self).__name__, self.x11)

    async def co_run_remote(self, node):
        command = self.command_line()
        if self.verbose:
            formatter_for(node).announce(node.hostname, f"Run: {command}")
        sink = self._capture_sink()
        retcod = await node.run(command, stdout_sink=sink, **self._x11_options())
        self._store_capture(sink)
        return retcod

    async def co_run_local(self, localnode):
        command = self.command_line()
        if self.verbose:
            formatter_for(localnode).announce(localnode.hostname, f"Run: {command}")
        sink = self._capture_sink()
        retcod = await localnode.run(command, stdout_sink=sink, ignore_outputs=self.ignore_outputs)
        self._store_capture(sink)
        return retcod


class RunLocalStuff(AbstractCommand, CapturableMixin, _StrLikeCommand):
    """Common logic of RunScript and RunString: copy a local script over, then run it.

    Each run gets its own directory ``~/.apssh-remote/<random>/`` (mode 0700) holding the
    script (mode 0700) and its includes; the directory is removed once the script ends,
    so that parallel runs never overwrite each other ("Text file busy").  Directories of
    such runs left behind (a connection lost mid-run) and older than a day are removed by
    the next run on that host, within the same remote command.

    Args:
        args: the script's arguments (joined with spaces, as with Run).
        includes: local files copied beside the script.
        remote_basename: the name of the remote copy.
        x11: forward X11.
        verbose: print what runs (never changes what runs).
        capture: store stdout in this Capture's variable.
    """

    runs_locally = True

    def __init__(self, args, *, label=None, allowed_exits=None, includes=None,
                 remote_basename: str | None = None, x11: bool = False, verbose: bool = False,
                 capture: Capture | None = None):
        _check_parts(type(self).__name__, args)
        AbstractCommand.__init__(self, label=label, allowed_exits=allowed_exits)
        CapturableMixin.__init__(self, capture)
        if isinstance(includes, (str, os.PathLike)):
            includes = [includes]
        self.includes = [os.fspath(path) for path in includes or []]
        self.args = tuple(args)
        self.remote_basename = remote_basename
        self.x11 = x11
        self.verbose = verbose

    def _basename(self) -> str:
        return self.remote_basename or f"script-{secrets.token_hex(4)}"

    def _shown_name(self) -> str:
        """The script's name in ``str()`` (its remote base name)."""
        return self.remote_basename or type(self).__name__

    def render(self) -> str:
        """The script's name and its arguments, as ``str()`` shows them (Deferred rendered)."""
        return " ".join([self._shown_name(), _join(self.args)]).rstrip()

    def _template_text(self) -> str:
        return " ".join([self._shown_name(), _template_line(self.args)]).rstrip()

    def _check_includes(self) -> None:
        if self.missing_files:
            raise FileNotFoundError(self.missing_files)
        for include in self.includes:
            if not Path(include).is_file():
                raise FileNotFoundError(f"{type(self).__name__}: include file {include!r} not found "
                                        f"(from {os.getcwd()})")

    async def co_install(self, node, remote_path: str) -> None:
        """Write the script to ``remote_path`` on ``node`` (mode 0700); raises on failure."""
        raise NotImplementedError

    def install_locally(self, local_path: Path) -> None:
        """Write the script to ``local_path`` (mode 0700) for a LocalNode run."""
        raise NotImplementedError

    async def co_run_remote(self, node):
        self._check_includes()
        sftp = await node.sftp_connect_lazy()
        remote_dir = f"{REMOTE_DIR}/{secrets.token_hex(_RUN_DIR_BYTES)}"
        await sftp.makedirs(remote_dir, attrs=asyncssh.SFTPAttrs(permissions=0o700))
        remote_path = f"{remote_dir}/{self._basename()}"
        try:
            await self.co_install(node, remote_path)
            if self.includes:
                await node.put_file_s(self.includes, remote_dir)
            command = " ".join([shlex.quote(remote_path), _join(self.args)]).rstrip()
            if self.verbose:
                formatter_for(node).announce(node.hostname, f"{type(self).__name__}: {command}")
            sink = self._capture_sink()
            retcod = await node.run(STALE_RUN_DIR_CLEANUP + command, stdout_sink=sink,
                                    **_x11_options(type(self).__name__, self.x11))
            self._store_capture(sink)
            return retcod
        finally:
            await _remove_remote_dir(node, remote_dir)

    async def co_run_local(self, localnode):
        self._check_includes()
        workdir = Path(tempfile.mkdtemp(prefix="apssh-"))
        try:
            local_path = workdir / self._basename()
            self.install_locally(local_path)
            for include in self.includes:
                shutil.copy(include, workdir)
            command = " ".join([shlex.quote(str(local_path)), _join(self.args)]).rstrip()
            if self.verbose:
                formatter_for(localnode).announce(localnode.hostname, f"{type(self).__name__}: {command}")
            sink = self._capture_sink()
            retcod = await localnode.run(command, stdout_sink=sink)
            self._store_capture(sink)
            return retcod
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


async def _remove_remote_dir(node, remote_dir: str) -> None:
    """Best effort: the run's copy directory goes away even after an abort."""
    if not node.is_connected():
        return
    try:
        sftp = await node.sftp_connect_lazy()
        await sftp.rmtree(remote_dir, ignore_errors=True)
    except (OSError, asyncssh.Error):
        pass


class RunScript(RunLocalStuff):
    """Run a local script file remotely, with arguments as for Run.

    ``RunScript("../foo.sh", "arg1", 2)`` copies ``foo.sh`` (and ``includes``) to the
    node, runs ``foo.sh arg1 2`` there, then removes the copies.
    """

    def __init__(self, local_script, *args, label=None, allowed_exits=None, includes=None,
                 x11: bool = False, verbose: bool = False, capture: Capture | None = None):
        if not isinstance(local_script, (str, os.PathLike)):
            raise TypeError(f"RunScript: local_script must be a file name, got {local_script!r}")
        self.local_script = os.fspath(local_script)
        super().__init__(args, label=label, allowed_exits=allowed_exits, includes=includes,
                         remote_basename=Path(self.local_script).name, x11=x11, verbose=verbose,
                         capture=capture)

    def _check_script(self) -> None:
        if self.missing_files:
            raise FileNotFoundError(self.missing_files)
        if not Path(self.local_script).is_file():
            raise FileNotFoundError(f"RunScript: local script {self.local_script!r} not found "
                                    f"(from {os.getcwd()})")

    async def co_install(self, node, remote_path):
        self._check_script()
        await node.put_file_s([self.local_script], remote_path)
        await (await node.sftp_connect_lazy()).chmod(remote_path, 0o700)

    def install_locally(self, local_path):
        self._check_script()
        shutil.copy(self.local_script, local_path)
        local_path.chmod(0o700)

    def label_line(self) -> str:
        """``RunScript: <base name> <args>`` (as apssh 0.27), or the label."""
        return self.label or f"RunScript: {self._template_text()}"


class RunString(RunLocalStuff):
    """Run a script given as a Python string (or a Deferred) remotely, with arguments.

    Args:
        script_body: the script's text; start it with a ``#!`` line.
        remote_name: the name of the remote copy (random when not given).
    """

    def __init__(self, script_body, *args, label=None, allowed_exits=None, includes=None,
                 x11: bool = False, remote_name: str | None = None, verbose: bool = False,
                 capture: Capture | None = None):
        if not isinstance(script_body, (str, Deferred)):
            raise TypeError(f"RunString: script_body must be a str or Deferred, got {type(script_body).__name__}")
        if remote_name is not None and ("/" in remote_name or not remote_name):
            raise ValueError(f"RunString: remote_name must be a plain file name, got {remote_name!r}")
        self.script_body = script_body
        self.remote_name = remote_name
        super().__init__(args, label=label, allowed_exits=allowed_exits, includes=includes,
                         remote_basename=remote_name, x11=x11, verbose=verbose, capture=capture)

    async def co_install(self, node, remote_path):
        await node.put_string_script(render(self.script_body), remote_path, mode=0o700)

    def install_locally(self, local_path):
        local_path.write_text(render(self.script_body), encoding="utf-8")
        local_path.chmod(0o700)

    def label_line(self) -> str:
        if self.label:
            return self.label
        name = self.remote_name or "RunString"
        return " ".join([name, _template_line(self.args)]).rstrip()


def _path_list(owner: str, paths) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    try:
        result = [os.fspath(path) for path in paths]
    except TypeError:
        raise TypeError(f"{owner}: expected a path or a list of paths, got {paths!r}") from None
    if not result:
        raise ValueError(f"{owner}: the list of paths is empty")
    return result


def _reject_positional(owner: str, args) -> None:
    if args:
        raise TypeError(f"{owner}: unexpected positional arguments {args!r}; "
                        f"SFTP options are keywords, e.g. recurse=True, preserve=True")


class Push(AbstractCommand):
    """Copy local files to the node over SFTP.

    Args:
        localpaths: a local path or a list of them.
        remotepath: the remote directory (or file name, for a single file).
        kwds: passed to asyncssh's ``SFTPClient.put`` (e.g. ``recurse=True``, ``preserve=True``).
    """

    def __init__(self, localpaths, remotepath, *args, label=None, verbose: bool = False, **kwds):
        _reject_positional("Push", args)
        super().__init__(label=label)
        self.localpaths = _path_list("Push", localpaths)
        self.remotepath = os.fspath(remotepath)
        self.verbose = verbose
        self.kwds = kwds

    async def co_run_remote(self, node):
        if self.verbose:
            formatter_for(node).announce(node.hostname, f"Push {self.localpaths} to {self.remotepath}")
        await node.put_file_s(self.localpaths, self.remotepath, **self.kwds)
        return 0

    def label_line(self) -> str:
        return self.label or f"Push {' '.join(self.localpaths)} -> {self.remotepath}"


class Pull(AbstractCommand):
    """Copy remote files to this machine over SFTP.

    Args:
        remotepaths: a remote path or a list of them (relative to the remote home).
        localpath: the local directory (created if missing), or the new file name when a
            single file is pulled.
        kwds: passed to asyncssh's ``SFTPClient.get`` (e.g. ``recurse=True``, ``preserve=True``).
    """

    def __init__(self, remotepaths, localpath, *args, label=None, verbose: bool = False, **kwds):
        _reject_positional("Pull", args)
        super().__init__(label=label)
        self.remotepaths = _path_list("Pull", remotepaths)
        self.localpath = os.fspath(localpath)
        self.verbose = verbose
        self.kwds = kwds

    async def co_run_remote(self, node):
        if self.verbose:
            formatter_for(node).announce(node.hostname, f"Pull {self.remotepaths} to {self.localpath}")
        await node.get_file_s(self.remotepaths, self.localpath, **self.kwds)
        return 0

    def label_line(self) -> str:
        return self.label or f"Pull {' '.join(self.remotepaths)} -> {self.localpath}"


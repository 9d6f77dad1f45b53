"""Service: start, stop and inspect a daemon on a node, as a systemd transient unit.

On hosts without systemd (containers, minimal images) the same commands fall back to a
detached process group with a pid file and a log file under ``~/.apssh-remote/services``.

Each method returns a :class:`~apssh.commands.Run` to put in an SshJob.  The command
lines are POSIX sh, and every value in them is shell-quoted.
"""

from __future__ import annotations

import re
import shlex

from .commands import Run
from .deferred import StrLikeMixin, render

# the characters systemd allows in a unit name; ".service" is added, and the whole is at most 255
MAX_UNIT_NAME = 255 - len(".service")
_UNIT_NAME = re.compile(rf"[A-Za-z0-9:_.@\\-]{{1,{MAX_UNIT_NAME}}}")
SYSTEMD_TYPES = ("simple", "exec", "forking", "oneshot", "notify", "dbus", "idle")
# systemctl status: 3 = unit not active, 4 = no such unit; both are answers, not failures
STATUS_ANSWERS = (3, 4)
# systemctl stop: 5 = unit not loaded (already stopped, transient unit gone)
STOP_ANSWERS = (5,)
#: backends: systemd transient units, detached processes, or whichever the host has
BACKENDS = ("auto", "systemd", "process")
# a host runs systemd when this directory exists (what sd_booted() checks)
SYSTEMD_PRESENT = "[ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1"
# where services started without systemd keep their pid and log files (relative to home)
PROCESS_DIR = ".apssh-remote/services"


class _ServiceLine(StrLikeMixin):
    """A command line built around a service command that may be Deferred: quoted once rendered."""

    def __init__(self, build, command):
        self._build = build
        self._command = command

    def _template_text(self) -> str:
        text = self._command._template_text() if isinstance(self._command, StrLikeMixin) else str(self._command)
        return self._build(text)

    def render(self) -> str:
        return self._build(render(self._command))

    def dup_from_string(self, new_template):
        raise TypeError("a Service command line cannot be concatenated; build the Run from parts instead")


class Service:
    """A daemon run on a node with systemd-run.

    Args:
        command: the command line of the daemon (a str or a Deferred); it is run by /bin/sh.
        service_id: the unit name given to systemd-run; unique on a given host.
        tty: give the command a pseudo-terminal (through ``script``), for programs that want one.
        systemd_type: the unit's Type=, ``simple`` for a command that stays in the
            foreground, ``forking`` for one that daemonizes itself.
        environ: extra environment variables for the daemon (systemd gives it almost none).
        stop_if_running: the start command first stops a running unit of the same id
            and resets a failed one, so a scenario can be replayed.
        verbose: passed to the Run commands (prints what runs).
        backend: ``auto`` (default: systemd when the host runs it, else a detached
            process group with a pid and a log file under ~/.apssh-remote/services),
            ``systemd`` or ``process`` to force one.

    With systemd, ``start`` only launches the unit: a command that fails at once leaves a
    ``failed`` unit (``status`` exits 3 and shows its exit code, the journal its messages).
    The process backend behaves the same way (``status`` says ``inactive``, exit 3), with
    these limits: ``since`` is ignored (the log has no timestamps), the log keeps the output
    of every run, and a daemon that leaves its process group AND its parent (a double fork
    with setsid, as classic daemons do) cannot be found again by ``stop``.
    """

    def __init__(self, command, *, service_id: str, tty: bool = False, systemd_type: str = "simple",
                 environ: dict | None = None, stop_if_running: bool = True, verbose: bool = False,
                 backend: str = "auto"):
        if not isinstance(command, (str, StrLikeMixin)):
            raise TypeError(f"Service: command must be a str or a Deferred, got {type(command).__name__}")
        if not isinstance(service_id, str) or not _UNIT_NAME.fullmatch(service_id):
            # systemd-run would refuse it at run time: say so when the scenario is built
            raise ValueError(f"Service: service_id must be a systemd unit name (letters, digits and "
                             f":-_.@\\ only, at most {MAX_UNIT_NAME} characters), got {service_id!r}")
        if systemd_type not in SYSTEMD_TYPES:
            raise ValueError(f"Service {service_id!r}: systemd_type must be one of "
                             f"{', '.join(SYSTEMD_TYPES)}, got {systemd_type!r}")
        if backend not in BACKENDS:
            raise ValueError(f"Service {service_id!r}: backend must be one of {', '.join(BACKENDS)}, "
                             f"got {backend!r}")
        environ = dict(environ or {})
        for name in environ:
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"Service {service_id!r}: environment variable name {name!r} is invalid")
        self.command = command
        self.service_id = service_id
        self.tty = tty
        self.systemd_type = systemd_type
        self.environ = environ
        self.stop_if_running = stop_if_running
        self.verbose = verbose
        self.backend = backend

    def __repr__(self) -> str:
        return f"Service({self.service_id!r})"

    @property
    def unit(self) -> str:
        """The systemd unit name, quoted for the shell."""
        return shlex.quote(f"{self.service_id}.service")

    # -- command lines (plain text, tested on their own)
    def _daemon_argv(self, command: str) -> str:
        if self.tty:
            # script(1) gives the command a pty without waiting for a terminal
            return f"script -qfec {shlex.quote(command)} /dev/null"
        return command

    # -- systemd transient units
    def systemd_start_line(self, command: str) -> str:
        """Start ``command`` as transient unit ``<service_id>.service`` with systemd-run."""
        options = [f"--unit={shlex.quote(self.service_id)}",
                   f"--service-type={self.systemd_type}"]
        options += [shlex.quote(f"--setenv={name}={value}") for name, value in self.environ.items()]
        start = f"systemd-run {' '.join(options)} /bin/sh -c {shlex.quote(self._daemon_argv(command))}"
        if not self.stop_if_running:
            return start
        # stop whatever state the unit is in (active, but also activating or deactivating, which
        # is-active does not report), then forget a failed one: systemd-run refuses a loaded unit
        return (f"systemctl stop {self.unit} 2>/dev/null; "
                f"systemctl reset-failed {self.unit} 2>/dev/null; {start}")

    def systemd_stop_line(self) -> str:
        return f"systemctl stop {self.unit}"

    def systemd_status_line(self) -> str:
        return f"systemctl --no-pager --full status {self.unit}"

    def systemd_journal_line(self, since: str | None = None) -> str:
        line = f"journalctl --no-pager --unit={self.unit}"
        return f"{line} --since={shlex.quote(since)}" if since else line

    # -- without systemd: a detached process group, a pid file and a log file
    @property
    def _files(self) -> tuple[str, str, str]:
        base = f"{PROCESS_DIR}/{self.service_id}"
        return PROCESS_DIR, shlex.quote(f"{base}.pid"), shlex.quote(f"{base}.log")

    def _functions(self) -> str:
        """Shell functions of the process backend (POSIX sh, reading Linux /proc).

        * ``_apssh_running``: the recorded process group (put in ``$_g``) has a live process;
        * ``_apssh_alive " G1 G2 "``: one of these process groups has a live process; zombies
          do not count (on hosts whose init does not reap orphans, containers, a dead daemon
          stays a zombie for ever);
        * ``_apssh_tree``: ``$_t`` gets the recorded group and, through parent links, the groups
          of all its descendants (``script``, for tty=True, puts its child in a group of its own);
        * ``_apssh_stop``: TERM to the descendants' groups first (``script`` exits at once when
          its child is gone, but waits 2 s when it gets TERM itself), then to all the groups;
          wait for them (5 s at most), then KILL what is left, as ``systemctl stop`` would.
        """
        _, pid, _ = self._files
        return (
            '_apssh_alive() { for _f in /proc/[0-9]*/stat; do read -r _l 2>/dev/null < "$_f" || continue; '
            'set -- "$1" ${_l##*") "}; case $1 in *" $4 "*) [ "$2" = Z ] || [ "$2" = X ] || return 0;; esac; '
            'done; return 1; }; '
            '_apssh_running() { _g=$(cat ' + pid + ' 2>/dev/null); case $_g in ""|*[!0-9]*) return 1;; esac; '
            '_apssh_alive " $_g "; }; '
            '_apssh_tree() { _t=" $_g "; _m=" "; _c=1; while [ $_c = 1 ]; do _c=0; '
            'for _f in /proc/[0-9]*/stat; do read -r _l 2>/dev/null < "$_f" || continue; '
            '_p=${_f#/proc/}; _p=${_p%/stat}; case $_m in *" $_p "*) continue;; esac; set -- ${_l##*") "}; '
            'case $_t in *" $3 "*) ;; *) case $_m in *" $2 "*) _t="$_t$3 ";; *) continue;; esac;; esac; '
            '_m="$_m$_p "; _c=1; done; done; }; '
            '_apssh_wait() { _n=0; while _apssh_alive "$1" && [ $_n -lt $2 ]; do sleep 0.05; _n=$((_n+1)); done; }; '
            '_apssh_stop() { _apssh_running || return 0; _apssh_tree; if [ "$_t" != " $_g " ]; then '
            'for _x in $_t; do [ "$_x" = "$_g" ] || kill -TERM -$_x 2>/dev/null; done; _apssh_wait "$_t" 10; fi; '
            'for _s in TERM KILL; do _apssh_alive "$_t" || return 0; '
            'for _x in $_t; do kill -$_s -$_x 2>/dev/null; done; _apssh_wait "$_t" 100; done; }; ')

    def process_start_line(self, command: str) -> str:
        """Start ``command`` in a new session (setsid), recording its pid and output."""
        directory, pid, log = self._files
        environ = " ".join(shlex.quote(f"{name}={value}") for name, value in self.environ.items())
        launcher = f"env {environ} setsid" if environ else "setsid"
        # the log is appended to, as the journal keeps the output of earlier runs
        start = (f"{launcher} /bin/sh -c {shlex.quote(self._daemon_argv(command))} >> {log} 2>&1 < /dev/null & "
                 f"echo $! > {pid}")
        if self.stop_if_running:
            guard = "_apssh_stop"
        else:
            guard = (f'if _apssh_running; then echo "service {self.service_id} is already running" >&2; '
                     f'exit 1; fi')
        # every process line first goes home: the files are relative to it, whatever the cwd
        # (a LocalNode runs commands in the local cwd, not in $HOME as sshd does)
        return f"{self._functions()}cd && mkdir -p {directory} && {{ {guard}; {start}; }}"

    def process_stop_line(self) -> str:
        _, pid, _ = self._files
        return f"{self._functions()}cd && {{ _apssh_stop; rm -f {pid}; }}"

    def process_status_line(self) -> str:
        _, pid, _ = self._files
        name = shlex.quote(self.service_id)
        return (f'{self._functions()}cd && if _apssh_running; then echo {name}: active, process group "$_g"; '
                f"else echo {name}: inactive; exit 3; fi")

    def process_journal_line(self, since: str | None = None) -> str:
        _, _, log = self._files
        # the log has no timestamps of its own: 'since' cannot filter it
        return f"cd && cat {log}"

    # -- the lines run, for the chosen backend
    def _choose(self, systemd_line: str, process_line: str) -> str:
        if self.backend == "systemd":
            return systemd_line
        if self.backend == "process":
            return process_line
        return f"if {SYSTEMD_PRESENT}; then {systemd_line}; else {process_line}; fi"

    def start_line(self, command: str) -> str:
        """The shell line that starts the service running ``command``."""
        return self._choose(self.systemd_start_line(command), self.process_start_line(command))

    def stop_line(self) -> str:
        return self._choose(self.systemd_stop_line(), self.process_stop_line())

    def status_line(self, output: str | None = None) -> str:
        line = self._choose(self.systemd_status_line(), self.process_status_line())
        return f"{{ {line}; }} > {shlex.quote(output)} 2>&1" if output else line

    def journal_line(self, since: str | None = None) -> str:
        return self._choose(self.systemd_journal_line(since), self.process_journal_line(since))

    # -- Run commands for an SshJob
    def _run(self, line, label: str, kwds: dict, answers=()) -> Run:
        kwds.setdefault("verbose", self.verbose)
        allowed = list(kwds.pop("allowed_exits", None) or []) + list(answers)
        run = Run(line, label=label, allowed_exits=allowed or None, **kwds)
        run.service = self  # lets a front-end find the services a scenario uses
        return run

    def start_command(self, *, label: str | None = None, **kwds) -> Run:
        """A Run that starts the service (kwds go to Run)."""
        line = _ServiceLine(self.start_line, self.command) if isinstance(self.command, StrLikeMixin) \
            else self.start_line(self.command)
        return self._run(line, label or f"start service {self.service_id}", kwds)

    def stop_command(self, *, label: str | None = None, **kwds) -> Run:
        """A Run that stops the service (already stopped counts as success)."""
        return self._run(self.stop_line(), label or f"stop service {self.service_id}", kwds, STOP_ANSWERS)

    def status_command(self, *, output: str | None = None, label: str | None = None, **kwds) -> Run:
        """A Run that shows the service status, or writes it to remote file ``output``."""
        return self._run(self.status_line(output), label or f"status of service {self.service_id}",
                         kwds, STATUS_ANSWERS)

    def journal_command(self, *, since: str | None = None, label: str | None = None, **kwds) -> Run:
        """A Run that shows the service's journal, from ``since`` (journalctl syntax) if given."""
        return self._run(self.journal_line(since), label or f"journal of service {self.service_id}", kwds)

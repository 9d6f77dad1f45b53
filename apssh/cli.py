"""The apssh, appush and appull commands: one command (or file copy) fanned out to many hosts.

Exit status: 0 when every target succeeded, 1 otherwise, 2 for usage errors.  A summary on
stderr names the failed and unreachable targets, folded as node sets.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import resource
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from .commands import CommandFailedError, Pull, Push, Run, RunScript, RunString
from .formatters import ColonFormatter, Formatter, RawFormatter, SubdirFormatter, TerminalFormatter, TimeColonFormatter
from .keys import default_key_files, load_agent_keys
from .nodes import SshNode
from .sshproxy import HOST_KEY_POLICIES, HostKeyError, SshConnectError
from .targets import Target, TargetError, analyze_target, fold, parse_login, resolve_targets
from .version import __version__

# connections open at once: measured at 250 and 1000 hosts (bench/RESULTS.md, "Third pass"),
# 200 costs 15-20 % less client CPU than 50 for the same wall time (fewer, fuller turns of the
# event loop) and about 5 MB more at 1000 hosts; no limit (apssh 0.27's default, still -w 0)
# saves little more CPU, adds 20+ MB at 1000 hosts and starts every handshake at once
DEFAULT_WINDOW = 200
DEFAULT_TIMEOUT = 30
# a keepalive every 15 s, the server taken for dead after 4 unanswered: noticed within about a minute
DEFAULT_KEEPALIVE = (15.0, 4)
DEFAULT_LOGIN = "root"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command-line mistake: reported in one line, exit status 2."""


@dataclass
class Outcome:
    """What happened on one target: an exit code, or why there is none.

    ``unreachable`` is the connection error's message; ``cause`` says in a few words why
    there is no exit code ("timed out", "connection refused", "connection lost", "local
    error: Too many open files"...), for the summary; ``detail`` is a longer message (an
    SFTP error...) for the -m mark.
    """

    target: Target
    retcod: int | None = None
    unreachable: str | None = None
    cause: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.unreachable is None and self.retcod == 0

    def state(self) -> str:
        """What the -m mark holds: the exit code, or why there is none."""
        if self.unreachable is not None:
            return f"unreachable: {self.cause}" if self.cause else "unreachable"
        if self.retcod is not None:
            return str(int(self.retcod))
        if self.detail:
            return f"failed: {self.detail}"
        return self.cause or "failed"

    def summary_label(self) -> str:
        """How the summary groups this outcome: ok, failed, unreachable (cause), or the cause."""
        if self.ok:
            return "ok"
        if self.unreachable is not None:
            return f"unreachable ({self.cause})" if self.cause else "unreachable"
        if self.retcod is not None or self.cause is None:
            return "failed"
        return self.cause


# file descriptors kept free for everything but connections (stdio, -o files, the event loop...)
RESERVED_FDS = 32


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (as clush does); returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # e.g. a hard limit above fs.nr_open: keep what we have
            pass
    return soft


def window_that_fits(window: int, open_file_limit: int, extra_connections: int = 0) -> int:
    """``window`` lowered so that every connection open at once fits in the open-file limit
    (one descriptor per connection, gateways included, RESERVED_FDS kept free)."""
    in_use = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 16
    room = open_file_limit - in_use - RESERVED_FDS - extra_connections
    return max(1, min(window, room))


# errors of this machine, not of the remote host: never reported as the host's state
LOCAL_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def local_error(exc: BaseException) -> OSError | None:
    """The local resource error (e.g. EMFILE, too many open files) behind ``exc``, if any."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in LOCAL_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def connect_cause(exc: SshConnectError) -> str:
    """A few words saying why a host could not be reached."""
    causes = []
    current: BaseException | None = exc
    while current is not None and current not in causes:
        causes.append(current)
        current = current.__cause__
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
            return "no answer"
        if isinstance(cause, asyncssh.PermissionDenied):
            return "permission denied"
        if isinstance(cause, socket.gaierror):
            return "unknown host"
    if isinstance(exc, HostKeyError):
        return "host key refused"
    if isinstance(exc.__cause__, SshConnectError):
        return f"gateway failed ({connect_cause(exc.__cause__)})"
    return "connection failed"


def _keepalive(text: str) -> tuple[float, int]:
    """``INTERVAL[,COUNT]`` of --keepalive."""
    interval, _, count = text.partition(",")
    try:
        result = float(interval), int(count) if count else DEFAULT_KEEPALIVE[1]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected INTERVAL[,COUNT] in seconds and a count, "
                                         f"e.g. 15,3; got {text!r}") from None
    if result[0] < 0 or result[1] < 1:
        raise argparse.ArgumentTypeError(f"INTERVAL must be 0 or more and COUNT at least 1, got {text!r}")
    return result


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


class _FanOut:
    """What apssh, appush and appull share: targets, keys, connections, window, output, summary."""

    prog = "apssh"
    description = ""

    def __init__(self):
        self.parsed: argparse.Namespace | None = None
        self._gateways: dict[Target, SshNode] = {}
        #: the SshNode of each target once main() ran (as apssh 0.27): .hostname, .username, .gateway
        self.proxies: list[SshNode] | None = None
        self.outdir: Path | None = None
        self._port_formatters: dict[int, Formatter] = {}
        self.stop_reason: str | None = None  # why the run was stopped early, if it was

    # -- arguments
    def parser(self) -> argparse.ArgumentParser:
        parser = _ArgumentParser(prog=self.prog, description=self.description)
        add = parser.add_argument
        add("-t", "--target", dest="targets", action="append", default=[],
            help="hosts: names, user@host:port, gw->host, None->host, node sets such as fit[01-12], "
                 "lists split on spaces or commas, a file of targets or a directory of target files "
                 "(also looked up in ~/.apssh); repeatable")
        add("-x", "--exclude", dest="excludes", action="append", default=[],
            help="targets to leave out (a host alone excludes all its logins); repeatable")
        add("-L", "--list-targets", action="store_true", help="list the selected targets and exit")
        add("-n", "--dry-run", action="store_true", help="show what would run where, and exit")
        add("-l", "--login", default=None, help=f"remote login (default {DEFAULT_LOGIN})")
        add("-p", "--port", type=int, default=None, help="remote SSH port (default 22)")
        add("-g", "--gateway", default=None, help="default gateway, as [user@]host[:port]")
        add("-k", "--key", dest="keys", action="append", default=[],
            help="private key file; repeatable (default: ssh-agent, then ~/.ssh/id_*)")
        add("-K", "--ok-if-no-key", action="store_true",
            help="try to connect even when no private key is found")
        add("-c", "--connect-timeout", type=float, default=DEFAULT_TIMEOUT,
            help=f"seconds to connect and authenticate (default {DEFAULT_TIMEOUT})")
        add("-w", "--window", type=int, default=DEFAULT_WINDOW,
            help=f"at most this many connections open at once, 0 for no limit (default {DEFAULT_WINDOW})")
        add("--timeout", type=float, default=None, metavar="SECONDS",
            help="stop the whole run after SECONDS: commands still running are killed and their "
                 "targets reported as timed out (default: no limit)")
        add("--keepalive", type=_keepalive, default=DEFAULT_KEEPALIVE, metavar="INTERVAL[,COUNT]",
            help=f"an SSH keepalive every INTERVAL seconds; a host that leaves COUNT of them in a "
                 f"row unanswered is reported as not responding (default {DEFAULT_KEEPALIVE[0]:g},"
                 f"{DEFAULT_KEEPALIVE[1]}; 0 disables them)")
        add("--host-key-policy", choices=HOST_KEY_POLICIES, default="accept-new",
            help="strict: only known hosts; accept-new (default): record unknown hosts, refuse "
                 "changed keys; ignore: no check")
        fmt = parser.add_mutually_exclusive_group()
        fmt.add_argument("-r", "--raw-format", action="store_true", help="print lines as they are")
        fmt.add_argument("-tc", "--time-colon-format", action="store_true", help="prefix lines with time and host")
        fmt.add_argument("-f", "--format", default=None,
                         help="line format: @line@ @host@ @user@ @time@, {line} {host} {fqdn} {user} "
                              "{time}, strftime codes such as %%H")
        out = parser.add_mutually_exclusive_group()
        out.add_argument("-o", "--out-dir", default=None,
                         help="write each target's stdout in DIR/<target> and its stderr in "
                              "DIR/<target>.err, byte for byte, replacing the files of an earlier run")
        out.add_argument("-d", "--date-time", action="store_true",
                         help="like -o, in a new directory named after the current date and time")
        add("-m", "--mark", action="store_true",
            help="with -o or -d: write DIR/0ok/<target> or DIR/1failed/<target> holding the exit code")
        add("-v", "--verbose", action="store_true", help="show connection events")
        add("-D", "--debug", action="store_true",
            help="like -v, and also list each target's node before running and its result after")
        add("-V", "--version", action="version", version=f"%(prog)s {__version__}")
        self.add_action_arguments(parser)
        return parser

    def add_action_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The command-specific arguments."""

    def check_arguments(self, args: argparse.Namespace) -> None:
        """Command-specific checks; raise UsageError."""

    # -- set-up
    def output_directory(self, args) -> Path | None:
        if args.out_dir:
            return Path(args.out_dir)
        if not args.date_time:
            return None
        stamp = time.strftime("%Y-%m-%d@%H-%M-%S")
        candidate, index = Path(stamp), 1
        while True:
            # created here, atomically: two runs started in the same second never share it
            try:
                candidate.mkdir(parents=True)
                return candidate
            except FileExistsError:
                index += 1
                candidate = Path(f"{stamp}-{index}")

    def formatter(self, args, outdir: Path | None, port: int = 22) -> Formatter:
        """The terminal formatter for targets on ``port`` (with -o/-d, each target gets its own:
        see target_formatter).  The host prefix keeps the port when it is not 22, so that two
        servers on one address are told apart."""
        if outdir is not None:
            return self.target_formatter(None, args)
        host = "@host@" if port == 22 else f"@host@:{port}"
        if args.raw_format:
            formatter = RawFormatter(verbose=args.verbose)
        elif args.time_colon_format:
            formatter = TimeColonFormatter(f"%H-%M-%S:{host}:@line@", verbose=args.verbose)
        elif args.format:
            formatter = TerminalFormatter(args.format, args.verbose)
        else:
            formatter = ColonFormatter(f"{host}:@line@", verbose=args.verbose)
        formatter.port = port  # -v events name the host as the line prefixes do
        return formatter

    def port_formatter(self, args, port: int, default: Formatter) -> Formatter:
        """The terminal formatter of targets on ``port``: one per port, ``default`` for 22."""
        if port == 22:
            return default
        if port not in self._port_formatters:
            self._port_formatters[port] = self.formatter(args, None, port)
        return self._port_formatters[port]

    def target_formatter(self, target: Target | None, args) -> Formatter:
        """With -o/-d: ``target``'s output goes, byte for byte, to DIR/<target> and DIR/<target>.err,
        named as the -m marks name it."""
        return SubdirFormatter(str(self.outdir), verbose=args.verbose, stderr_suffix=".err",
                               name=target.login() if target is not None else None)

    def forget_earlier_output(self, targets: list[Target]) -> None:
        """-o on a directory of an earlier run: the files of these targets are replaced, not
        appended to, even when a target prints nothing this time."""
        for target in targets:
            for name in (target.login(), f"{target.login()}.err", f"0ok/{target.login()}",
                         f"1failed/{target.login()}"):
                (self.outdir / name).unlink(missing_ok=True)

    @staticmethod
    def check_key_files(args) -> None:
        """A -k file that does not exist is a usage error (exit 2)."""
        missing = [key for key in args.keys if not Path(key).expanduser().is_file()]
        if missing:
            raise UsageError(f"-k/--key: key file not found: {', '.join(missing)}")

    def check_keys(self, args) -> None:
        """No key at all is a clear message, not a failed connection per host."""
        if args.keys:
            return
        if args.ok_if_no_key or default_key_files() or load_agent_keys():
            return
        raise UsageError("no private key found: no ssh-agent keys ($SSH_AUTH_SOCK) and no "
                         "~/.ssh/id_ed25519, id_ecdsa or id_rsa; give one with -k KEY "
                         "(or -K to try anyway)")

    def node_options(self, args, formatter: Formatter) -> dict:
        interval, count = args.keepalive
        return dict(keys=[str(Path(key).expanduser()) for key in args.keys] or None,
                    formatter=formatter, timeout=args.connect_timeout,
                    keepalive_interval=interval, keepalive_count_max=count,
                    host_key_policy=args.host_key_policy, verbose=args.verbose)

    def gateway_node(self, gateway: Target, args, formatter) -> SshNode:
        """One SshNode per gateway, shared by every target behind it."""
        if gateway not in self._gateways:
            if self.outdir is not None:
                formatter = self.target_formatter(gateway, args)
            upstream = self.gateway_node(gateway.gateway, args, formatter) if gateway.gateway else None
            self._gateways[gateway] = SshNode(gateway.hostname, username=gateway.username or args.login,
                                              port=gateway.port or 22, gateway=upstream,
                                              **self.node_options(args, formatter))
        return self._gateways[gateway]

    def node(self, target: Target, args, formatter) -> SshNode:
        gateway = None
        if target.gateway is not None:
            gateway = self.gateway_node(target.gateway, args, formatter)
        elif args.gateway and not target.direct:
            gateway = self.gateway_node(parse_login(args.gateway), args, formatter)
        port = target.port or args.port or 22
        if self.outdir is not None:
            formatter = self.target_formatter(target, args)
        else:
            formatter = self.port_formatter(args, port, formatter)
        return SshNode(target.hostname, username=target.username or args.login,
                       port=port, gateway=gateway,
                       **self.node_options(args, formatter))

    @staticmethod
    def gateways_of(targets: list[Target], args) -> set:
        """The distinct gateways (each one a connection of its own) these targets go through."""
        found = set()
        for target in targets:
            hop = target.gateway or (parse_login(args.gateway) if args.gateway and not target.direct else None)
            while hop is not None:
                found.add(hop)
                hop = hop.gateway
        return found

    # -- running
    def describe_action(self, target: Target) -> str:
        """What runs on ``target``, for --dry-run."""
        return ""

    async def act(self, node: SshNode, target: Target) -> int | None:
        """Do the work on one node; returns its exit code."""
        raise NotImplementedError

    async def run_one(self, target: Target, node: SshNode, window: asyncio.Semaphore) -> Outcome:
        started = False
        try:
            async with window:
                started = True
                try:
                    return self.finished(target, node, await self.act(node, target))
                except SshConnectError as exc:
                    if (local := local_error(exc)) is not None:
                        return self.failed(target, f"local error: {local.strerror}")
                    print(f"{target}: unreachable: {exc}", file=sys.stderr)
                    return Outcome(target, unreachable=str(exc), cause=connect_cause(exc))
                except (OSError, CommandFailedError, ValueError) as exc:
                    if (local := local_error(exc)) is not None:
                        return self.failed(target, f"local error: {local.strerror}")
                    print(f"{target}: failed: {exc}", file=sys.stderr)
                    return Outcome(target, detail=str(exc) or type(exc).__name__)
                except asyncssh.Error as exc:  # SFTP errors: a missing remote file, no permission...
                    print(f"{target}: failed: {exc} ({self.describe_action(target)})", file=sys.stderr)
                    return Outcome(target, detail=str(exc))
                finally:
                    # closing here, not at the end: the window bounds open connections
                    await node.close()
        except asyncio.CancelledError:
            if self.stop_reason is None:  # not our own stop: let it through
                raise
            return self.failed(target, self.stop_reason if started else f"not started ({self.stop_reason})")

    def finished(self, target: Target, node: SshNode, retcod: int | None) -> Outcome:
        """The outcome of an action that returned; no exit code: the node says why."""
        if retcod is not None:
            return Outcome(target, retcod=retcod)
        return self.failed(target, getattr(node, "failure_reason", None) or "no exit status")

    def failed(self, target: Target, cause: str) -> Outcome:
        print(f"{target}: {cause}", file=sys.stderr)
        return Outcome(target, cause=cause)

    async def run_all(self, targets: list[Target], args, formatter) -> list[Outcome]:
        """Every target at once (at most ``-w`` connected, -w 0: no limit, as apssh 0.27); stopped
        by --timeout, SIGINT, SIGTERM or SIGHUP: then running commands are killed and every target
        has an outcome."""
        window = asyncio.Semaphore(args.window or max(1, len(targets)))
        nodes = self.proxies = [self.node(target, args, formatter) for target in targets]
        if args.debug:
            for node in nodes:
                print(f"{self.prog}: using target {node.describe()}", file=sys.stderr)
        tasks = [asyncio.ensure_future(self.run_one(target, node, window))
                 for target, node in zip(targets, nodes, strict=True)]
        everything = asyncio.gather(*tasks)
        stop_requested = asyncio.get_running_loop().create_future()
        handled = self.catch_signals(stop_requested)
        try:
            await asyncio.wait([everything, stop_requested], timeout=args.timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if not everything.done():
                self.stop_reason = (stop_requested.result() if stop_requested.done()
                                    else f"timed out after {args.timeout:g}s")
                for task in tasks:
                    task.cancel()
            outcomes = await everything
            if args.debug:
                for outcome in outcomes:
                    what = f"exit {outcome.retcod}" if outcome.retcod is not None else outcome.state()
                    print(f"{self.prog}: {outcome.target}: {what}", file=sys.stderr)
        finally:
            stop_requested.cancel()
            for gateway in self._gateways.values():
                await gateway.close()
            self.release_signals(handled)  # after the last await: a late Ctrl-C is no traceback
        return outcomes

    STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def catch_signals(self, stop_requested: asyncio.Future) -> list[int]:
        """SIGINT, SIGTERM and SIGHUP stop the run as --timeout does (no traceback)."""
        loop = asyncio.get_running_loop()
        handled = []

        def stop(name: str) -> None:
            if not stop_requested.done():
                stop_requested.set_result(f"interrupted by {name}")

        for name in self.STOP_SIGNALS:
            number = getattr(signal, name)
            try:
                loop.add_signal_handler(number, stop, name)
                handled.append(number)
            except (ValueError, RuntimeError):  # not the main thread: nothing to catch
                pass
        return handled

    @staticmethod
    def release_signals(handled: list[int]) -> None:
        loop = asyncio.get_running_loop()
        for number in handled:
            loop.remove_signal_handler(number)

    def write_marks(self, outdir: Path, outcomes: list[Outcome]) -> None:
        """DIR/0ok/<target> holding 0, or DIR/1failed/<target> holding the exit code or the cause."""
        for outcome in outcomes:
            folder = outdir / ("0ok" if outcome.ok else "1failed")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / outcome.target.login()).write_text(f"{outcome.state()}\n")

    def summary(self, outcomes: list[Outcome]) -> str:
        """One line: how many targets are ok, then each other state (failed, unreachable (cause),
        timed out...) with its targets folded as a node set."""
        groups: dict[str, list[Outcome]] = {"ok": [], "failed": []}
        for outcome in outcomes:
            groups.setdefault(outcome.summary_label(), []).append(outcome)
        parts = [f"{len(groups.pop('ok'))} ok"]
        parts += [f"{len(group)} {label}: {fold(o.target.login() for o in group)}"
                  for label, group in groups.items() if group]
        return f"{self.prog}: {len(outcomes)} targets, " + ", ".join(parts)

    def main(self, *argv: str) -> int:
        """Run the command with ``argv`` (without the program name); returns the exit status."""
        try:
            args = self.parsed = self.parser().parse_args(argv)
            if not args.list_targets:
                self.check_arguments(args)
            if not args.targets:
                raise UsageError("no target given: use -t HOST (repeatable), a file, or a node set")
            if args.mark and not (args.out_dir or args.date_time):
                raise UsageError("-m/--mark needs -o DIR or -d")
            if args.window < 0:
                raise UsageError(f"-w/--window must be a number of connections, 0 for no limit, got {args.window}")
            if args.timeout is not None and not args.timeout > 0:
                raise UsageError(f"--timeout must be a number of seconds above 0, got {args.timeout:g}")
            args.verbose = args.verbose or args.debug
            if args.gateway:
                parse_login(args.gateway)
            targets = resolve_targets(args.targets, args.excludes)
            if not (args.list_targets or args.dry_run):
                self.check_key_files(args)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        except (UsageError, TargetError) as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if args.list_targets or args.dry_run:
            # the nodes, as a run would build them (nothing connects)
            self.proxies = [self.node(target, args, ColonFormatter()) for target in targets]
        if args.list_targets:
            for target in targets:
                print(target)
            return EXIT_OK
        if args.dry_run:
            for target in targets:
                print(f"{target}: {self.describe_action(target)}")
            return EXIT_OK
        if not targets:
            print(f"{self.prog}: every target is excluded: nothing to do", file=sys.stderr)
            return EXIT_OK
        try:
            self.check_keys(args)
        except UsageError as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        wanted = args.window or len(targets)  # -w 0: no limit
        fitting = window_that_fits(wanted, raise_open_file_limit(), len(self.gateways_of(targets, args)))
        if fitting < wanted:
            given = f"-w {args.window}" if args.window else "-w 0 (no limit)"
            print(f"{self.prog}: {given} lowered to {fitting}: that is what the open-file limit "
                  f"({resource.getrlimit(resource.RLIMIT_NOFILE)[0]}) allows; raise it with ulimit -n",
                  file=sys.stderr)
            args.window = fitting
        outdir = self.outdir = self.output_directory(args)
        if outdir is not None:
            self.forget_earlier_output(targets)
        formatter = self.formatter(args, outdir)
        outcomes = asyncio.run(self.run_all(targets, args, formatter))
        if args.mark and outdir is not None:
            self.write_marks(outdir, outcomes)
        print(self.summary(outcomes), file=sys.stderr)
        if outdir is not None:
            print(f"{self.prog}: output in {outdir}", file=sys.stderr)
        if self.stop_reason and self.stop_reason.startswith("interrupted by "):
            # as a shell reports a command killed by a signal
            return 128 + int(getattr(signal, self.stop_reason.removeprefix("interrupted by ")))
        return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED


class Apssh(_FanOut):
    """The apssh command: run one command (or script) on many hosts in parallel."""

    prog = "apssh"
    description = "Run a command on many hosts in parallel over SSH."

    def analyze_target(self, target: str) -> tuple[bool, list[str]]:
        """See :func:`apssh.targets.analyze_target`: ``(True, [names])`` or ``(False, [])``."""
        return analyze_target(target)

    def add_action_arguments(self, parser):
        parser.add_argument("-s", "--script", action="store_true",
                            help="the command is a local script (a file, else an inline script body) "
                                 "copied to each host and run there with the remaining arguments")
        parser.add_argument("-i", "--include", "--includes", dest="includes", action="append", default=[],
                            help="with -s: a local file copied beside the script; repeatable")
        parser.add_argument("commands", nargs=argparse.REMAINDER, help="the remote command and its arguments")

    def check_arguments(self, args):
        if args.commands[:1] == ["--"]:  # apssh -t h -- ls -l: argparse's REMAINDER keeps the --
            args.commands = args.commands[1:]
        if not args.commands:
            raise UsageError("no command given")
        if args.includes and not args.script:
            raise UsageError("-i/--include only makes sense with -s/--script")
        for include in args.includes:
            if not Path(include).is_file():
                raise UsageError(f"include file not found: {include}")

    def command(self):
        args = self.parsed
        if not args.script:
            return Run(*args.commands)
        script, rest = args.commands[0], args.commands[1:]
        if Path(script).is_file():
            return RunScript(script, *rest, includes=args.includes)
        return RunString(script, *rest, includes=args.includes, remote_name="apssh-script")

    def describe_action(self, target):
        return self.command().label_line()

    async def act(self, node, target):
        return await self.command().co_run_remote(node)


def _fill(path: str, node: SshNode) -> str:
    """Path templates: {host} (short name), {fqdn} (as given), {user}."""
    from .formatters import short_hostname

    return (path.replace("{host}", short_hostname(node.hostname)).replace("{fqdn}", node.hostname)
            .replace("{user}", node.username or ""))


def _fill_local(path: str, node: SshNode, target: Target) -> str:
    """Local path templates name targets as the -m marks and -o files do: {host} and {fqdn}
    keep the user@ and :port written in the target, so that two users or two ports on one
    address get distinct local files."""
    from .formatters import short_hostname

    short = Target(short_hostname(target.hostname), target.username, target.port)
    return (path.replace("{host}", short.login()).replace("{fqdn}", target.login())
            .replace("{user}", node.username or ""))


class _Copy(_FanOut):
    """appush and appull: files to or from many hosts over SFTP."""

    remote_prefix = "@:"

    def add_action_arguments(self, parser):
        parser.add_argument("--recurse", "-R", action="store_true", help="copy directories recursively")
        parser.add_argument("--preserve", "-P", action="store_true", help="keep modes and times")
        # '*', not '+': -L needs no paths; check_arguments requires them otherwise
        parser.add_argument("paths", nargs="*", help=self.paths_help)

    def split_paths(self, paths: list[str]) -> tuple[list[str], str]:
        raise NotImplementedError

    def check_arguments(self, args):
        if len(args.paths) < 2:
            raise UsageError(f"expected at least one source and a destination: {self.paths_help}")
        self.sources, self.destination = self.split_paths(args.paths)

    def sftp_options(self) -> dict:
        return {"recurse": self.parsed.recurse, "preserve": self.parsed.preserve}


def _special_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is, when it is neither a regular file nor a directory."""
    kinds = ((stat.S_ISFIFO, "a named pipe (fifo)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((kind for test, kind in kinds if test(mode)), None)


def check_pushable(path: Path, recurse: bool) -> None:
    """Refuse a local source that would block or mean nothing once copied: a fifo (reading it
    waits for a writer, for ever), a socket, a device; inside a directory too with -R.
    A missing path is left to the copy, which reports it per host.

    Raises:
        UsageError naming the path, what it is, and what appush copies.
    """
    def refuse(where: Path, kind: str) -> UsageError:
        return UsageError(f"{where}: is {kind}; appush copies regular files, and directories with -R "
                          f"(copy the data to a regular file first)")

    try:
        mode = path.stat().st_mode
    except OSError:
        return
    kind = _special_kind(mode)
    if kind:
        raise refuse(path, kind)
    if not (recurse and stat.S_ISDIR(mode)):
        return
    for folder, directories, files in os.walk(path, followlinks=False):
        for name in files + directories:
            entry = Path(folder) / name
            try:
                kind = _special_kind(entry.stat().st_mode)
            except OSError:
                continue  # a dangling link: the copy says so
            if kind:
                raise refuse(entry, kind)


class Appush(_Copy):
    """appush local... @:remote: copy local files to many hosts."""

    prog = "appush"
    description = "Copy local files to many hosts over SFTP."
    paths_help = "local paths, then @:remote (e.g. appush -t fit[01-03] a.sh b.conf @:/tmp/)"

    def split_paths(self, paths):
        *local, remote = paths
        if not remote.startswith(self.remote_prefix):
            raise UsageError(f"the destination must be a remote path written @:path, got {remote!r}")
        if any(path.startswith(self.remote_prefix) for path in local):
            raise UsageError("appush copies local files to hosts: only the last path is remote (@:)")
        return local, remote[len(self.remote_prefix):]

    def check_arguments(self, args):
        super().check_arguments(args)
        for source in self.sources:
            if "{" not in source:  # a template is only a path once filled in for a host
                check_pushable(Path(source).expanduser(), args.recurse)

    def describe_action(self, target):
        return f"push {' '.join(self.sources)} -> {self.destination}"

    async def act(self, node, target):
        sources = [_fill(path, node) for path in self.sources]
        return await Push(sources, _fill(self.destination, node) or ".", **self.sftp_options()).co_run_remote(node)


class Appull(_Copy):
    """appull @:remote... local: copy files from many hosts."""

    prog = "appull"
    description = "Copy files from many hosts over SFTP."
    paths_help = ("@:remote paths, then a local path (e.g. appull -t fit[01-03] @:log.txt logs/{host}.txt: "
                  "in the local path {host} is the target as -m names it, with its user@ and :port if "
                  "given); with several hosts and no {host} in it, each host gets a subdirectory")

    def split_paths(self, paths):
        *remote, local = paths
        if local.startswith(self.remote_prefix):
            raise UsageError(f"the destination must be a local path, got {local!r}")
        bad = [path for path in remote if not path.startswith(self.remote_prefix)]
        if bad:
            raise UsageError(f"sources must be remote paths written @:path, got {bad[0]!r}")
        return [path[len(self.remote_prefix):] for path in remote], local

    def describe_action(self, target):
        return f"pull {' '.join(self.sources)} -> {self.destination}"

    async def run_all(self, targets, args, formatter):
        # several hosts into one untemplated destination would overwrite each other
        self.per_host_subdir = len(targets) > 1 and "{" not in self.destination
        return await super().run_all(targets, args, formatter)

    async def act(self, node, target):
        sources = [_fill(path, node) for path in self.sources]
        destination = _fill_local(self.destination, node, target)
        if self.per_host_subdir:
            destination = str(Path(destination) / target.login()) + "/"
        return await Pull(sources, destination, **self.sftp_options()).co_run_remote(node)


def apssh_main() -> None:
    """Console script entry point of apssh."""
    sys.exit(Apssh().main(*sys.argv[1:]))


def appush_main() -> None:
    """Console script entry point of appush."""
    sys.exit(Appush().main(*sys.argv[1:]))


def appull_main() -> None:
    """Console script entry point of appull."""
    sys.exit(Appull().main(*sys.argv[1:]))


def main(*argv: str) -> int:
    """``apssh`` as a function: returns the exit status."""
    return Apssh().main(*argv)

"""The apssh, appush and appull commands: one command (or file copy) fanned out to many hosts.

Exit status: 0 when every target succeeded, 1 otherwise, 2 for usage errors.  A summary on
stderr names the failed and unreachable targets, folded as node sets.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from .commands import Pull, Push, Run, RunScript, RunString
from .formatters import ColonFormatter, Formatter, RawFormatter, SubdirFormatter, TerminalFormatter, TimeColonFormatter
from .keys import default_key_files, load_agent_keys
from .nodes import SshNode
from .sshjob import CommandFailedError
from .sshproxy import HOST_KEY_POLICIES, SshConnectError
from .targets import Target, TargetError, analyze_target, fold, parse_login, resolve_targets
from .version import __version__

DEFAULT_WINDOW = 50
DEFAULT_TIMEOUT = 30
DEFAULT_LOGIN = "root"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command-line mistake: reported in one line, exit status 2."""


@dataclass
class Outcome:
    """What happened on one target: an exit code, or unreachable with a reason."""

    target: Target
    retcod: int | None = None
    unreachable: str | None = None

    @property
    def ok(self) -> bool:
        return self.unreachable is None and self.retcod == 0


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
            help=f"at most this many connections open at once (default {DEFAULT_WINDOW})")
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
                         help="write each host's stdout in DIR/<host> and stderr in DIR/<host>.err")
        out.add_argument("-d", "--date-time", action="store_true",
                         help="like -o, in a new directory named after the current date and time")
        add("-m", "--mark", action="store_true",
            help="with -o or -d: write DIR/0ok/<target> or DIR/1failed/<target> holding the exit code")
        add("-v", "--verbose", action="store_true", help="show connection events")
        add("--version", action="version", version=f"%(prog)s {__version__}")
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

    def formatter(self, args, outdir: Path | None) -> Formatter:
        if outdir is not None:
            formatter = SubdirFormatter(str(outdir), verbose=args.verbose, stderr_suffix=".err")
        elif args.raw_format:
            formatter = RawFormatter(verbose=args.verbose)
        elif args.time_colon_format:
            formatter = TimeColonFormatter(verbose=args.verbose)
        elif args.format:
            formatter = TerminalFormatter(args.format, args.verbose)
        else:
            formatter = ColonFormatter(verbose=args.verbose)
        return formatter

    def check_keys(self, args) -> None:
        """No key at all is a clear message, not a failed connection per host."""
        if args.keys:
            missing = [key for key in args.keys if not Path(key).expanduser().is_file()]
            if missing:
                raise UsageError(f"key file not found: {', '.join(missing)}")
            return
        if args.ok_if_no_key or default_key_files() or load_agent_keys():
            return
        raise UsageError("no private key found: no ssh-agent keys ($SSH_AUTH_SOCK) and no "
                         "~/.ssh/id_ed25519, id_ecdsa or id_rsa; give one with -k KEY "
                         "(or -K to try anyway)")

    def node_options(self, args, formatter: Formatter) -> dict:
        return dict(keys=[str(Path(key).expanduser()) for key in args.keys] or None,
                    formatter=formatter, timeout=args.connect_timeout,
                    host_key_policy=args.host_key_policy, verbose=args.verbose)

    def gateway_node(self, gateway: Target, args, formatter) -> SshNode:
        """One SshNode per gateway, shared by every target behind it."""
        if gateway not in self._gateways:
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
        return SshNode(target.hostname, username=target.username or args.login,
                       port=target.port or args.port or 22, gateway=gateway,
                       **self.node_options(args, formatter))

    # -- running
    def describe_action(self, target: Target) -> str:
        """What runs on ``target``, for --dry-run."""
        return ""

    async def act(self, node: SshNode, target: Target) -> int | None:
        """Do the work on one node; returns its exit code."""
        raise NotImplementedError

    async def run_one(self, target: Target, node: SshNode, window: asyncio.Semaphore) -> Outcome:
        async with window:
            try:
                return Outcome(target, retcod=await self.act(node, target))
            except SshConnectError as exc:
                print(f"{target}: unreachable: {exc}", file=sys.stderr)
                return Outcome(target, unreachable=str(exc))
            except (OSError, CommandFailedError, ValueError) as exc:
                print(f"{target}: failed: {exc}", file=sys.stderr)
                return Outcome(target, retcod=None)
            except asyncssh.Error as exc:  # SFTP errors: a missing remote file, no permission...
                print(f"{target}: failed: {exc} ({self.describe_action(target)})", file=sys.stderr)
                return Outcome(target, retcod=None)
            finally:
                # closing here, not at the end: the window bounds open connections
                await node.close()

    async def run_all(self, targets: list[Target], args, formatter) -> list[Outcome]:
        window = asyncio.Semaphore(max(1, args.window))
        nodes = [self.node(target, args, formatter) for target in targets]
        outcomes = await asyncio.gather(*(self.run_one(target, node, window)
                                          for target, node in zip(targets, nodes, strict=True)))
        for gateway in self._gateways.values():
            await gateway.close()
        return outcomes

    def write_marks(self, outdir: Path, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            folder = outdir / ("0ok" if outcome.ok else "1failed")
            folder.mkdir(parents=True, exist_ok=True)
            value = "None" if outcome.unreachable is not None or outcome.retcod is None else int(outcome.retcod)
            (folder / outcome.target.login()).write_text(f"{value}\n")

    def summary(self, outcomes: list[Outcome]) -> str:
        ok = [o for o in outcomes if o.ok]
        unreachable = [o for o in outcomes if o.unreachable is not None]
        failed = [o for o in outcomes if not o.ok and o.unreachable is None]
        parts = [f"{len(ok)} ok"]
        if failed:
            parts.append(f"{len(failed)} failed: {fold(o.target.login() for o in failed)}")
        if unreachable:
            parts.append(f"{len(unreachable)} unreachable: {fold(o.target.login() for o in unreachable)}")
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
            if args.window < 1:
                raise UsageError(f"-w/--window must be at least 1, got {args.window}")
            if args.gateway:
                parse_login(args.gateway)
            targets = resolve_targets(args.targets, args.excludes)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        except (UsageError, TargetError) as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return EXIT_USAGE
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
        outdir = self.output_directory(args)
        formatter = self.formatter(args, outdir)
        outcomes = asyncio.run(self.run_all(targets, args, formatter))
        if args.mark and outdir is not None:
            self.write_marks(outdir, outcomes)
        print(self.summary(outcomes), file=sys.stderr)
        if outdir is not None:
            print(f"{self.prog}: output in {outdir}", file=sys.stderr)
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
        parser.add_argument("-i", "--include", dest="includes", action="append", default=[],
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

    def describe_action(self, target):
        return f"push {' '.join(self.sources)} -> {self.destination}"

    async def act(self, node, target):
        sources = [_fill(path, node) for path in self.sources]
        return await Push(sources, _fill(self.destination, node) or ".", **self.sftp_options()).co_run_remote(node)


class Appull(_Copy):
    """appull @:remote... local: copy files from many hosts."""

    prog = "appull"
    description = "Copy files from many hosts over SFTP."
    paths_help = ("@:remote paths, then a local path (e.g. appull -t fit[01-03] @:log.txt logs/{host}.txt); "
                  "with several hosts and no {host} in it, each host gets a subdirectory")

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
        destination = _fill(self.destination, node)
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

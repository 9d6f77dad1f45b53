"""The apssh-tui command: run a scenario on screen, headless, as a demo, or replay a record."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from apssh.scenario import load_scenario, parse_definitions
from apssh.yaml_loader import ScenarioError

from .core.connections import HANDSHAKES_AT_ONCE
from .core.jobs_bridge import prime_unicode_detection
from .core.keymap import KeymapError
from .core.session import DEFAULT_RECORD_BASE, Session

DEMO_SCENARIO = Path(__file__).parent / "demo" / "scenario.yaml.j2"


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="apssh-tui", description="Run, watch and steer an apssh scenario (YAML or Python).",
        usage="%(prog)s [options] [scenario] [-- script arguments]",
        epilog="Everything after -- is a Python scenario's own command line (its sys.argv[1:]), "
               "e.g. apssh-tui run.py -- -s SLICE -N 3")
    cli.add_argument("scenario", nargs="?", help="scenario file: .yaml, .yaml.j2 or .py")
    cli.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE",
                     help="a scenario variable (Jinja2 for YAML, scenario() argument for Python); repeatable")
    cli.add_argument("--headless", action="store_true",
                     help="run without a screen: progress lines, a summary, exit 0 only on success")
    cli.add_argument("--replay", metavar="DIR", help="browse the record directory of a past run")
    cli.add_argument("--runs", nargs="?", const="", metavar="DIR",
                     help="list the past runs recorded in DIR (default: the --record-dir), open one (enter) "
                          "or compare two (c, then c)")
    cli.add_argument("--demo", action="store_true",
                     help="start an embedded testbed (a gateway and 4 nodes) and its bundled scenario")
    cli.add_argument("--record-dir", default=str(DEFAULT_RECORD_BASE),
                     help=f"where each run's record directory goes (default ./{DEFAULT_RECORD_BASE})")
    cli.add_argument("--no-record", action="store_true", help="keep no record directory")
    cli.add_argument("--start", action="store_true", help="start the run as soon as the screen opens")
    cli.add_argument("--handshakes", type=int, default=HANDSHAKES_AT_ONCE, metavar="N",
                     help=f"SSH connections set up at once (default {HANDSHAKES_AT_ONCE}: keys stay live while "
                          "hundreds connect; raise it when handshakes wait long on the network; 0: no limit)")
    cli.add_argument("--keys", metavar="FILE",
                     help="YAML file mapping binding ids (listed by F1) to keys, e.g. 'app.start: ctrl+s' "
                          "(default: ~/.config/apssh-tui/keys.yaml when it exists)")
    return cli


def _prime_asynciojobs() -> None:
    # asynciojobs reads sys.stdout.encoding; Textual's stdout has none, so ask before it opens
    prime_unicode_detection()


def load_session(args, variables: dict) -> Session:
    scenario = load_scenario(args.scenario, variables, getattr(args, "script_args", []))
    return Session(scenario, None if args.no_record else args.record_dir)


def keymap_of(args) -> dict[str, str]:
    """The user's keymap (raises KeymapError naming the file and the entry)."""
    from .app import all_bindings
    from .core.keymap import default_keymap_file, load_keymap

    path = args.keys or default_keymap_file()
    return load_keymap(path, {binding.id for binding in all_bindings()}) if path else {}


def run_app(session, title: str, autostart: bool, keymap: dict | None = None,
            handshakes: int | None = HANDSHAKES_AT_ONCE) -> int:
    from .app import ApsshTui  # Textual is imported only when a screen is wanted

    result = ApsshTui(session, title=title, autostart=autostart, keymap=keymap, handshakes=handshakes).run()
    return 0 if result in (True, None) else 1


async def _demo(args) -> int:
    from .demo.testbed import DemoTestbed

    testbed = await DemoTestbed().start()
    try:
        scenario = load_scenario(DEMO_SCENARIO, testbed.variables())
        session = Session(scenario, None if args.no_record else args.record_dir)
        if args.headless:
            from .core.headless import run_headless
            return await run_headless(session)
        from .app import ApsshTui
        app = ApsshTui(session, title="demo: a gateway and 4 nodes (embedded)", autostart=args.start,
                       keymap=args.keymap, handshakes=args.handshakes or None)
        result = await app.run_async()
        return 0 if result in (True, None) else 1
    finally:
        await testbed.stop()


def main(argv: list[str] | None = None) -> int:
    """Run apssh-tui with ``argv``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # what follows -- is the Python scenario's own command line
    script_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = parser().parse_args(argv)
    args.script_args = script_args
    if args.handshakes < 0:
        print(f"apssh-tui: --handshakes must be a number of connections, 0 for no limit, got {args.handshakes}",
              file=sys.stderr)
        return 2
    _prime_asynciojobs()
    try:
        args.keymap = keymap_of(args) if not args.headless else {}
    except KeymapError as exc:
        print(f"apssh-tui: {exc}", file=sys.stderr)
        return 2
    if args.demo:
        return asyncio.run(_demo(args))
    if args.runs is not None:
        from .runs_app import RunsApp
        base = Path(args.runs or args.record_dir)
        if not base.is_dir():
            print(f"apssh-tui: {base}: no such directory (record directories are made by runs; "
                  f"give the directory with --runs DIR)", file=sys.stderr)
            return 2
        chosen = RunsApp(base).run()
        if chosen is None:
            return 0
        args.replay = str(chosen)
    if args.replay:
        from .core.replay import ReplaySession
        try:
            session = ReplaySession(args.replay)
        except (OSError, ValueError) as exc:
            print(f"apssh-tui: {exc}", file=sys.stderr)
            return 2
        return run_app(session, f"replay {args.replay}", False, args.keymap, args.handshakes or None)
    if not args.scenario:
        print("apssh-tui: give a scenario file (or --demo, or --replay DIR)", file=sys.stderr)
        return 2
    try:
        variables = parse_definitions(args.define)
        session = load_session(args, variables)
    except (ScenarioError, ValueError) as exc:
        print(f"apssh-tui: {exc}", file=sys.stderr)
        return 2
    if args.headless:
        from .core.headless import run_headless
        return asyncio.run(run_headless(session))
    return run_app(session, str(args.scenario), args.start, args.keymap, args.handshakes or None)


def console_main() -> None:
    """Console script entry point."""
    sys.exit(main())

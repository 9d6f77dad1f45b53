#!/usr/bin/env python3
"""`make bench`: every scenario of issue 10, the tools alternated, medians into bench/RESULTS.md.

Options (also from the environment, as ``make bench`` passes them):

    --quick       (BENCH_QUICK=1)        sizes 10 100, 2 rounds, small output/transfer/TUI runs
    --sizes       (BENCH_SIZES="10 100 250 1000")   hosts for the hostname scenario
    --rounds      (BENCH_ROUNDS=3)       runs of each tool per scenario (median kept)
    --only        (BENCH_ONLY="hostname output transfer library tui profile")   scenario families
    --label       (BENCH_LABEL=...)      name of this run in RESULTS.md (default: branch@commit)
    --tools       (BENCH_TOOLS="apssh-tui,parallel-ssh")   hostname and output: a subset of the tools

Raw figures of every run go to bench/results/<label>.json; RESULTS.md gets one generated
block per label, between ``<!-- bench10:<label>:begin -->`` and ``<!-- bench10:<label>:end -->``
markers, under the section "Fan-out at scale (issue 10)"; a new run with the same label
replaces its block and leaves every other block (and every other section) alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import report  # noqa: E402
from hosts import BenchHosts  # noqa: E402
from tools import ensure_peers, machine, versions  # noqa: E402

FAMILIES = ["hostname", "output", "transfer", "library", "tui", "profile"]
MODULES = {"library": "bench_fanout"}


def default_label() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=BENCH, capture_output=True, text=True).stdout.strip()
    return f"{git('rev-parse', '--abbrev-ref', 'HEAD')}@{git('rev-parse', '--short', 'HEAD')}"


def options(argv=None) -> argparse.Namespace:
    env = os.environ.get
    quick = env("BENCH_QUICK", "") not in ("", "0")
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--quick", action="store_true", default=quick)
    cli.add_argument("--sizes", default=env("BENCH_SIZES"))
    cli.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "0")) or None)
    cli.add_argument("--only", default=env("BENCH_ONLY", " ".join(FAMILIES)))
    cli.add_argument("--label", default=env("BENCH_LABEL") or default_label())
    cli.add_argument("--tools", default=env("BENCH_TOOLS", ""),
                     help="hostname and output scenarios: a comma-separated subset of the tools (default all)")
    cli.add_argument("--results", default=str(BENCH / "RESULTS.md"))
    args = cli.parse_args(argv)
    args.sizes = [int(s) for s in (args.sizes or ("10 100" if args.quick else "10 100 250 1000")).split()]
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.only = args.only.replace(",", " ").split()
    from tools import ALL_TOOLS, DEFAULT_TOOLS

    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()] or DEFAULT_TOOLS
    if set(args.tools) - set(ALL_TOOLS):
        cli.error(f"unknown tools {sorted(set(args.tools) - set(ALL_TOOLS))}; choose among {ALL_TOOLS}")
    unknown = set(args.only) - set(FAMILIES)
    if unknown:
        cli.error(f"unknown scenario families {sorted(unknown)}; choose among {FAMILIES}")
    return args


def _terminate(signum, frame):
    # a SIGTERM (kill PID) unwinds like Ctrl-C, so that the bench hosts are stopped
    raise KeyboardInterrupt(f"signal {signum}")


def compile_project() -> None:
    """Byte-compile the project's packages, as ``pip install`` does for the peers: the venv's
    install is editable, and with PYTHONDONTWRITEBYTECODE set (as on the CI machines) every start
    of every command would compile our modules again (about 40 ms of CPU each time)."""
    import compileall  # noqa: PLC0415

    for package in ("apssh", "apssh_tui"):
        compileall.compile_dir(str(BENCH.parent / package), quiet=1)


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = options(argv)
    ensure_peers()
    compile_project()
    raw_path = BENCH / "results" / f"{args.label.replace('/', '_')}.json"
    raw_path.parent.mkdir(exist_ok=True)
    data = {"label": args.label, "quick": args.quick, "rounds": args.rounds, "sizes": args.sizes,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "versions": versions(),
            "runs": []}
    if raw_path.exists():  # a run of only some families keeps the others' figures
        previous = json.loads(raw_path.read_text())
        data["runs"] = [r for r in previous.get("runs", []) if r["scenario"] not in _scenarios(args.only)]
        data["started"] = previous.get("started", data["started"])

    def save():
        raw_path.write_text(json.dumps(data, indent=1))
        report.update(Path(args.results), data)

    needed = max([*args.sizes, 1] if "hostname" in args.only else [1])
    if "output" in args.only:
        needed = max(needed, 100)
    if "library" in args.only:
        needed = max(needed, 251 if not args.quick else 51)
    if "profile" in args.only:
        needed = max(needed, 100 if args.quick else 250)
    if "tui" in args.only:
        needed = max(needed, 200 if not args.quick else 50)
    log = _logger(BENCH / "results" / "last-run.log")
    log(f"label {args.label}: {needed} hosts, families {args.only}, sizes {args.sizes}, rounds {args.rounds}")
    with BenchHosts(needed) as bed:
        for family in args.only:
            module = __import__(MODULES.get(family, f"bench_{family}"))
            runs = module.run_family(bed, args, log=log)
            data["runs"] += [r.as_dict() for r in runs]
            save()
    data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    data["machine"]["load at end"] = machine()["load"]
    save()
    log(f"results: {args.results} (raw: {raw_path})")
    return 0


def _scenarios(families: list[str]) -> set[str]:
    names = {"hostname": ["hostname"], "output": ["output", "output -o"], "transfer": ["push", "pull"],
             "library": ["library"], "tui": ["tui"], "profile": ["profile"]}
    return {name for family in families for name in names[family]}


def _logger(path: Path):
    stream = open(path, "a")

    def log(text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        print(line, flush=True)
        stream.write(line + "\n")
        stream.flush()
    return log


if __name__ == "__main__":
    sys.exit(main())

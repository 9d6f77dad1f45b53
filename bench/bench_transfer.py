#!/usr/bin/env python3
"""Transfer: one 256 MB file to one host and back, appush/appull vs apssh 0.27's and scp.

The remote side is the bench account's home (same disk as the local side). Each copy is
checked by size; a failure is a copy of the wrong size (or none).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import APSSH027, OURS, Run, copy_argv, measure  # noqa: E402

TOOLS = [OURS, APSSH027, "scp"]
MEGABYTES = 256


def run_family(bed, args, log=print) -> list[Run]:
    megabytes = 32 if args.quick else MEGABYTES
    size = megabytes << 20
    host = bed.hosts[0]
    local = bed.base / "transfer.bin"
    if not local.exists() or local.stat().st_size != size:
        with open(local, "wb") as out:
            for _ in range(megabytes):
                out.write(os.urandom(1 << 20))
    remote_name = "transfer.bin"
    remote = bed.remote_home / remote_name
    pulled = bed.base / "pulled.bin"
    results = []
    for round_ in range(args.rounds):
        order = TOOLS[round_ % len(TOOLS):] + TOOLS[:round_ % len(TOOLS)]
        for direction in ("push", "pull"):
            for tool in order:
                if direction == "push":
                    remote.unlink(missing_ok=True)
                else:
                    pulled.unlink(missing_ok=True)
                    if not remote.exists() or remote.stat().st_size != size:
                        remote.write_bytes(local.read_bytes())
                        os.chown(remote, *_owner(bed.remote_home))
                argv = copy_argv(tool, bed, host, direction, local if direction == "push" else pulled, remote_name)
                got = measure(argv, env=bed.client_env(), timeout=600)
                copy = remote if direction == "push" else pulled
                failures = 0 if copy.exists() and copy.stat().st_size == size else 1
                result = Run(direction, f"{megabytes} MB", tool, round_, wall=got["wall"], cpu=got["cpu"],
                             maxrss_mb=got["maxrss_mb"], rc=got["rc"], failures=failures,
                             extra={"megabytes": megabytes})
                if failures or got["rc"]:
                    result.error = got["stderr"][-500:]
                results.append(result)
                log(f"{direction} {megabytes} MB {tool:12s} wall {got['wall']:6.2f}s "
                    f"({megabytes / got['wall']:.0f} MB/s) cpu {got['cpu']:5.2f}s failures {failures}")
    pulled.unlink(missing_ok=True)
    remote.unlink(missing_ok=True)
    return results


def _owner(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_uid, stat.st_gid


if __name__ == "__main__":
    import argparse

    from hosts import BenchHosts

    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--rounds", type=int, default=1)
    cli.add_argument("--quick", action="store_true")
    args = cli.parse_args()
    with BenchHosts(1) as bed:
        run_family(bed, args)

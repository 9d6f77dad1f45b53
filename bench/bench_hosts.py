#!/usr/bin/env python3
"""Fan-out to many hosts: ``apssh -t <N loopback hosts> <command>``, wall time and client CPU.

N hosts are N loopback addresses served by N/16 sshd (16 ListenAddress each, stock limits).
The command runs as a subprocess; ``--code DIR`` runs another checkout's apssh (e.g. main)
against the same servers, for a before/after. A fresh HOME with an empty known_hosts is used
for each run, so accept-new records every host (the realistic first run).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testbed import MAX_LISTEN_ADDRESSES, Testbed  # noqa: E402


def run_once(bed: Testbed, targets: list[str], command: str, code: str | None, profile: str | None) -> tuple:
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    (home / ".ssh").mkdir(mode=0o700)
    shutil.copy(bed.client_key, home / ".ssh" / "id_ed25519")
    # a user's usual RSA key besides (not authorized): loading it is part of the setup cost
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(home / ".ssh" / "id_rsa")],
                   check=True)
    env = dict(os.environ, HOME=str(home))
    env.pop("SSH_AUTH_SOCK", None)
    if code:
        env["PYTHONPATH"] = code
    argv = [sys.executable, "-c", "import sys; from apssh.cli import apssh_main; sys.argv[0] = 'apssh'; apssh_main()",
            "-t", " ".join(targets), command]
    if profile:
        argv = [str(Path(sys.executable).parent / "py-spy"), "record", "-o", profile, "-f", "speedscope",
                "--", *argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # the checkout's directory as working directory: its apssh is the one imported
    result = subprocess.run(argv, env=env, capture_output=True, text=True,
                            cwd=code or Path(__file__).resolve().parent.parent)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    answered = sum(1 for line in result.stdout.splitlines() if line.strip())
    shutil.rmtree(home, ignore_errors=True)
    return wall, cpu, answered, result.returncode, result.stderr[-2000:]


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--hosts", type=int, default=250)
    cli.add_argument("--command", default="hostname")
    cli.add_argument("--code", action="append", default=[],
                     help="another checkout to compare (its directory goes first on PYTHONPATH); repeatable")
    cli.add_argument("--repeat", type=int, default=1)
    cli.add_argument("--profile", default=None, help="py-spy speedscope output for this checkout's run")
    args = cli.parse_args()
    addresses = [f"127.0.{3 + i // 250}.{1 + i % 250}" for i in range(args.hosts)]
    with tempfile.TemporaryDirectory() as tmp:
        bed = Testbed(tmp)
        with bed:
            user = bed.second_user or bed.user  # /bin/sh: no slow rc file in the remote shells
            servers = [bed.start_server(f"bench{i}", addresses[i:i + MAX_LISTEN_ADDRESSES])
                       for i in range(0, len(addresses), MAX_LISTEN_ADDRESSES)]
            targets = [f"{user}@{address}:{server.port}" for server in servers for address in server.addresses]
            for label, code in [("this checkout", None)] + [(path, path) for path in args.code]:
                for _ in range(args.repeat):
                    wall, cpu, answered, status, errors = run_once(bed, targets, args.command, code,
                                                                  args.profile if code is None else None)
                    print(f"{label}: {args.hosts} hosts, {answered} answered, exit {status}: "
                          f"wall {wall:.2f} s, client CPU {cpu:.2f} s", flush=True)
                    if status != 0:
                        print(errors)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""parallel-ssh as a user would drive it: one command on many hosts, lines printed as ``host: line``.

Runs in the peers' venv (bench/.peers), not the project's. With --out-dir, each host's stdout
goes to DIR/<host> instead. Exit status 1 when a host failed (each failure is named on stderr).
"""

import argparse
import sys
from pathlib import Path

from pssh.clients import ParallelSSHClient


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--hosts-file", required=True)
    cli.add_argument("--user", required=True)
    cli.add_argument("--key", required=True)
    cli.add_argument("--out-dir")
    cli.add_argument("command")
    args = cli.parse_args()
    hosts = Path(args.hosts_file).read_text().split()
    client = ParallelSSHClient(hosts, user=args.user, pkey=args.key, timeout=60, num_retries=1)
    output = client.run_command(args.command, stop_on_errors=False)
    failed = 0
    write = sys.stdout.write
    for host_out in output:
        if host_out.exception is not None:
            print(f"{host_out.host}: {host_out.exception!r}", file=sys.stderr)
            failed += 1
            continue
        if args.out_dir:
            with open(Path(args.out_dir) / host_out.host, "w") as out:
                for line in host_out.stdout:
                    out.write(line + "\n")
        else:
            host = host_out.host
            for line in host_out.stdout:
                write(f"{host}: {line}\n")
    client.join(output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

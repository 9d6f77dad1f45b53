#!/usr/bin/env python3
"""Where the fan-out spends its CPU: `apssh ... hostname` on N hosts under py-spy (every thread).

py-spy samples the apssh process 250 times a second (the thread holding the GIL) and
writes collapsed stacks; this module folds them into the top functions by own time and by
inclusive time, plus the share of a few buckets (handshake crypto, event loop, set-up work:
ssh config, keys, known_hosts, imports). py-spy lives in the peers' venv (bench/.peers).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import OURS, PEERS, Run, fanout_argv, measure  # noqa: E402

# a sample goes to the first bucket one of whose words is in some frame of its stack (set-up
# first, so that parsing keys or known_hosts counts as set-up, not as crypto)
BUCKETS = [
    ("set-up: ssh config", ("asyncssh/config.py", "SSHClientConfig", "_load_config")),
    ("set-up: keys", ("load_keypairs", "read_private_key", "import_private_key", "load_private_keys",
                      "apssh/keys.py", "load_agent_keys", "load_default_keypairs")),
    ("set-up: known_hosts", ("known_hosts",)),
    ("imports", ("_find_and_load",)),
    ("handshake crypto", ("curve25519", "ed25519", "eddsa", "crypto/", "kex", "cipher", "mac.py", "chacha",
                          "sign (", "verify (", "encrypt", "decrypt")),
]
# otherwise, by the leaf frame's module
LEAF_BUCKETS = [
    ("asyncssh protocol", ("asyncssh/",)),
    ("event loop / sockets", ("asyncio/", "selectors.py", "socket.py", "uvloop")),
    ("apssh code", ("apssh/",)),
]


def fold(raw: str, top: int = 15) -> tuple[list[str], dict]:
    own = collections.Counter()
    inclusive = collections.Counter()
    buckets = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        count = int(count)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += count
        bucket = next((name for name, words in BUCKETS if any(w in f for f in frames for w in words)), None)
        if bucket is None:
            bucket = next((name for name, words in LEAF_BUCKETS if any(w in frames[-1] for w in words)), "other")
        buckets[bucket] += count
    if not total:
        return ["(no samples)"], {}
    lines = [f"{total} samples (250/s, the thread holding the GIL)", "",
             "| bucket | share |", "|---|---|"]
    lines += [f"| {name} | {100 * n / total:.0f}% |" for name, n in buckets.most_common()]
    lines += ["", "| top by own time | share |", "|---|---|"]
    lines += [f"| `{name}` | {100 * n / total:.1f}% |" for name, n in own.most_common(top)]
    lines += ["", "| top by inclusive time | share |", "|---|---|"]
    lines += [f"| `{name}` | {100 * n / total:.1f}% |" for name, n in inclusive.most_common(top + 10)
              if 100 * n / total < 99.5][:top]
    return lines, {name: round(100 * n / total, 1) for name, n in buckets.items()}


def _short(frame: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    for anchor in ("site-packages", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1:]
            break
    return f"{name} ({'/'.join(parts[-2:])})"


def run_family(bed, args, log=print) -> list[Run]:
    hosts = 100 if args.quick else 250
    hosts_file = bed.hosts_file(hosts)
    raw = bed.base / "profile.raw"
    argv = [str(PEERS / "bin" / "py-spy"), "record", "--format", "raw", "--rate", "250", "--threads", "--gil",
            "--output", str(raw), "--", *fanout_argv(OURS, bed, hosts_file, "hostname")]
    got = measure(argv, env=bed.client_env(), stdout=bed.base / "profile.out", timeout=900)
    text = raw.read_text() if raw.exists() else ""
    # py-spy --threads puts "thread (0x...)" frames first: drop them to fold threads together
    text = "\n".join(";".join(f for f in line.split(";") if not f.startswith("thread ("))
                     for line in text.splitlines())
    lines, buckets = fold(text)
    log(f"profile of apssh-tui hostname on {hosts} hosts: wall {got['wall']:.1f}s (under py-spy), buckets {buckets}")
    result = Run("profile", f"{hosts} hosts", OURS, 0, wall=got["wall"], cpu=got["cpu"], maxrss_mb=got["maxrss_mb"],
                 rc=got["rc"], extra={"table": lines, "buckets": buckets})
    if got["rc"]:
        result.error = got["stderr"][-500:]
    return [result]


if __name__ == "__main__":
    import argparse

    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("raw", help="a py-spy --format raw file to fold")
    print("\n".join(fold(Path(cli.parse_args().raw).read_text())[0]))

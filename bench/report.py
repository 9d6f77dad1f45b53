# ruff: noqa: E501 - Markdown table rows and headers read best each on one line
"""Medians of a bench run as Markdown, written into bench/RESULTS.md between markers.

Only the block of the run's label changes; everything else in RESULTS.md (hand-written
analysis, other labels, other issues' sections) is kept as it is.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from pathlib import Path

SECTION = "## Fan-out at scale (issue 10)"
SHARED_NOTE = ("The load column is the load average during each row's runs: the sshd logins of the "
               "run itself raise it, other work on the machine too; absolute figures are noisy, "
               "compare tools within one run (alternated, medians), not across runs.")


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def group(runs: list[dict], scenario: str) -> dict[tuple[str, str], list[dict]]:
    table = defaultdict(list)
    for run in runs:
        if run["scenario"] == scenario:
            table[(run["param"], run["tool"])].append(run)
    return table


def medians(runs: list[dict]) -> dict:
    keys = {k for run in runs for k in run.get("extra", {})}
    result = {"wall": _median([r["wall"] for r in runs]), "cpu": _median([r["cpu"] for r in runs]),
              "maxrss_mb": _median([r["maxrss_mb"] for r in runs]),
              "failures": max((r["failures"] for r in runs if r["failures"] is not None), default=None),
              "n": len(runs), "rc": [r["rc"] for r in runs if r["rc"]]}
    for key in keys:
        values = [r["extra"].get(key) for r in runs]
        if all(isinstance(v, (int, float)) or v is None for v in values):
            result[key] = _median(values)
    return result


def _sort_param(param: str):
    head = param.split()[0]
    return (int(head) if head.isdigit() else 0, param)


def hostname_table(runs) -> list[str]:
    table = group(runs, "hostname")
    if not table:
        return []
    lines = ["#### `hostname` on N hosts", "",
             "| hosts | tool | wall s | client CPU s | CPU ms/host | server CPU s (sshd) | peak RSS MB | failures (worst round) | runs | load |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (param, tool), rs in sorted(table.items(), key=lambda kv: (_sort_param(kv[0][0]), kv[0][1])):
        m = medians(rs)
        lines.append(f"| {param} | {tool} | {_fmt(m['wall'])} | {_fmt(m['cpu'])} | "
                     f"{_fmt(1000 * m['cpu'] / int(param), 1)} | {_fmt(m.get('server_cpu'))} | {_fmt(m['maxrss_mb'], 0)} | "
                     f"{m['failures']} | {m['n']} | {_load(m)} |")
    return lines + [""]


def _load(m: dict) -> str:
    """The median 1-minute load average at the end of the runs (older runs did not record it)."""
    return _fmt(m.get("load"), 1)


def output_table(runs) -> list[str]:
    lines = []
    for scenario, title in (("output", "to /dev/null"), ("output -o", "with `-o DIR`")):
        table = group(runs, scenario)
        if not table:
            continue
        lines += [f"#### output: 2 million lines in all (`seq`), {title}", "",
                  "| hosts | tool | wall s | lines/s | client CPU s | CPU s per million lines | peak RSS MB | failures | runs | load |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for (param, tool), rs in sorted(table.items(), key=lambda kv: (_sort_param(kv[0][0]), kv[0][1])):
            m = medians(rs)
            total = m.get("lines") or 0
            rate = total / m["wall"] if m["wall"] else None
            per_million = m["cpu"] / (total / 1e6) if total else None
            lines.append(f"| {param} | {tool} | {_fmt(m['wall'])} | {_fmt(rate)} | {_fmt(m['cpu'])} | "
                         f"{_fmt(per_million)} | {_fmt(m['maxrss_mb'], 0)} | {m['failures']} | {m['n']} | {_load(m)} |")
        lines.append("")
    return lines


def transfer_table(runs) -> list[str]:
    lines = []
    for scenario in ("push", "pull"):
        table = group(runs, scenario)
        if not table:
            continue
        if not lines:
            lines += ["#### transfer: one file, one host", "",
                      "| direction | size | tool | wall s | MB/s | client CPU s | peak RSS MB | failures | runs | load |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
        for (param, tool), rs in sorted(table.items()):
            m = medians(rs)
            size = m.get("megabytes") or 0
            lines.append(f"| {scenario} | {param} | {tool} | {_fmt(m['wall'])} | {_fmt(size / m['wall'] if m['wall'] else None, 1)} | "
                         f"{_fmt(m['cpu'])} | {_fmt(m['maxrss_mb'], 0)} | {m['failures']} | {m['n']} | {_load(m)} |")
    return lines + ([""] if lines else [])


def library_table(runs) -> list[str]:
    table = group(runs, "library")
    if not table:
        return []
    lines = ["#### library: SshJobs over nodes behind one gateway", "",
             "| jobs / nodes | tool | wall s | jobs/s | client CPU s | CPU ms per job | connections (sshd side) "
             "| peak RSS MB | failures | runs | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (param, tool), rs in sorted(table.items()):
        m = medians(rs)
        jobs = int(param.split()[0])
        lines.append(f"| {param} | {tool} | {_fmt(m['wall'])} | {_fmt(jobs / m['wall'] if m['wall'] else None, 1)} | "
                     f"{_fmt(m['cpu'])} | {_fmt(1000 * m['cpu'] / jobs, 1)} | {_fmt(m.get('connections'), 0)} | "
                     f"{_fmt(m['maxrss_mb'], 0)} | {m['failures']} | {m['n']} | {_load(m)} |")
    return lines + [""]


def tui_table(runs) -> list[str]:
    table = group(runs, "tui")
    if not table:
        return []
    lines = ["#### TUI: hosts streaming lines, keys sent as a terminal does (tab switches and cursor moves)", "",
             "| scenario | lines received | lines/s | app CPU us per line | frames/s | keys | key to screen median ms | "
             "p99 ms | max ms | tab switch p99 ms | cursor p99 ms | RSS start MB | RSS end MB | RSS max MB | client CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (param, _tool), rs in sorted(table.items()):
        m = medians(rs)
        lines.append(f"| {param} | {_fmt(m.get('lines'))} | {_fmt(m.get('lines_per_s'))} | "
                     f"{_fmt(m.get('app_cpu_us_per_line'), 1)} | {_fmt(m.get('frames_per_s'), 1)} | {_fmt(m.get('keys'), 0)} | "
                     f"{_fmt(m.get('key_median_ms'), 1)} | {_fmt(m.get('key_p99_ms'), 1)} | {_fmt(m.get('key_max_ms'), 1)} | "
                     f"{_fmt(m.get('tab_p99_ms'), 1)} | {_fmt(m.get('cursor_p99_ms'), 1)} | {_fmt(m.get('rss_start_mb'), 0)} | "
                     f"{_fmt(m.get('rss_end_mb'), 0)} | {_fmt(m.get('rss_max_mb'), 0)} | {_fmt(m['cpu'])} |")
    memory = [r["extra"]["rss_series"] for rs in table.values() for r in rs if r["extra"].get("rss_series")]
    if memory:
        lines += ["", "RSS over time (MB, one sample every 3 s, first run): " + " ".join(f"{v:.0f}" for v in memory[0])]
    return lines + [""]


def profile_section(runs) -> list[str]:
    profiles = [r for r in runs if r["scenario"] == "profile" and r["extra"].get("table")]
    if not profiles:
        return []
    run = profiles[-1]
    return ([f"#### profile: `apssh ... hostname` on {run['param']} under py-spy "
             f"(wall {run['wall']:.1f} s, CPU {run['cpu']:.1f} s with py-spy)", ""]
            + run["extra"]["table"] + [""])


def targets(runs) -> list[str]:
    """The issue's targets as ratios from this run."""
    rows = []
    host = {key: medians(rs) for key, rs in group(runs, "hostname").items()}
    sizes = sorted({int(p) for p, _ in host})
    for size in sizes:
        ours = host.get((str(size), "apssh-tui"))
        if ours is None:
            continue
        peers = {tool: m for (p, tool), m in host.items() if p == str(size) and not tool.startswith("apssh-tui")}
        # a peer that lost hosts is not "faster": compare with the peers that reached them all
        peers = {tool: m for tool, m in peers.items() if not m["failures"]} or peers
        if peers and size >= 250:
            fastest_tool, fastest = min(peers.items(), key=lambda kv: kv[1]["wall"])
            ratio = ours["wall"] / fastest["wall"]
            rows.append((f"wall at {size} hosts <= 0.75x fastest peer ({fastest_tool})", f"{ratio:.2f}x", ratio <= 0.75))
        if (str(size), "apssh 0.27") in host and size >= 250:
            ratio = ours["cpu"] / host[(str(size), "apssh 0.27")]["cpu"]
            rows.append((f"client CPU at {size} hosts <= apssh 0.27's", f"{ratio:.2f}x", ratio <= 1.0))
        if (str(size), "parallel-ssh") in host and size >= 250:
            ratio = ours["cpu"] / host[(str(size), "parallel-ssh")]["cpu"]
            rows.append((f"client CPU at {size} hosts, aim: parallel-ssh's", f"{ratio:.2f}x", ratio <= 1.0))
        limit = 40 + 50 * size / 1024
        rows.append((f"peak RSS at {size} hosts <= 40 MB + 50 KB/host = {limit:.0f} MB",
                     f"{ours['maxrss_mb']:.0f} MB", ours["maxrss_mb"] <= limit))
        if size >= 1000:
            rows.append((f"failures at {size} hosts with nofile 1024 = 0", str(ours["failures"]), ours["failures"] == 0))
    for scenario in ("output", "output -o"):
        for (param, tool), rs in sorted(group(runs, scenario).items(), key=lambda kv: _sort_param(kv[0][0])):
            if tool != "apssh-tui":
                continue
            m = medians(rs)
            rate = (m.get("lines") or 0) / m["wall"]
            rows.append((f"{scenario} {param}: >= 1 M lines/s through the CLI", f"{rate / 1e6:.2f} M/s", rate >= 1e6))
    for scenario in ("push", "pull"):
        table = {key: medians(rs) for key, rs in group(runs, scenario).items()}
        for (param, tool), m in table.items():
            scp = table.get((param, "scp"))
            if tool == "apssh-tui" and scp:
                ratio = scp["wall"] / m["wall"]
                rows.append((f"{scenario} {param}: throughput >= 0.8x scp", f"{ratio:.2f}x", ratio >= 0.8))
    for (param, _tool), rs in group(runs, "tui").items():
        m = medians(rs)
        if m.get("key_p99_ms") is not None:
            rows.append((f"TUI {param}: p99 key to screen < 100 ms", f"{m['key_p99_ms']:.0f} ms", m["key_p99_ms"] < 100))
        if m.get("rss_growth_mb") is not None:
            rows.append((f"TUI {param}: flat memory (growth over the last 2/3 of the run < 10 MB)",
                         f"{m['rss_growth_mb']:+.0f} MB", m["rss_growth_mb"] < 10))
    if not rows:
        return []
    lines = ["#### Targets of issue 10, as ratios from this run", "", "| target | this run | met |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'yes' if ok else '**MISSED**'} |" for name, value, ok in rows]
    return lines + [""]


def render(data: dict) -> str:
    label = data["label"]
    machine = data["machine"]
    head = [f"<!-- bench10:{label}:begin -->",
            f"### Run `{label}`{' (quick)' if data.get('quick') else ''}: {data['started']}"
            + (f" to {data['finished'][11:]}" if data.get("finished") else " (in progress)"), "",
            f"Machine: {machine['nproc']} cores, {machine['cpu']}, Linux {machine['kernel']}, {machine['memory']}; "
            f"load average at start {machine['load']}" + (f", at end {machine['load at end']}" if "load at end" in machine else "")
            + ". " + SHARED_NOTE, "",
            "Versions: " + "; ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".", "",
            "Medians of the rounds run (column runs; a run slower than 60-90 s is not repeated), tools alternated "
            "(rotated order each round); client CPU = user + system of the tool's whole process tree; peak RSS = "
            "largest single process; failures = worst round (to /dev/null, every host when the exit status is not 0).",
            ""]
    runs = data["runs"]
    body = (targets(runs) + hostname_table(runs) + output_table(runs) + transfer_table(runs)
            + library_table(runs) + tui_table(runs) + profile_section(runs))
    errors = [r for r in runs if r.get("error")]
    if errors:
        body += ["<details><summary>errors seen</summary>", ""]
        body += [f"- {r['scenario']} {r['param']} {r['tool']} round {r['round']}: rc {r['rc']}, "
                 f"`{r['error'][-300:].strip().replace(chr(10), ' / ').replace('`', '')}`" for r in errors[:20]]
        body += ["", "</details>", ""]
    return "\n".join(head + body + [f"<!-- bench10:{label}:end -->"]) + "\n"


def update(path: Path, data: dict) -> None:
    """Write ``data``'s block into ``path`` (replacing the block of the same label)."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    block = render(data)
    label = re.escape(data["label"])
    pattern = re.compile(rf"<!-- bench10:{label}:begin -->.*?<!-- bench10:{label}:end -->\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        if SECTION not in text:
            text = text.rstrip("\n") + f"\n\n{SECTION}\n\n"
        start = text.index(SECTION)
        following = re.search(r"^## ", text[start + len(SECTION):], re.M)
        end = start + len(SECTION) + following.start() if following else len(text)
        text = text[:end].rstrip("\n") + "\n\n" + block + "\n" + text[end:]
    path.write_text(text)

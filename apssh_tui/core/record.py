"""The record directory of a run: states, attempts, exit codes, timings and per-host output.

Layout::

    <dir>/run.json             scenario, start/end times, outcome, jobs and connections
    <dir>/output/<job>/<host>.out | .err | .events      the first attempt
    <dir>/output/<job>/attempt-<n>/<host>.out | ...    attempt n (2, 3...)
    <dir>/output/timeline.tsv                          the order lines arrived in (see core.output)

Every attempt of a job is in run.json too (``history``: state, exit, start and end times).

``apssh-tui --replay <dir>`` reads it back to browse a run after the app has quit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .connections import ConnectionModel
from .states import JobRecord, JobState, StateModel

RUN_FILE = "run.json"
OUTPUT_DIR = "output"


def new_record_directory(base: str | Path, scenario: str | Path) -> Path:
    """A fresh ``<base>/<scenario-name>-<date>@<time>`` directory (never an existing one)."""
    stem = Path(str(scenario)).name.split(".")[0] or "scenario"
    stamp = time.strftime("%Y-%m-%d@%H-%M-%S")
    candidate, index = Path(base) / f"{stem}-{stamp}", 1
    while candidate.exists():
        index += 1
        candidate = Path(base) / f"{stem}-{stamp}-{index}"
    candidate.mkdir(parents=True)
    return candidate


def save_run(directory: Path, scenario: str, model: StateModel, connections: ConnectionModel | None,
             started: float | None, ok: bool | None, runs: int) -> Path:
    """Write ``run.json`` (atomically: a reader never sees half a file)."""
    data = {
        "scenario": str(scenario), "started": started, "saved": time.time(), "succeeded": ok,
        "runs": runs, "summary": model.summary(),
        "jobs": [record.as_dict() for record in model],
        "connections": [{"key": c.key, "label": c.label, "gateway": c.gateway, "state": c.state.value,
                         "reason": c.reason} for c in (connections.connections.values() if connections else [])],
    }
    target = Path(directory) / RUN_FILE
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(data, indent=1), encoding="utf-8")
    partial.replace(target)
    return target


@dataclass
class RecordedRun:
    """A whole run read back: jobs, connections, and where each job's output files are."""

    directory: Path
    scenario: str
    succeeded: bool | None
    summary: str
    jobs: list[JobRecord]
    connections: list[dict] = field(default_factory=list)

    def output_files(self, job: str) -> list[Path]:
        folder = self.directory / OUTPUT_DIR / job
        return sorted(folder.glob("*")) if folder.is_dir() else []


def load_run(directory: str | Path) -> RecordedRun:
    """Read a record directory.

    Raises:
        FileNotFoundError / ValueError naming the directory and what is missing or broken.
    """
    directory = Path(directory)
    path = directory / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not a record directory (no {RUN_FILE}); "
                                f"record directories are written by apssh-tui runs")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        jobs = [JobRecord(key=j["key"], job=None, label=j["label"], node=j["node"], parent=j["parent"],
                          requires=j["requires"], layer=j["layer"], state=JobState(j["state"]),
                          attempts=j["attempts"], started=j["started"], ended=j["ended"] or j["started"],
                          result=j["result"], error=j["error"], nested=j.get("nested", False),
                          history=j.get("history", []))
                for j in data["jobs"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable record ({type(exc).__name__}: {exc})") from None
    return RecordedRun(directory, data.get("scenario", "?"), data.get("succeeded"), data.get("summary", ""),
                       jobs, data.get("connections", []))

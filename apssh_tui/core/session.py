"""One loaded scenario and everything the app keeps about it while it runs."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from apssh.formatters import COMMAND_FORMATTER
from apssh.nodes import LocalNode
from apssh.scenario import Scenario
from apssh.service import Service

from .connections import ConnectionModel, node_key
from .output import JobFormatter, OutputStore
from .record import OUTPUT_DIR, new_record_directory, save_run
from .runner import Runner
from .states import StateModel

DEFAULT_RECORD_BASE = Path("apssh-runs")


@dataclass
class ServiceUse:
    """A Service and a node the scenario runs it on."""

    key: str
    service: Service
    node: object

    @property
    def node_name(self) -> str:
        return node_key(self.node)


def find_services(scheduler) -> dict[str, ServiceUse]:
    """Every (service, node) pair the scenario's jobs use, keyed ``service_id@node``."""
    found: dict[str, ServiceUse] = {}
    for job in scheduler.iterate_jobs(scan_schedulers=True):
        for command in getattr(job, "commands", []):
            service = getattr(command, "service", None)
            if isinstance(service, Service):
                key = f"{service.service_id}@{node_key(job.node)}"
                found.setdefault(key, ServiceUse(key, service, job.node))
    return found


class Session:
    """A scenario, its state model, output store, topology, runner and record directory.

    Args:
        scenario: a loaded Scenario (see apssh.scenario.load_scenario).
        record_base: where record directories are made; None: no record (the output files then go
            to a private temporary directory, removed when the session goes, so that memory stays
            bounded and views still show every line).
        keep_lines: lines of each (job, host) kept in memory at most (see OutputStore).
    """

    def __init__(self, scenario: Scenario, record_base: str | Path | None = DEFAULT_RECORD_BASE,
                 keep_lines: int = 5000):
        self.scenario = scenario
        self.model = StateModel(scenario.scheduler, scenario.jobs)
        self.connections = ConnectionModel(scenario.scheduler)
        self.record_dir = new_record_directory(record_base, scenario.filename) if record_base else None
        if self.record_dir is not None:
            output = self.record_dir / OUTPUT_DIR
        else:
            output = Path(tempfile.mkdtemp(prefix="apssh-tui-output-"))
            weakref.finalize(self, shutil.rmtree, output, True)
        self.store = OutputStore(output, keep_lines=keep_lines)
        self.runner = Runner(self.model, self.store, on_finish=self._finished)
        self.services = find_services(scenario.scheduler)
        self.started: float | None = None
        self.last_ok: bool | None = None

    def _finished(self, ok: bool) -> None:
        self.connections.settle()
        self.save(ok)

    def save(self, ok: bool | None = None) -> Path | None:
        """Write the record directory's run.json (no-op without a record directory)."""
        if ok is not None:
            self.last_ok = ok
        self.store.flush()  # the output files are as current as run.json
        if self.record_dir is None:
            return None
        return save_run(self.record_dir, str(self.scenario.filename), self.model, self.connections,
                        self.started, self.last_ok, self.runner.runs)

    async def run(self) -> bool:
        """Run the whole scenario; the record directory holds its first state at once."""
        self.started = self.started or time.time()
        self.save()
        return await self.runner.run()

    async def service_action(self, key: str, action: str) -> int | None:
        """Run ``start``, ``stop``, ``status`` or ``journal`` of a service on its node.

        Output goes to the store under job ``service:<key>``; returns the exit code.
        """
        use = self.services[key]
        command = getattr(use.service, f"{action}_command")()
        token = COMMAND_FORMATTER.set(JobFormatter(self.store, f"service:{key}"))
        try:
            if isinstance(use.node, LocalNode):
                return await asyncio.ensure_future(command.co_run_local(use.node))
            return await asyncio.ensure_future(command.co_run_remote(use.node))
        finally:
            COMMAND_FORMATTER.reset(token)

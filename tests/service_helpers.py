"""Helpers of the Service tests run for real (test_service_systemd.py, test_service_process.py).

A :class:`Remote` wraps one node and runs, on ONE connection kept open for the whole test:

* Service commands, each in its own non-critical SshJob of an asynciojobs Scheduler (the way a
  scenario runs them), returning ``(job result, stdout, stderr)``;
* plain shell lines (``systemctl is-active``, ``cat``...) to check what really happened.

Every test body is one coroutine run with ``arun``; it closes the node at its end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from asynciojobs import Scheduler
from helpers import RecordingFormatter

from apssh import SshJob


@dataclass
class Outcome:
    """What one command gave: its job's result (0 = success, else the failing exit code) and output."""

    result: int
    stdout: str
    stderr: str


def unique_id(prefix: str = "apssh-test") -> str:
    """A service id used by one test only (units and pid files outlive the test otherwise)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Remote:
    """One node, its connection kept open between the steps of a test."""

    def __init__(self, node):
        self.node = node
        self.formatter = RecordingFormatter()
        node.formatter = self.formatter

    async def step(self, command) -> Outcome:
        """Run one apssh command (e.g. ``service.start_command()``) in a non-critical SshJob."""
        self.formatter.records.clear()
        job = SshJob(self.node, commands=command, keep_connection=True, critical=False)
        assert await Scheduler(job, timeout=60).co_run() is True, job.raised_exception()
        return Outcome(job.result(), "".join(self.formatter.stdout()), "".join(self.formatter.stderr()))

    async def steps(self, *jobs) -> bool:
        """Run a whole scheduler made of ``jobs`` (built by the caller), output recorded."""
        self.formatter.records.clear()
        return await Scheduler(*jobs, timeout=60).co_run()

    async def sh(self, line: str) -> tuple[int, str]:
        """Run a shell line on the node (same connection); its exit code and stdout."""
        sink: list[str] = []
        code = await self.node.run(line, formatter=RecordingFormatter(), stdout_sink=sink)
        return code, "".join(sink)

    async def out(self, line: str) -> str:
        """The stdout of a shell line, stripped."""
        return (await self.sh(line))[1].strip()

    async def wait_until(self, line: str, predicate, timeout: float = 10.0) -> str:
        """Run ``line`` until ``predicate(stdout)`` holds (a state to reach, not a timing); its last stdout."""
        deadline = time.monotonic() + timeout
        while True:
            output = await self.out(line)
            if predicate(output) or time.monotonic() > deadline:
                return output
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.node.close()

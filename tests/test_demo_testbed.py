"""The demo's embedded testbed (asyncssh servers in-process, for ``apssh-tui --demo`` only):
a command whose stdout ends before its stderr keeps its node's connection alive."""

from __future__ import annotations

import asyncio

from asynciojobs import Scheduler
from helpers import RecordingFormatter

from apssh import SshJob, SshNode
from apssh_tui.demo.testbed import DemoTestbed


async def _run_on_demo_node(commands: list[str]) -> tuple[list[SshJob], RecordingFormatter, bool]:
    testbed = await DemoTestbed(nodes=("node1",)).start()
    try:
        keys = [str(testbed.client_key)]
        gateway = SshNode("127.0.0.1", port=testbed.gateway_port, username="root", keys=keys,
                          known_hosts=str(testbed.known_hosts))
        formatter = RecordingFormatter()
        node = SshNode("node1", username="root", gateway=gateway, keys=keys,
                       known_hosts=str(testbed.known_hosts), formatter=formatter)
        jobs = [SshJob(node, command=command, critical=False) for command in commands]
        scheduler = Scheduler(*jobs, timeout=30)
        ok = await scheduler.co_run()
        await scheduler.co_shutdown()
        return jobs, formatter, ok
    finally:
        await testbed.stop()


def test_stderr_after_stdout_closed_reaches_the_client_and_the_connection_survives():
    """stdout closed first, stderr written later: the line arrives, the exit code is kept, and
    another job on the same node (same connection) still succeeds."""
    (late, alongside), formatter, _ = asyncio.run(_run_on_demo_node([
        "exec 1>&-; sleep 0.3; echo late >&2; exit 3",
        "sleep 0.8; echo alongside",
    ]))
    assert late.result() == 3
    assert alongside.result() == 0
    assert formatter.stderr() == ["late\n"]
    assert formatter.stdout() == ["alongside\n"]


def test_stderr_only_command_keeps_its_lines():
    """A command that prints only on stderr (the demo's 'measure') delivers every stderr line."""
    jobs, formatter, _ = asyncio.run(_run_on_demo_node(
        ["exec 1>&-; sleep 0.2; for i in 1 2 3; do echo err$i >&2; done; exit 1"]))
    assert jobs[0].result() == 1
    assert formatter.stderr() == ["err1\n", "err2\n", "err3\n"]

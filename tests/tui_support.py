"""Helpers shared by the apssh-tui tests (test_tui_core, test_tui_app, test_tui_cli).

Everything here talks to the real testbed sshd: nodes are SshNode objects for testbed hosts,
checked against the testbed's known_hosts file; scenarios are YAML templates under
tests/scenarios/ whose addresses and ports are given at run time through the Jinja2 env.
"""

from __future__ import annotations

import asyncio
import pwd
import time
from collections.abc import Callable
from pathlib import Path

from apssh.nodes import SshNode
from apssh.scenario import Scenario, load_scenario
from apssh_tui.core.session import Session

SCENARIOS = Path(__file__).parent / "scenarios"
TUI_SCENARIO = SCENARIOS / "tui.yaml.j2"


def node(testbed, name: str, gateway: SshNode | None = None, **kwds) -> SshNode:
    """An SshNode for testbed host ``name`` (logged in as the testbed user, host keys checked)."""
    host = testbed.host(name)
    kwds.setdefault("known_hosts", testbed.all_known_hosts)
    kwds.setdefault("port", host.port)
    return SshNode(host.address, username=testbed.user, gateway=gateway, **kwds)


def session_of(scheduler, jobs: dict, record_base: Path | None = None, name: str = "test-scenario.py",
               **kwds) -> Session:
    """A Session on an already built scheduler (``jobs``: key -> job, as a YAML scenario gives;
    ``kwds`` go to Session)."""
    return Session(Scenario(Path(name), scheduler, jobs=jobs), record_base=record_base, **kwds)


def scenario_variables(testbed, flag: Path) -> dict:
    """The Jinja2 env of tests/scenarios/tui.yaml.j2 for this testbed; ``flag`` is the file 'check' tests."""
    variables = {"user": testbed.user, "known_hosts": str(testbed.all_known_hosts), "flag": str(flag)}
    for name in ("gw1", "node1", "node2", "node3"):
        host = testbed.host(name)
        variables[f"{name}_addr"] = host.address
        variables[f"{name}_port"] = host.port
    return variables


def definitions(variables: dict) -> list[str]:
    """``-D name=value`` arguments for the command line, from a variables dict."""
    argv = []
    for name, value in variables.items():
        argv += ["-D", f"{name}={value}"]
    return argv


def tui_session(testbed, tmp_path: Path, record_base: Path | None = None, hold: Path | None = None,
                hold_check: Path | None = None) -> Session:
    """A Session of tests/scenarios/tui.yaml.j2 on the testbed ('check' fails until tmp_path/flag exists;
    with ``hold`` the probes, with ``hold_check`` the check, wait until that file exists)."""
    variables = scenario_variables(testbed, tmp_path / "flag")
    if hold is not None:
        variables["hold"] = str(hold)
    if hold_check is not None:
        variables["hold_check"] = str(hold_check)
    scenario = load_scenario(TUI_SCENARIO, variables)
    return Session(scenario, record_base=record_base)


#: the terminal size of the TUI tests and snapshots
SIZE = (140, 40)


def drive(arun, app, body, size=SIZE, timeout: float = 120):
    """Run ``app`` headless at ``size`` and ``await body(pilot)`` inside it; returns the app."""
    async def main():
        async with app.run_test(size=size) as pilot:
            await body(pilot)
    arun(main(), timeout=timeout)
    return app


async def until(predicate: Callable[[], bool], timeout: float = 15.0, pilot=None) -> bool:
    """Wait (letting the loop, or the app through ``pilot``, run) until ``predicate()`` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        if pilot is not None:
            await pilot.pause(0.05)
        else:
            await asyncio.sleep(0.02)
    return True


async def ticked(pilot, ticks: int = 2) -> None:
    """Wait until the app has done ``ticks`` more screen updates (its coalesced tick): what a key
    changed in the model is then on screen. A condition on the app, never a wall-clock pause."""
    app = pilot.app
    start = app.ticks
    assert await until(lambda: app.ticks >= start + ticks, pilot=pilot), "the app stopped ticking"


def remove_service_leftovers(testbed, command: str, service_id: str) -> None:
    """After a service test: kill the remote processes running ``command`` and remove the
    service's files under the testbed user's ~/.apssh-remote/services."""
    for process in testbed.remote_processes(command):
        process.kill()
    remote_home = Path(pwd.getpwnam(testbed.user).pw_dir)
    for leftover in (remote_home / ".apssh-remote" / "services").glob(f"{service_id}.*"):
        leftover.unlink()


def service_app(testbed, service):
    """An app whose scenario's one job asks ``service``'s status on node1: returns the app, the
    service's key in the services table, and ``last_action()`` (that row's last action)."""
    from asynciojobs import Scheduler  # noqa: PLC0415

    from apssh.sshjob import SshJob  # noqa: PLC0415
    from apssh_tui.app import ApsshTui  # noqa: PLC0415

    user_of = SshJob(node(testbed, "node1"), commands=[service.status_command()], label="service status")
    session = session_of(Scheduler(user_of, timeout=30), {"status": user_of})
    app = ApsshTui(session)
    key = next(iter(session.services))

    def last_action() -> str:
        return str(app.query_one("#services-table").get_cell(key, "last action"))
    return app, key, last_action


async def open_job_output(pilot, job: str) -> bool:
    """From the jobs tab, select ``job`` and press 'o': whether its output view came up."""
    app = pilot.app
    app.action_tab("jobs")
    app.jobs_table.select(job)
    await pilot.press("o")
    return await until(lambda: app.output.title().endswith(f"job {job}"), pilot=pilot)


async def start_service(pilot, last_action) -> bool:
    """Go to the services tab (4) and start its highlighted service (u): whether it started."""
    app = pilot.app
    await pilot.press("4")
    assert await until(lambda: app.focused is app.query_one("#services-table"), pilot=pilot)
    await pilot.press("u")
    return await until(lambda: last_action() == "start: exit 0", pilot=pilot)


#!/usr/bin/env python3
"""Regenerate the README screenshots: the real app on the embedded demo testbed.

    .venv/bin/python screenshots/make_screenshots.py

Writes running.svg, failed.svg, gathered.svg, graph.svg, failures.svg, topology.svg and services.svg
beside this file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from apssh.scenario import load_scenario
from apssh_tui.app import ApsshTui
from apssh_tui.cli import DEMO_SCENARIO, _prime_asynciojobs
from apssh_tui.core.session import Session
from apssh_tui.core.states import JobState
from apssh_tui.demo.testbed import DemoTestbed

HERE = Path(__file__).parent
SIZE = (140, 36)


async def wait_until(pilot, predicate, timeout: float = 20.0) -> None:
    """Let the app run until ``predicate()`` holds (or fail loudly)."""
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await pilot.pause(0.1)
    raise TimeoutError("the demo did not reach the expected state")


async def main() -> None:
    _prime_asynciojobs()
    testbed = await DemoTestbed().start()
    try:
        session = Session(load_scenario(DEMO_SCENARIO, testbed.variables()), None)
        model = session.model
        app = ApsshTui(session, title="demo: a gateway and 4 nodes (embedded)")
        async with app.run_test(size=SIZE) as pilot:
            def save(name: str) -> None:
                (HERE / f"{name}.svg").write_text(app.export_screenshot(title=f"apssh-tui {name}"))
                print(f"wrote {HERE / name}.svg")

            await pilot.press("s")
            await wait_until(pilot, lambda: any(r.state == JobState.RUNNING and r.label == "prepare" for r in model))
            await pilot.pause(0.3)
            save("running")
            await wait_until(pilot, lambda: not session.runner.running)
            await pilot.press("n")
            await pilot.pause(0.3)
            save("failed")
            app.jobs_table.select("probe-node1")
            await pilot.press("g")
            await pilot.pause(0.5)
            save("gathered")
            await pilot.press("5")
            await wait_until(pilot, lambda: app.graph.ready)
            await pilot.pause(0.3)
            save("graph")
            await pilot.press("6")
            await pilot.pause(0.5)
            save("failures")
            await pilot.press("3")
            await pilot.pause(0.3)
            save("topology")
            await pilot.press("4")
            await pilot.press("u")
            await pilot.pause(1.5)
            await pilot.press("4", "t")
            await pilot.pause(1.0)
            await pilot.press("4")
            await pilot.pause(0.3)
            save("services")
            await pilot.press("4", "d")
            await pilot.pause(1.0)
    finally:
        await testbed.stop()


if __name__ == "__main__":
    asyncio.run(main())

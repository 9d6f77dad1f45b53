"""Keys first (apssh_tui/core/keyfirst.py): from a key's arrival to the screen refresh after
its binding, the hosts' reads (apssh/_readhold.py) and the garbage collector wait; then both
resume, and no output is lost (driven against the testbed's sshd while jobs stream).  Holds end
in the order the keys come back, and always at their deadline."""

from __future__ import annotations

import asyncio
import gc

from asynciojobs import AbstractJob, Scheduler
from test_tui_app import drive, run_finished
from textual import events
from tui_support import node, session_of, until

from apssh import _readhold
from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui
from apssh_tui.core.keyfirst import KeyFirst

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding

NODES = ("node1", "node2", "node3", "node4")
#: 2,000 lines per job, 50 every 0.05 s: the keys are pressed while the jobs print
STREAM = "i=0; while [ $i -lt 40 ]; do seq -f \"{name} $i.%g\" 1 50; sleep 0.05; i=$((i+1)); done"


def expected_lines(name: str) -> list[str]:
    return [f"{name} {i}.{n}" for i in range(40) for n in range(1, 51)]


def streaming_app(testbed):
    """(nodes, jobs, app): one STREAM job per node of NODES, in an app not started yet."""
    nodes = {name: node(testbed, name) for name in NODES}
    jobs = {name: SshJob(nodes[name], command=STREAM.format(name=name), label=f"stream {name}")
            for name in NODES}
    return nodes, jobs, ApsshTui(session_of(Scheduler(*jobs.values(), timeout=60), jobs))


def test_a_key_runs_its_binding_while_the_reads_are_held_and_no_output_is_lost(testbed, arun):
    """Tab switches and cursor moves while 4 jobs stream: each binding runs with the hosts' reads
    and the garbage collector held; after each key's refresh both resume; every line arrives, in
    order."""
    nodes, jobs, app = streaming_app(testbed)
    seen = {"during": [], "after": []}

    async def body(pilot):
        tab, down = app.action_tab, app.jobs_table.action_cursor_down

        def held_now():  # the app draws no frame (Textual's batch) until the binding ran
            seen["during"].append((_readhold.held(), gc.isenabled(), app._batch_count > 0))

        app.action_tab = lambda name: (held_now(), tab(name))
        app.jobs_table.action_cursor_down = lambda: (held_now(), down())
        await pilot.press("s")
        store = app.session.store
        assert await until(lambda: sum(s.line_count for s in store.streams.values()) > 0, pilot=pilot)
        before = app.keys_first.holds
        for key in ("2", "1", "down") * 4:
            await pilot.press(key)
            assert await until(lambda: not app.keys_first.holding, pilot=pilot)
            seen["after"].append((_readhold.held(), gc.isenabled(), app._batch_count))
        seen["holds"] = app.keys_first.holds - before
        assert await run_finished(pilot)

    drive(arun, app, body)

    assert seen["holds"] == 12
    assert seen["during"] == [(True, False, True)] * 12
    assert seen["after"] == [(False, True, 0)] * 12
    for name in jobs:
        assert app.session.store.current_lines(name, nodes[name].hostname) == expected_lines(name)


def test_a_key_from_the_terminal_is_held_before_the_next_turn_reads_a_socket(testbed, arun):
    """A key the terminal's driver sends is posted to the app by the loop's next callback: its
    hold starts before that turn's socket reads run (Textual's own path ran it a turn later,
    behind every ready socket), and its binding runs."""
    _, _, app = streaming_app(testbed)
    seen = []

    async def body(pilot):
        await pilot.press("s")
        store = app.session.store
        assert await until(lambda: sum(s.line_count for s in store.streams.values()) > 0, pilot=pilot)
        for _ in range(3):
            row = app.jobs_table.cursor_row
            app._driver.send_message(events.Key("down", None))  # as the terminal's input thread does
            await asyncio.sleep(0)  # one turn: the callbacks queued before it ran, no more
            seen.append((app.keys_first.holding, _readhold.held()))
            assert await until(lambda: not app.keys_first.holding, pilot=pilot)
            seen.append(app.jobs_table.cursor_row == row + 1)
        assert await run_finished(pilot)

    drive(arun, app, body)

    assert seen == [(True, True), True] * 3


def test_typing_in_the_filter_prompt_holds_nothing(testbed, arun):
    """Keys typed into a text field never reach the app's bindings: they hold nothing."""
    app = ApsshTui(session_of(Scheduler(SshJob(node(testbed, "node1"), command="true")), {}))
    seen = {}

    async def body(pilot):
        await pilot.press("ctrl+f")
        assert await until(lambda: app.focused is not None and app.focused.id == "jobs-prompt", pilot=pilot)
        before = app.keys_first.holds
        await pilot.press(*"node1")
        seen["holds"] = app.keys_first.holds - before
        seen["typed"] = app.focused.value

    drive(arun, app, body)

    assert seen == {"holds": 0, "typed": "node1"}


class Key:
    """A key event as KeyFirst sees it: an object compared by identity."""


def test_holds_end_in_the_order_the_keys_come_back():
    async def scenario():
        keys = KeyFirst(max_seconds=60)
        kept, first, second, unheld = Key(), Key(), Key(), Key()
        keys.arrived(kept)
        keys.arrived(first)
        keys.arrived(second)
        seen = [(keys.holding, _readhold.held(), gc.isenabled())]
        keys.handled(unheld)  # typed into a text field: never held
        seen.append(keys.holding)
        keys.handled(first)  # 'kept' never came back: it ends now, 'first' waits for its refresh
        keys.on_screen(first)
        seen.append((keys.holding, _readhold.held()))
        keys.handled(second)
        keys.on_screen(second)
        seen.append((keys.holding, _readhold.held(), gc.isenabled()))
        return seen

    assert asyncio.run(scenario()) == [(True, True, False), True, (True, True), (False, False, True)]


class Frames:
    """What KeyFirst's hold_frames holds: a count of the holds not released."""

    def __init__(self):
        self.held = 0

    def hold(self):
        self.held += 1
        released = []

        def release():
            assert not released, "a frames hold released twice"
            released.append(True)
            self.held -= 1
        return release


def test_frames_are_held_from_a_keys_arrival_until_its_binding_ran():
    """The frames' hold ends when the key comes back (its binding ran), before its refresh; the
    keys that never came back end with it; the deadline ends the rest."""
    async def scenario():
        frames = Frames()
        keys = KeyFirst(max_seconds=60, hold_frames=frames.hold)
        kept, first, second = Key(), Key(), Key()
        keys.arrived(kept)
        keys.arrived(first)
        seen = [frames.held]
        keys.handled(first)  # 'kept' ends too
        seen.append((frames.held, keys.holding))
        keys.arrived(second)
        seen.append(frames.held)
        keys.release_all()  # the deadline
        seen.append((frames.held, keys.holding))
        keys.on_screen(first)  # after the deadline: nothing left to end
        seen.append(frames.held)
        return seen

    assert asyncio.run(scenario()) == [2, (0, True), 1, (0, False), 0]


def test_every_hold_ends_at_the_deadline_whatever_the_keys_do():
    async def scenario():
        keys = KeyFirst(max_seconds=0.2)
        keys.arrived(Key())
        held = keys.holding and not gc.isenabled()
        while keys.holding:
            await asyncio.sleep(0.02)
        return held, _readhold.held(), gc.isenabled()

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == (True, False, True)

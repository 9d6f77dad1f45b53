"""Reads held back on every SSH connection of the loop (apssh/_readhold.py), against the
testbed's sshd: while held, the server's answers wait in the kernel and nothing is processed;
at the release, or at the deadline, everything arrives intact and in order."""

from __future__ import annotations

import array
import asyncio
import fcntl
import termios

from helpers import make_node

from apssh import _readhold


def unread_bytes(sock) -> int:
    """Bytes received by the kernel for ``sock`` and not read by the process yet."""
    count = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
    return count[0]


async def until(predicate, timeout: float = 15.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_a_held_connection_reads_nothing_until_the_release(testbed, arun):
    """A command started during a hold: the server's answer reaches the socket but is not read;
    after the release the command completes with its whole output."""
    async def scenario():
        node = make_node(testbed, "node1")
        conn = await node.connect_lazy()
        sock = conn.get_extra_info("socket")
        release = _readhold.hold(max_seconds=60)
        command = asyncio.ensure_future(conn.run("seq 1 20000", check=True))
        waiting = await until(lambda: unread_bytes(sock) > 0)
        done_while_held = command.done()
        held = _readhold.held()
        release()
        result = await asyncio.wait_for(command, 20)
        await node.close()
        return waiting, done_while_held, held, result.stdout, _readhold.held()

    waiting, done_while_held, held, stdout, held_after = arun(scenario())
    assert waiting and held and not done_while_held
    assert stdout == "".join(f"{i}\n" for i in range(1, 20001))
    assert not held_after


def test_a_hold_never_released_ends_at_its_deadline(testbed, arun):
    """A hold whose release is lost still ends: reading resumes after max_seconds."""
    async def scenario():
        node = make_node(testbed, "node1")
        conn = await node.connect_lazy()
        _readhold.hold(max_seconds=0.3)
        result = await asyncio.wait_for(conn.run("echo resumed", check=True), 20)
        await node.close()
        return result.stdout, _readhold.held()

    stdout, held = arun(scenario())
    assert stdout == "resumed\n"
    assert not held


def test_a_connection_opened_during_a_hold_waits_for_it(testbed, arun):
    """A handshake started during a hold is held too: it completes only after the release."""
    async def scenario():
        release = _readhold.hold(max_seconds=60)
        node = make_node(testbed, "node2")
        connecting = asyncio.ensure_future(node.connect_lazy())
        reads = _readhold._LOOPS[asyncio.get_running_loop()]
        # the new socket is paused, and the server's first bytes wait in it
        paused = await until(lambda: any(unread_bytes(t.get_extra_info("socket")) > 0 for t in reads.paused))
        done_while_held = connecting.done()
        release()
        conn = await asyncio.wait_for(connecting, 20)
        result = await conn.run("echo connected", check=True)
        await node.close()
        return paused, done_while_held, result.stdout

    paused, done_while_held, stdout = arun(scenario())
    assert paused and not done_while_held
    assert stdout == "connected\n"


def test_holds_nest_and_a_release_counts_once(testbed, arun):
    """Two holds: releasing one (even twice) keeps reading held; releasing both resumes it."""
    async def scenario():
        node = make_node(testbed, "node1")
        conn = await node.connect_lazy()
        sock = conn.get_extra_info("socket")
        first = _readhold.hold(max_seconds=60)
        second = _readhold.hold(max_seconds=60)
        command = asyncio.ensure_future(conn.run("echo nested", check=True))
        waiting = await until(lambda: unread_bytes(sock) > 0)
        first()
        first()
        still_held = _readhold.held() and not command.done()
        second()
        result = await asyncio.wait_for(command, 20)
        await node.close()
        return waiting, still_held, result.stdout, _readhold.held()

    waiting, still_held, stdout, held_after = arun(scenario())
    assert waiting and still_held
    assert stdout == "nested\n"
    assert not held_after

"""Abort without a shell marker where possible (issue 8, point 6).

sshd signals the sessions of ordinary logins: their commands are sent as they are and stopped
through their channel. It refuses to signal root logins: there ``abort_marker="auto"`` adds the
``export APSSH_RUN_ID=...;`` marker by which a second session kills the command. A kill that
fails is reported to the formatter.
"""

from __future__ import annotations

import asyncio

import pytest
from helpers import RecordingFormatter
from testbed import wait_for

from apssh.nodes import SshNode


def node_for(testbed, user, **kwds):
    host = testbed.host("node2")
    return SshNode(host.address, port=host.port, username=user, known_hosts=testbed.all_known_hosts,
                   formatter=RecordingFormatter(), **kwds)


async def start_then_cancel(testbed, node, pattern):
    """Start ``pattern`` remotely, return its remote command lines, then cancel it."""
    await node.connect_lazy()
    task = asyncio.ensure_future(node.run(pattern))
    while not testbed.remote_processes(pattern) and not task.done():
        await asyncio.sleep(0.05)
    seen = [" ".join(p.cmdline()) for p in testbed.remote_processes(pattern)]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await node.close()
    return seen


def test_ordinary_login_gets_no_marker_and_is_stopped_through_its_channel(testbed, arun):
    """A non-root login with abort_marker="auto": the command is sent without the marker prefix,
    and cancelling it stops it."""
    if not testbed.second_user:
        pytest.skip("needs the second (non-root) login user, created when the tests run as root")
    node = node_for(testbed, testbed.second_user)
    seen = arun(start_then_cancel(testbed, node, "sleep 48.1"))
    assert seen and not any("APSSH_RUN_ID" in line for line in seen)
    assert wait_for(lambda: testbed.remote_processes("sleep 48.1") == [])
    assert not any("could not stop" in message for _, message in node.formatter.events)


def test_root_login_gets_the_marker_by_default_and_is_stopped(testbed, arun):
    """root with abort_marker="auto": the marker is used (sshd does not signal root sessions)."""
    if testbed.user != "root":
        pytest.skip("root logins only exist when the tests run as root")
    node = node_for(testbed, "root")
    seen = arun(start_then_cancel(testbed, node, "sleep 48.2"))
    assert any("APSSH_RUN_ID" in line for line in seen)
    assert wait_for(lambda: testbed.remote_processes("sleep 48.2") == [])


def test_a_kill_that_fails_is_reported_not_swallowed(testbed, arun):
    """root with abort_marker=False: no marker, sshd ignores the signals; the formatter is told
    the command could not be stopped, and why."""
    if testbed.user != "root":
        pytest.skip("root logins only exist when the tests run as root")
    node = node_for(testbed, "root", abort_marker=False)
    try:
        seen = arun(start_then_cancel(testbed, node, "sleep 48.3"))
        assert seen and not any("APSSH_RUN_ID" in line for line in seen)
        messages = [message for _, message in node.formatter.events if "could not stop" in message]
        assert messages and "abort_marker=True" in messages[0]
    finally:
        for process in testbed.remote_processes("sleep 48.3"):
            process.kill()


def test_abort_marker_true_marks_every_command(testbed, arun):
    """abort_marker=True marks commands of an ordinary login too."""
    if not testbed.second_user:
        pytest.skip("needs the second (non-root) login user, created when the tests run as root")
    node = node_for(testbed, testbed.second_user, abort_marker=True)
    seen = arun(start_then_cancel(testbed, node, "sleep 48.4"))
    assert any("APSSH_RUN_ID" in line for line in seen)
    assert wait_for(lambda: testbed.remote_processes("sleep 48.4") == [])

"""Fewer writes and packets per connection (apssh/_writes.py, apssh/_options.py): bulk data
leaves in few large writes, small packets leave at once, no empty MSG_IGNORE before each packet
with GCM, and bytes and their order never change."""

from __future__ import annotations

import asyncio
import logging
import os

import asyncssh
from helpers import RecordingFormatter, make_node
from hypothesis import given, settings
from hypothesis import strategies as st

from apssh import SshNode
from apssh._writes import BULK_BYTES, CoalescedWrites

# ---------------------------------------------------------------- over the testbed's sshd


def test_a_push_leaves_in_far_fewer_writes_than_packets(testbed, arun, tmp_path):
    """An 8 MB push through SFTP: the file arrives intact, and the connection's writes to its
    socket are a fraction of the packets asyncssh asked to write (bulk steps leave together).

    How many packets share a turn of the loop depends on the machine's timing: 20 runs here
    gave 3.3 to 14 packets per write, hence a bound of 2 (without coalescing, it is 1)."""
    local = tmp_path / "blob.bin"
    local.write_bytes(os.urandom(8 << 20))
    remote = tmp_path / "remote"
    remote.mkdir()

    async def scenario():
        node = make_node(testbed, "node1")
        conn = await node.connect_lazy()
        writes = conn.get_extra_info("apssh_writes")
        before_in, before_out = writes.writes_in, writes.writes_out
        await node.put_file_s(local, str(remote))
        counts = writes.writes_in - before_in, writes.writes_out - before_out
        await node.close()
        return counts

    writes_in, writes_out = arun(scenario())
    assert (remote / "blob.bin").read_bytes() == local.read_bytes()
    assert writes_in >= 8 * 32  # at least one write per 32 KB packet
    assert writes_out * 2 <= writes_in


def _sent_packets(arun, caplog, make) -> tuple[str, int, list[str]]:
    """(cipher, exit code of ``echo hello``, names of the packets sent) on the node ``make()``."""
    asyncssh.set_debug_level(3)
    caplog.set_level(logging.DEBUG, logger="asyncssh")

    async def scenario():
        node = make()
        conn = await node.connect_lazy()
        cipher = conn.get_extra_info("send_cipher")
        result = await node.run("echo hello")
        await node.close()
        return cipher, result

    try:
        cipher, result = arun(scenario())
    finally:
        asyncssh.set_debug_level(1)
    sent = [record.getMessage() for record in caplog.records if "Sent MSG_" in record.getMessage()]
    return cipher, result, sent


def test_no_empty_ignore_packet_before_each_packet_with_gcm(testbed, arun, caplog):
    """asyncssh precedes each encrypted packet with an empty MSG_IGNORE (a CBC defence); with
    aes128-gcm none is sent, and the command still runs."""
    cipher, result, sent = _sent_packets(arun, caplog, lambda: make_node(testbed, "node1"))
    assert cipher == "aes128-gcm@openssh.com"
    assert result == 0
    assert any("MSG_CHANNEL_REQUEST" in message for message in sent)
    assert not [message for message in sent if "MSG_IGNORE" in message]


def test_cbc_keeps_the_ignore_packets(testbed, arun, caplog, tmp_path):
    """With a CBC cipher (chosen in the ssh config, the only one the server takes), the
    MSG_IGNORE before each packet stays: it is what protects CBC's predictable IVs."""
    host = testbed.start_server("cbc-only", ["127.0.0.37"], sshd_extra="Ciphers aes128-cbc\n")
    config = tmp_path / "config"
    config.write_text(f"Host {host.address}\n    Ciphers aes128-cbc\n")
    try:
        cipher, result, sent = _sent_packets(arun, caplog, lambda: SshNode(
            host.address, port=host.port, username=testbed.user, keys=[testbed.client_key],
            ssh_config=str(config), formatter=RecordingFormatter()))
    finally:
        testbed.stop_server(host)
    assert cipher == "aes128-cbc"
    assert result == 0
    assert len([message for message in sent if "MSG_IGNORE" in message]) >= 3


# ---------------------------------------------------------------- the transport alone, on loopback TCP


class _Sink(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        self.closed.set_result(None)


async def _pair():
    """(CoalescedWrites over a client transport, the server side's sink, the server)."""
    loop = asyncio.get_running_loop()
    sink_ready = loop.create_future()

    def server_side():
        sink = _Sink()
        sink_ready.set_result(sink)
        return sink

    server = await loop.create_server(server_side, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    return CoalescedWrites(transport), await sink_ready, server


# a step: one write, or several writes under one hold; then maybe the end of the loop's turn
steps = st.lists(st.tuples(st.lists(st.binary(min_size=1, max_size=3 * BULK_BYTES), min_size=1, max_size=4),
                           st.booleans(), st.booleans()), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(steps)
def test_bytes_and_their_order_never_change(plan):
    """Whatever the mix of small and bulk writes, held or not, with or without turns of the loop
    between them: the peer receives exactly the bytes written, in order, once closed."""

    async def scenario():
        writes, sink, server = await _pair()
        expected = b""
        for chunks, held, turn in plan:
            if held:
                writes.hold()
            for chunk in chunks:
                writes.write(chunk)
                expected += chunk
            if held:
                writes.release()
            if turn:
                await asyncio.sleep(0)
        writes.close()
        await sink.closed
        server.close()
        return expected, bytes(sink.data)

    expected, received = asyncio.run(scenario())
    assert received == expected


def test_a_small_step_is_handed_to_the_transport_before_write_returns():
    """A command, a window update, an EOF: nothing small waits for a later turn of the loop,
    and it takes any bulk data pending before it along."""

    async def scenario():
        writes, sink, server = await _pair()
        writes.write(b"x" * BULK_BYTES)  # bulk: waits for the end of this turn
        pending_after_bulk = writes.get_write_buffer_size()
        writes.hold()
        writes.write(b"ignore")
        writes.write(b"packet")
        pending_while_held = writes.get_write_buffer_size()
        writes.release()  # small step: everything leaves now
        handed = writes.writes_out
        writes.close()
        await sink.closed
        server.close()
        return pending_after_bulk, pending_while_held, handed, bytes(sink.data)

    pending_after_bulk, pending_while_held, handed, received = asyncio.run(scenario())
    assert pending_after_bulk == BULK_BYTES
    assert pending_while_held == BULK_BYTES + len(b"ignorepacket")
    assert handed == 1  # one write for the bulk data and the small step after it
    assert received == b"x" * BULK_BYTES + b"ignorepacket"


def test_bulk_writes_of_one_turn_leave_in_one_write():
    """Several bulk steps in the same turn of the loop (the data packets of several tasks)
    wait for the end of the turn and leave in a single write, in order."""

    async def scenario():
        writes, sink, server = await _pair()
        chunks = [bytes([n]) * BULK_BYTES for n in range(10)]
        for chunk in chunks:
            writes.write(chunk)
        handed_in_the_turn = writes.writes_out
        await asyncio.sleep(0)
        handed_after_the_turn = writes.writes_out
        writes.close()
        await sink.closed
        server.close()
        return handed_in_the_turn, handed_after_the_turn, b"".join(chunks), bytes(sink.data)

    in_the_turn, after_the_turn, expected, received = asyncio.run(scenario())
    assert in_the_turn == 0
    assert after_the_turn == 1
    assert received == expected

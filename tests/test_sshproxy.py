"""SshProxy / SshNode against the real sshd of the testbed: connections, output, SFTP, gateways."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat

import asyncssh
import psutil
import pytest
from helpers import RecordingFormatter, came_through, connection_snapshot, known_node, make_chain, run_expecting
from testbed import Testbed

from apssh.nodes import SshNode
from apssh.sshproxy import ExitCode, SshConnectError, SshProxy, local_username


# ------------------------------------------------------------------ helpers
def my_connections(testbed: Testbed, name: str) -> set:
    """Established connections to testbed host ``name`` opened by this very process."""
    return {c.client for c in testbed.established_connections(testbed.host(name))
            if c.client_pid == os.getpid()}


def free_port(address: str) -> int:
    """A port on ``address`` where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def through_node_log(testbed: Testbed, node_name: str, gateway_name: str) -> bool:
    """True if the node's sshd log shows a login from a connection opened by the gateway's sshd."""
    node, gateway = testbed.host(node_name), testbed.host(gateway_name)
    gateway_pids = testbed.sshd_pids(gateway)
    for connection in testbed.established_connections(node):
        if connection.client_pid in gateway_pids:
            address, port = connection.client
            if testbed.count_log(node, f"Accepted publickey for {testbed.user} from {address} port {port} ssh2"):
                return True
    return False


# ------------------------------------------------------------- connection
def test_connect_lazy_concurrent_calls_share_one_connection(testbed, arun):
    """Many coroutines calling connect_lazy at once open a single SSH connection."""
    async def scenario():
        node = known_node(testbed, "node1")
        before = my_connections(testbed, "node1")
        connections = await asyncio.gather(*(node.connect_lazy() for _ in range(20)))
        opened = my_connections(testbed, "node1") - before
        await node.close()
        return connections, opened

    connections, opened = arun(scenario())
    assert all(connection is connections[0] for connection in connections)
    assert len(opened) == 1


def test_is_connected_before_and_after_connect(testbed, arun):
    """is_connected is False before connect_lazy, True after it, False after close."""
    async def scenario():
        node = known_node(testbed, "node1")
        states = [node.is_connected()]
        await node.connect_lazy()
        states.append(node.is_connected())
        await node.close()
        states.append(node.is_connected())
        return states

    assert arun(scenario()) == [False, True, False]


def test_close_then_run_reconnects_lazily(testbed, arun):
    """After close(), the next run() opens a new connection by itself."""
    async def scenario():
        formatter = RecordingFormatter()
        node = known_node(testbed, "node1", formatter=formatter)
        before = my_connections(testbed, "node1")
        await node.run("echo one")
        first = node.conn
        await node.close()
        closed = my_connections(testbed, "node1") - before
        status = await node.run("echo two")
        reconnected = node.is_connected() and node.conn is not first
        await node.close()
        return status, reconnected, closed, formatter.stdout()

    status, reconnected, still_open, lines = arun(scenario())
    assert status == 0
    assert reconnected
    assert not still_open
    assert lines == ["one\n", "two\n"]


def test_run_returns_exit_status(testbed, arun):
    """run() returns the remote command's exit status."""
    async def scenario():
        node = known_node(testbed, "node2")
        statuses = [await node.run("true"), await node.run("exit 3"), await node.run("false")]
        await node.close()
        return statuses

    statuses = arun(scenario())
    assert statuses == [0, 3, 1]
    assert all(isinstance(status, ExitCode) and status.signal is None for status in statuses)


def test_stdout_and_stderr_kept_apart(testbed, arun):
    """Lines written to stdout and stderr reach the formatter with their own datatype."""
    formatter = RecordingFormatter()

    async def scenario():
        node = known_node(testbed, "node2", formatter=formatter)
        await node.run("echo out1; echo err1 >&2; echo out2; echo err2 >&2")
        await node.close()

    arun(scenario())
    assert formatter.stdout() == ["out1\n", "out2\n"]
    assert formatter.stderr() == ["err1\n", "err2\n"]


def test_lines_reassembled_across_packets(testbed, arun):
    """A line sent in two packets reaches the formatter as one line."""
    formatter = RecordingFormatter()

    async def scenario():
        node = known_node(testbed, "node2", formatter=formatter)
        await node.run("printf 'ab'; sleep 0.2; printf 'cd\\n'; printf 'e'; sleep 0.1; printf 'f'")
        await node.close()

    arun(scenario())
    assert formatter.stdout() == ["abcd\n", "ef"]


def test_undecodable_bytes_are_replaced(testbed, arun):
    """Bytes that are not UTF-8 become U+FFFD and the run goes on."""
    formatter = RecordingFormatter()

    async def scenario():
        node = known_node(testbed, "node2", formatter=formatter)
        status = await node.run("printf '\\377\\376 ok\\n'; echo after")
        await node.close()
        return status

    assert arun(scenario()) == 0
    assert formatter.stdout() == ["\ufffd\ufffd ok\n", "after\n"]


def test_multibyte_char_split_across_packets_stays_whole(testbed, arun):
    """A UTF-8 character whose bytes come in two packets is decoded whole."""
    formatter = RecordingFormatter()

    async def scenario():
        node = known_node(testbed, "node2", formatter=formatter)
        # the euro sign is e2 82 ac: split after its first byte, then after its second
        await node.run("printf 'x\\342'; sleep 0.2; printf '\\202'; sleep 0.2; printf '\\254y\\n'")
        await node.close()

    arun(scenario())
    assert formatter.stdout() == ["x\u20acy\n"]


def test_command_killed_by_signal_reports_signal_name(testbed, arun):
    """A remote command killed by TERM returns an ExitCode whose .signal is 'TERM'."""
    async def scenario():
        node = known_node(testbed, "node2")
        status = await node.run("kill -TERM $$")
        await node.close()
        return status

    status = arun(scenario())
    assert isinstance(status, ExitCode)
    assert status.signal == "TERM"
    assert status == 128 + signal.SIGTERM


def test_output_delivered_in_batches(testbed, arun):
    """100000 lines arrive complete and in order, in far fewer formatter.lines() calls."""
    formatter = RecordingFormatter()

    async def scenario():
        node = known_node(testbed, "node3", formatter=formatter)
        status = await node.run("seq 100000")
        await node.close()
        return status

    assert arun(scenario()) == 0
    assert formatter.stdout() == [f"{i}\n" for i in range(1, 100001)]
    assert formatter.calls < 100000 // 10


def test_sshproxy_username_defaults_to_local_user(testbed, arun, monkeypatch):
    """SshProxy with username=None logs in as the local user."""
    if testbed.second_user is None:
        pytest.skip("needs the second user (root)")
    # getpass.getuser() reads LOGNAME/USER first: pretend we are the second user locally
    monkeypatch.setenv("LOGNAME", testbed.second_user)
    monkeypatch.setenv("USER", testbed.second_user)
    formatter = RecordingFormatter()
    host = testbed.host("node3")

    async def scenario():
        proxy = SshProxy(host.address, port=host.port, formatter=formatter, keys=[testbed.client_key],
                         known_hosts=testbed.all_known_hosts)
        await proxy.run("id -un")
        await proxy.close()
        return proxy.username

    assert local_username() == testbed.second_user
    assert arun(scenario()) == testbed.second_user
    assert formatter.stdout() == [f"{testbed.second_user}\n"]


def test_sshnode_username_defaults_to_root(testbed, arun, monkeypatch):
    """SshNode with username=None logs in as root, whatever the local user is."""
    if testbed.second_user is not None:
        monkeypatch.setenv("LOGNAME", testbed.second_user)
        monkeypatch.setenv("USER", testbed.second_user)
    formatter = RecordingFormatter()
    host = testbed.host("node3")

    async def scenario():
        node = SshNode(host.address, port=host.port, formatter=formatter, known_hosts=testbed.all_known_hosts)
        await node.run("id -un")
        await node.close()
        return node.username

    assert arun(scenario()) == "root"
    assert formatter.stdout() == ["root\n"]


def test_explicit_keys_are_used(testbed, arun, tmp_path):
    """keys=[path] authenticates with that key file, even when it is not in ~/.ssh."""
    key = tmp_path / "elsewhere" / "my_key"
    key.parent.mkdir()
    key.write_bytes(testbed.client_key.read_bytes())
    key.chmod(0o600)

    async def scenario():
        node = known_node(testbed, "node3", keys=[str(key)])
        status = await node.run("true")
        await node.close()
        return status

    assert arun(scenario()) == 0


def test_wrong_key_gives_permission_denied(testbed, arun, tmp_path):
    """A key the host does not accept gives SshConnectError naming the host and 'permission denied'."""
    wrong = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong))
    host = testbed.host("node3")

    async def scenario():
        node = known_node(testbed, "node3", keys=[str(wrong)])
        return await run_expecting(node, SshConnectError)

    error, _ = arun(scenario())
    assert host.address in str(error)
    assert "permission denied" in str(error).lower()
    assert error.hostname == host.address


def test_closed_port_names_host_and_port(testbed, arun):
    """Connecting to a port where nothing listens gives SshConnectError naming host:port."""
    address = testbed.host("node4").address
    port = free_port(address)

    async def scenario():
        node = SshNode(address, port=port, username=testbed.user, formatter=RecordingFormatter())
        with pytest.raises(SshConnectError) as info:
            await node.connect_lazy()
        return info.value

    error = arun(scenario())
    assert f"{address}:{port}" in str(error)
    assert not isinstance(error.__cause__, SshConnectError)


def test_connect_timeout_on_silent_server(testbed, arun):
    """A server that accepts but never speaks gives SshConnectError mentioning the timeout."""
    async def scenario():
        accepted = []

        def silent(reader, writer):
            accepted.append(writer)  # keep the socket open, never write

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        node = SshNode("127.0.0.1", port=port, username=testbed.user, timeout=0.5,
                       formatter=RecordingFormatter())
        try:
            with pytest.raises(SshConnectError) as info:
                await node.connect_lazy()
        finally:
            for writer in accepted:
                writer.close()
            server.close()
            await server.wait_closed()
        return info.value, len(accepted), port

    error, accepted, port = arun(scenario(), timeout=20)
    assert accepted == 1
    assert "0.5s" in str(error)
    assert f"127.0.0.1:{port}" in str(error)


def test_created_inside_running_loop(testbed, arun):
    """An SshNode constructed inside a coroutine (running loop) connects and runs."""
    async def scenario():
        formatter = RecordingFormatter()
        node = known_node(testbed, "node4", formatter=formatter)
        status = await node.run("echo inside")
        await node.close()
        return status, formatter.stdout()

    assert arun(scenario()) == (0, ["inside\n"])


def test_node_reused_in_a_new_event_loop(testbed, arun):
    """A node connected in one event loop reconnects in the next one and leaves no connection behind."""
    formatter = RecordingFormatter()
    node = known_node(testbed, "node4", formatter=formatter)
    before = my_connections(testbed, "node4")
    assert arun(node.run("echo first")) == 0

    async def second():
        status = await node.run("echo second")
        await node.close()
        return status

    assert arun(second()) == 0
    assert formatter.stdout() == ["first\n", "second\n"]
    assert not my_connections(testbed, "node4") - before


def test_keepalive_is_on_by_default(testbed):
    """SshProxy sends keepalives unless told otherwise."""
    host = testbed.host("node4")
    assert SshProxy(host.address, port=host.port).keepalive_interval > 0
    assert SshNode(host.address, port=host.port).keepalive_interval > 0


def test_keepalive_notices_dead_peer(testbed, arun):
    """With keepalive_interval, a frozen server is noticed: run() ends and the node is seen closed."""
    host = testbed.host("node4")

    def session_processes(local_port):
        """sshd processes (not the listener) holding the server end of our connection."""
        found = []
        for pid in testbed.sshd_pids(host) - {host.pid}:
            try:
                process = psutil.Process(pid)
                if any(c.raddr and c.raddr.port == local_port for c in process.net_connections("tcp")):
                    found.append(process)
            except psutil.NoSuchProcess:
                pass
        return found

    async def scenario():
        node = known_node(testbed, "node4", keepalive_interval=0.3)
        conn = await node.connect_lazy()
        local_port = conn.get_extra_info("sockname")[1]
        frozen = session_processes(local_port)
        assert frozen, "no sshd process found for our connection"
        for process in frozen:
            process.send_signal(signal.SIGSTOP)
        try:
            # without keepalive this would wait forever for the channel to open
            try:
                outcome = await asyncio.wait_for(node.run("echo never"), 10)
            except TimeoutError:
                outcome = "dead peer not noticed within 10 s"
            except (SshConnectError, OSError, asyncssh.Error) as exc:
                outcome = exc
            connected = node.is_connected()
        finally:
            for process in frozen:
                try:
                    process.send_signal(signal.SIGCONT)
                except psutil.NoSuchProcess:
                    pass
        await node.close()
        return outcome, connected

    outcome, connected = arun(scenario(), timeout=30)
    assert outcome is None or isinstance(outcome, (SshConnectError, asyncssh.Error)), outcome
    assert not connected


# ------------------------------------------------------------------- SFTP
def test_sftp_connect_lazy_and_is_sftp_connected(testbed, arun):
    """sftp_connect_lazy starts one SFTP client shared by concurrent callers; close stops it."""
    async def scenario():
        node = known_node(testbed, "node1")
        states = [node.is_sftp_connected()]
        clients = await asyncio.gather(*(node.sftp_connect_lazy() for _ in range(5)))
        states.append(node.is_sftp_connected())
        await node.close()
        states.append(node.is_sftp_connected())
        return states, clients

    states, clients = arun(scenario())
    assert states == [False, True, False]
    assert all(client is clients[0] for client in clients)
    assert isinstance(clients[0], asyncssh.SFTPClient)


def test_mkdir_creates_parents(testbed, arun, tmp_path):
    """mkdir creates a remote directory and its parents, and accepts an existing one."""
    target = tmp_path / "a" / "b" / "c"

    async def scenario():
        node = known_node(testbed, "node1")
        results = [await node.mkdir(str(target)), await node.mkdir(str(target))]
        await node.close()
        return results

    assert arun(scenario()) == [True, True]
    assert target.is_dir()


def test_put_file_s_copies_files_into_directory(testbed, arun, tmp_path):
    """put_file_s copies several local files into a remote directory."""
    local = tmp_path / "local"
    local.mkdir()
    (local / "one.txt").write_text("one\n")
    (local / "two.txt").write_text("two\n")
    remote = tmp_path / "remote"
    remote.mkdir()

    async def scenario():
        node = known_node(testbed, "node1")
        result = await node.put_file_s([local / "one.txt", str(local / "two.txt")], str(remote))
        await node.close()
        return result

    assert arun(scenario()) is True
    assert (remote / "one.txt").read_text() == "one\n"
    assert (remote / "two.txt").read_text() == "two\n"


def test_put_file_s_recurse_and_preserve(testbed, arun, tmp_path):
    """put_file_s passes recurse and preserve to SFTP: a tree is copied with its mtimes."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "leaf.txt").write_text("leaf\n")
    os.utime(tree / "sub" / "leaf.txt", (1_000_000_000, 1_000_000_000))
    remote = tmp_path / "remote"
    remote.mkdir()

    async def scenario():
        node = known_node(testbed, "node1")
        await node.put_file_s(str(tree), str(remote), recurse=True, preserve=True)
        await node.close()

    arun(scenario())
    copied = remote / "tree" / "sub" / "leaf.txt"
    assert copied.read_text() == "leaf\n"
    assert copied.stat().st_mtime == 1_000_000_000


def test_put_file_s_without_recurse_refuses_directory(testbed, arun, tmp_path):
    """Without recurse=True, put_file_s does not copy a directory tree."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "leaf.txt").write_text("leaf\n")
    remote = tmp_path / "remote"
    remote.mkdir()

    async def scenario():
        node = known_node(testbed, "node1")
        try:
            with pytest.raises((OSError, asyncssh.SFTPError)):
                await node.put_file_s(str(tree), str(remote))
        finally:
            await node.close()

    arun(scenario())
    assert not (remote / "tree" / "leaf.txt").exists()


def test_get_file_s_single_file_to_new_name(testbed, arun, tmp_path):
    """A single remote file pulled to a new local name lands as that file, parents created."""
    source = tmp_path / "remote" / "data.txt"
    source.parent.mkdir()
    source.write_text("data\n")
    target = tmp_path / "missing" / "parents" / "renamed.txt"

    async def scenario():
        node = known_node(testbed, "node1")
        result = await node.get_file_s(str(source), str(target))
        await node.close()
        return result

    assert arun(scenario()) is True
    assert target.is_file()
    assert target.read_text() == "data\n"


def test_get_file_s_several_files_into_new_directory(testbed, arun, tmp_path):
    """Several remote files go into a local directory that is created if missing."""
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "a.txt").write_text("a\n")
    (remote / "b.txt").write_text("b\n")
    target = tmp_path / "new" / "dir"

    async def scenario():
        node = known_node(testbed, "node1")
        await node.get_file_s([str(remote / "a.txt"), str(remote / "b.txt")], str(target))
        await node.close()

    arun(scenario())
    assert (target / "a.txt").read_text() == "a\n"
    assert (target / "b.txt").read_text() == "b\n"


def test_get_file_s_recurse_and_preserve(testbed, arun, tmp_path):
    """get_file_s passes recurse and preserve to SFTP: a remote tree comes back with its mtimes."""
    tree = tmp_path / "remote" / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "leaf.txt").write_text("leaf\n")
    os.utime(tree / "sub" / "leaf.txt", (1_000_000_000, 1_000_000_000))
    target = tmp_path / "local"

    async def scenario():
        node = known_node(testbed, "node1")
        await node.get_file_s(str(tree), str(target) + "/", recurse=True, preserve=True)
        await node.close()

    arun(scenario())
    copied = target / "tree" / "sub" / "leaf.txt"
    assert copied.read_text() == "leaf\n"
    assert copied.stat().st_mtime == 1_000_000_000


def test_put_string_script_mode_755_by_default(testbed, arun, tmp_path):
    """put_string_script writes the text with mode 755, and the script runs."""
    script = tmp_path / "script.sh"
    formatter = RecordingFormatter()

    async def scenario():
        node = known_node(testbed, "node1", formatter=formatter)
        result = await node.put_string_script("#!/bin/sh\necho from script\n", str(script))
        status = await node.run(str(script))
        await node.close()
        return result, status

    assert arun(scenario()) == (True, 0)
    assert script.read_text() == "#!/bin/sh\necho from script\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert formatter.stdout() == ["from script\n"]


def test_put_string_script_honours_mode(testbed, arun, tmp_path):
    """put_string_script with mode=0o700 gives that mode."""
    script = tmp_path / "private.sh"

    async def scenario():
        node = known_node(testbed, "node1")
        await node.put_string_script("echo hi\n", str(script), mode=0o700)
        await node.close()

    arun(scenario())
    assert stat.S_IMODE(script.stat().st_mode) == 0o700


# --------------------------------------------------------------- gateways
CHAINS = {1: ["gw1"], 2: ["gw1", "gw2"], 3: ["gw1", "gw2", "gw3"]}


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_gateway_chain_is_really_used(testbed, arun, depth):
    """A node behind a chain of 1, 2 or 3 gateways is reached through each hop in turn."""
    gateways = CHAINS[depth]
    formatter = RecordingFormatter()
    forwarded = testbed.host(gateways[-1])
    node_host = testbed.host("node2")
    target = f"target {node_host.address} port {node_host.port}"
    forwarded_before = testbed.count_log(forwarded, target)

    async def scenario():
        before = connection_snapshot(testbed)
        *_, node = make_chain(testbed, gateways + ["node2"], formatter=formatter)
        task = asyncio.ensure_future(node.run("echo started; sleep 0.5"))
        while not formatter.stdout():
            await asyncio.sleep(0.02)
        backwards = gateways[::-1]
        hops = list(zip(["node2", *backwards[:-1]], backwards, strict=True))
        proofs = {
            "came_through": all(came_through(testbed, a, b, before) for a, b in hops),
            "not_direct": not my_connections(testbed, "node2") - before,
            "node_log": through_node_log(testbed, "node2", gateways[-1]),
            "first_hop_mine": len(my_connections(testbed, gateways[0]) - before) == 1,
        }
        status = await task
        await node.close()
        return status, proofs

    status, proofs = arun(scenario())
    assert status == 0
    assert proofs == {"came_through": True, "not_direct": True, "node_log": True, "first_hop_mine": True}
    assert testbed.count_log(forwarded, target) == forwarded_before + 1


def test_gateway_connection_shared_by_nodes_behind_it(testbed, arun):
    """Three nodes behind one gateway share a single connection from the client to it."""
    async def scenario():
        gateway = known_node(testbed, "gw1")
        before = connection_snapshot(testbed)
        formatter = RecordingFormatter()
        nodes = [known_node(testbed, name, gateway=gateway, formatter=formatter)
                 for name in ("node1", "node2", "node3")]
        tasks = [asyncio.ensure_future(node.run("echo started; sleep 0.5")) for node in nodes]
        while len(formatter.stdout()) < 3:
            await asyncio.sleep(0.02)
        opened = my_connections(testbed, "gw1") - before
        through = [came_through(testbed, name, "gw1", before) for name in ("node1", "node2", "node3")]
        statuses = await asyncio.gather(*tasks)
        for node in nodes:
            await node.close()
        return opened, through, statuses

    opened, through, statuses = arun(scenario())
    assert len(opened) == 1
    assert through == [True, True, True]
    assert statuses == [0, 0, 0]


def test_distance_counts_hops(testbed):
    """SshNode.distance() is 1 without gateway and one more per gateway."""
    chain = make_chain(testbed, ["gw1", "gw2", "gw3", "node1"])
    assert [node.distance() for node in chain] == [1, 2, 3, 4]


def test_failing_gateway_is_named(testbed, arun):
    """When the gateway cannot be reached, SshConnectError names the gateway."""
    address = testbed.host("gw3").address
    port = free_port(address)

    async def scenario():
        gateway = SshNode(address, port=port, username=testbed.user, formatter=RecordingFormatter())
        node = known_node(testbed, "node1", gateway=gateway)
        return await run_expecting(node, SshConnectError)

    error, [gateway_connected, node_connected] = arun(scenario())
    assert f"gateway {address}" in str(error)
    assert f"{address}:{port}" in str(error)
    assert testbed.host("node1").address in str(error)
    assert not node_connected and not gateway_connected


def test_gateway_closes_with_last_node_behind_it(testbed, arun):
    """The gateway connection closes when the last node behind it closes (gateway not used directly)."""
    async def scenario():
        before = my_connections(testbed, "gw2")
        gateway = known_node(testbed, "gw2")
        first, second = (known_node(testbed, name, gateway=gateway) for name in ("node3", "node4"))
        await asyncio.gather(first.run("true"), second.run("true"))
        states = [gateway.is_connected()]
        await first.close()
        states.append(gateway.is_connected())
        await second.close()
        states.append(gateway.is_connected())
        return states, my_connections(testbed, "gw2") - before

    states, left = arun(scenario())
    assert states == [True, True, False]
    assert not left


def test_gateway_used_directly_stays_open(testbed, arun):
    """A gateway that ran its own command stays connected when the nodes behind it close."""
    async def scenario():
        gateway = known_node(testbed, "gw2")
        node = known_node(testbed, "node3", gateway=gateway)
        await gateway.run("true")
        await node.run("true")
        await node.close()
        still = gateway.is_connected()
        await gateway.close()
        return still, gateway.is_connected()

    assert arun(scenario()) == (True, False)


def test_closed_node_reconnects_through_its_gateway(testbed, arun):
    """A node closed (with its gateway) reconnects through the gateway on the next run."""
    async def scenario():
        formatter = RecordingFormatter()
        gateway = known_node(testbed, "gw1")
        node = known_node(testbed, "node1", gateway=gateway, formatter=formatter)
        await node.run("true")
        await node.close()
        gateway_connected = gateway.is_connected()
        before = connection_snapshot(testbed)
        task = asyncio.ensure_future(node.run("echo again; sleep 0.5"))
        while not formatter.stdout() and not task.done():
            await asyncio.sleep(0.02)
        through = came_through(testbed, "node1", "gw1", before)
        status = await task
        await node.close()
        return gateway_connected, through, status

    assert arun(scenario(), timeout=20) == (False, True, 0)


def test_node_behind_gateway_keeps_path_in_describe(testbed):
    """describe() and hop_names() show the gateway chain of a node."""
    gw1, gw2, node = make_chain(testbed, ["gw1", "gw2", "node1"])
    assert node.hop_names() == [gw1.hostname, gw2.hostname, node.hostname]
    assert node.effective_gateway() is gw2
    assert f" via {gw2.describe()}" in node.describe()


def test_cancel_at_any_moment_leaves_no_remote_process(testbed, arun):
    """Cancelling run() at any moment, even before its channel is handed back, leaves no remote command.

    The event loop is kept busy (a process scan between single yields) until the remote command
    exists, so the cancellation often lands while the channel is still being set up.
    """
    from testbed import wait_for

    node = known_node(testbed, "node3")

    async def scenario():
        await node.connect_lazy()
        for index in range(3):
            pattern = f"sleep 46.{index}"
            task = asyncio.ensure_future(node.run(pattern))
            while not testbed.remote_processes(pattern) and not task.done():
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await node.close()

    arun(scenario(), timeout=60)

    assert wait_for(lambda: testbed.remote_processes("sleep 46.") == [])

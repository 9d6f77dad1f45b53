"""An embedded testbed for the demo: asyncssh servers in this process, on loopback.

A gateway listens on 127.0.0.1; nodes ``node1``... are reachable only through it (the
gateway alone knows where they listen).  Each node runs real commands with /bin/sh in a
home directory of its own, with a ``hostname`` that answers its name, and serves SFTP
inside that home.  This is for ``apssh-tui --demo``; the tests use real OpenSSH servers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from pathlib import Path

import asyncssh

LOOPBACK = "127.0.0.1"


class _Gateway(asyncssh.SSHServer):
    """Forwards direct-tcpip requests for node names to the node servers."""

    def __init__(self, routes: dict[str, int]):
        self.routes = routes
        self.conn = None

    def connection_made(self, conn):
        self.conn = conn

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        if dest_host not in self.routes:
            return False
        return self.conn.forward_connection(LOOPBACK, self.routes[dest_host])


class _NodeServer(asyncssh.SSHServer):
    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        return False


def _sftp_factory(home: Path):
    class NodeSFTP(asyncssh.SFTPServer):
        def __init__(self, chan):
            super().__init__(chan, chroot=str(home).encode())
    return NodeSFTP


async def _run_command(name: str, home: Path, process: asyncssh.SSHServerProcess) -> None:
    """Run the requested command for real, in the node's home, until it ends or the channel closes."""
    env = dict(os.environ, HOME=str(home), PATH=f"{home / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               DEMO_NODE=name)
    local = await asyncio.create_subprocess_shell(
        process.command or "sh", cwd=home, env=env, start_new_session=True,
        # stdin from /dev/null: apssh sends no input, and an open stdin pipe would keep wait() pending
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    # no EOF per stream: once stdout's EOF is sent the channel refuses stderr data, and a write
    # refused inside asyncssh's forwarding task closes the whole connection (every job on the node)
    await process.redirect(stdout=local.stdout, stderr=local.stderr, send_eof=False)
    waiter = asyncio.ensure_future(local.wait())
    closed = asyncio.ensure_future(process.channel.wait_closed())
    await asyncio.wait([waiter, closed], return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():  # the client went away (abort): stop the whole process group
        try:
            os.killpg(local.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        await waiter
    if closed.done():
        return
    # both streams forwarded to their end before the exit status closes the channel
    drained = asyncio.ensure_future(asyncio.gather(process.stdout.drain(), process.stderr.drain()))
    await asyncio.wait([drained, closed], return_when=asyncio.FIRST_COMPLETED)
    if closed.done():
        drained.cancel()
        return
    closed.cancel()
    code = waiter.result()
    process.exit(code if code >= 0 else 128 - code)


class DemoTestbed:
    """Start with ``await start()``, stop with ``await stop()``.

    Attributes after start: ``gateway_port``, ``nodes`` (names), ``client_key`` (path),
    ``known_hosts`` (path), ``directory`` (everything lives there).
    """

    def __init__(self, nodes=("node1", "node2", "node3", "node4")):
        self.node_names = list(nodes)
        self.directory = Path(tempfile.mkdtemp(prefix="apssh-demo-"))
        self.servers: list = []
        self.gateway_port: int | None = None

    async def start(self) -> DemoTestbed:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = self.directory / "id_ed25519"
        client_key.write_private_key(str(self.client_key))
        self.client_key.chmod(0o600)
        self.known_hosts = self.directory / "known_hosts"
        self.known_hosts.touch()
        authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        routes = {}
        for name in self.node_names:
            home = self.directory / name
            (home / "bin").mkdir(parents=True)
            hostname = home / "bin" / "hostname"
            hostname.write_text(f"#!/bin/sh\necho {name}\n")
            hostname.chmod(0o755)
            server = await asyncssh.create_server(
                _NodeServer, LOOPBACK, 0, server_host_keys=[host_key], authorized_client_keys=authorized,
                process_factory=lambda process, name=name, home=home: _run_command(name, home, process),
                sftp_factory=_sftp_factory(home), encoding=None)
            routes[name] = server.sockets[0].getsockname()[1]
            self.servers.append(server)
        gateway = await asyncssh.create_server(
            lambda: _Gateway(routes), LOOPBACK, 0, server_host_keys=[host_key],
            authorized_client_keys=authorized,
            process_factory=lambda process: _run_command("gateway", self.directory, process), encoding=None)
        self.gateway_port = gateway.sockets[0].getsockname()[1]
        self.servers.append(gateway)
        return self

    def variables(self) -> dict:
        """The Jinja2 variables of the bundled scenario."""
        return {"gateway_port": self.gateway_port, "key": str(self.client_key),
                "known_hosts": str(self.known_hosts), "nodes": self.node_names,
                "results": str(self.directory / "results")}

    def _stop_services(self) -> None:
        """Services started without systemd outlive their command: stop their process groups."""
        for pid_file in self.directory.glob("*/.apssh-remote/services/*.pid"):
            try:
                os.killpg(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError, PermissionError):
                pass

    async def stop(self) -> None:
        self._stop_services()
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        shutil.rmtree(self.directory, ignore_errors=True)

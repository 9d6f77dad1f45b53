"""Real private OpenSSH servers on loopback, for the apssh test suite.

A :class:`Testbed` owns one base directory and starts one ``/usr/sbin/sshd``
process per host, each on its own loopback address and port:

* 4 nodes ``node1`` .. ``node4`` on 127.0.0.11 .. 127.0.0.14,
* 3 gateways ``gw1`` .. ``gw3`` on 127.0.0.21 .. 127.0.0.23, to build chains
  ``client -> gw1 [-> gw2 [-> gw3]] -> node`` through direct-tcpip channels.

It also prepares a private client HOME (``<base>/home``) holding a fresh
``.ssh/id_ed25519`` key pair and an empty ``.ssh/known_hosts``, so that tests
never read or write the machine's real ``~/.ssh``.

Layout of the base directory::

    home/.ssh/{id_ed25519,id_ed25519.pub,known_hosts}
    authorized_keys/<user>          # AuthorizedKeysFile <base>/authorized_keys/%u (*)
    known_hosts_all                 # every host's entry (used by ssh_config)
    ssh_config                      # for the OpenSSH client: ssh -F <this>
    hosts/<name>/{host_key,host_key.pub,sshd_config,sshd.log,sshd.stderr,sshd.pid}

(*) When a second user is in use (root only), sshd reads that user's file with
the user's own rights, and pytest's base temp dirs are 0700 (and reset to 0700
by every new pytest session), so the keys then live in a separate
``/tmp/apssh-testbed-keys-*`` directory (mode 0711), removed by :meth:`Testbed.stop`.

The module has no pytest dependency; ``tests/conftest.py`` wraps it in fixtures.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import errno
import hashlib
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import psutil

SSHD = "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"

NODE_ADDRESSES = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")
GATEWAY_ADDRESSES = ("127.0.0.21", "127.0.0.22", "127.0.0.23")
SECOND_USER = "apsshtest2"
# sshd accepts at most this many ListenAddress lines
MAX_LISTEN_ADDRESSES = 16

# below the Linux ephemeral range (32768+), so outgoing connections never grab them
PORT_RANGE = (20000, 32000)
# environment variable that sshd (SetEnv) puts in every remote session
MARKER_VARIABLE = "APSSH_TESTBED"

T = TypeVar("T")


class TestbedError(RuntimeError):
    """Raised when the testbed cannot be set up (key generation, sshd start...)."""

    __test__ = False  # not a pytest test class despite its name


@dataclass(eq=False)
class Host:
    """One private sshd; hashable by identity so it can key dicts and sets.

    ``port``, ``pid``, ``host_key_line`` and ``fingerprint`` are filled by
    :meth:`Testbed.start`.
    """

    name: str
    kind: str  # "node" or "gateway"
    address: str
    directory: Path
    port: int = 0
    pid: int | None = None
    host_key_line: str = ""  # "ssh-ed25519 AAAA..." (no comment)
    # extra servers (Testbed.start_server): every address listened on, extra sshd_config lines
    addresses: tuple[str, ...] = ()
    sshd_extra: str = ""
    fingerprint: str = ""  # "SHA256:..." as ssh-keygen -l and asyncssh print it
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        """The sshd log (``-E``), LogLevel DEBUG."""
        return self.directory / "sshd.log"

    @property
    def stderr_path(self) -> Path:
        """Whatever sshd writes to stderr before its log is open."""
        return self.directory / "sshd.stderr"

    @property
    def config_path(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def host_key_path(self) -> Path:
        return self.directory / "host_key"

    @property
    def pid_path(self) -> Path:
        return self.directory / "sshd.pid"

    @property
    def endpoint(self) -> tuple[str, int]:
        """``(address, port)`` the sshd listens on."""
        return (self.address, self.port)

    @property
    def known_hosts_entry(self) -> str:
        """The known_hosts line for this host, e.g. ``[127.0.0.11]:20123 ssh-ed25519 AAAA...``."""
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{host} {self.host_key_line}"

    def jump_spec(self, user: str | None = None) -> str:
        """``[user@]address:port``, the syntax of ``ssh -J``."""
        prefix = f"{user}@" if user else ""
        return f"{prefix}{self.address}:{self.port}"


@dataclass(frozen=True)
class Connection:
    """One ESTABLISHED TCP connection to a testbed host.

    ``client_pid`` is the process owning the client end (``None`` if unknown);
    ``server_pid`` is the sshd process owning the server end.
    """

    client: tuple[str, int]
    server: tuple[str, int]
    client_pid: int | None
    server_pid: int | None


def fingerprint_of(key_line: str) -> str:
    """SHA256 fingerprint of an OpenSSH public key line, ``"SHA256:<base64, no padding>"``."""
    blob = base64.b64decode(key_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return "SHA256:" + digest.rstrip("=")


def run_async(coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
    """Run ``coro`` in a fresh event loop (``asyncio.run``) and return its result.

    Tests are plain sync functions; this is their only way into asyncio.
    ``timeout`` (default 60 s, ``None`` for none) raises TimeoutError so that a
    hung test fails instead of blocking the whole session.
    """
    if timeout is None:
        return asyncio.run(coro)
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it returns true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


class Testbed:
    """A set of real private sshd processes on loopback, plus a private client HOME.

    Usage::

        with Testbed(tmpdir) as bed:
            node = bed.host("node1")
            subprocess.run(bed.ssh_command(node, "hostname", jumps=[bed.host("gw1")]))

    Args:
        base: directory that will hold everything (created if needed).
        start_timeout: seconds to wait for all sshd to send their banner (default 10).
        second_user: name of the extra login user, created with ``useradd`` when
            running as root (default ``apsshtest2``); ignored when not root.

    Attributes (after construction): ``base``, ``home``, ``client_key``,
    ``client_pubkey``, ``known_hosts`` (the empty ``~/.ssh/known_hosts``),
    ``all_known_hosts``, ``ssh_config``, ``user`` (current login name),
    ``second_user`` (set by :meth:`start`: name, or ``None`` when not root),
    ``nodes``, ``gateways``, ``hosts``, ``start_duration`` (seconds, after start).
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, base: str | os.PathLike, *, start_timeout: float = 10.0,
                 second_user: str = SECOND_USER):
        self.base = Path(base).resolve()
        self.start_timeout = start_timeout
        self.home = self.base / "home"
        self.ssh_dir = self.home / ".ssh"
        self.client_key = self.ssh_dir / "id_ed25519"
        self.client_pubkey = self.ssh_dir / "id_ed25519.pub"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.all_known_hosts = self.base / "known_hosts_all"
        self.ssh_config = self.base / "ssh_config"
        self.authorized_keys_dir = self.base / "authorized_keys"  # may move, see _write_authorized_keys
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self._wanted_second_user = second_user
        self.second_user: str | None = None
        # marks every remote session of this testbed (sshd SetEnv), even orphaned ones
        self.token = uuid.uuid4().hex
        self.nodes = [self._make_host(f"node{i}", "node", address)
                      for i, address in enumerate(NODE_ADDRESSES, 1)]
        self.gateways = [self._make_host(f"gw{i}", "gateway", address)
                         for i, address in enumerate(GATEWAY_ADDRESSES, 1)]
        self.extra_hosts: list[Host] = []
        self.started = False
        self.start_duration: float | None = None

    def _make_host(self, name: str, kind: str, address: str) -> Host:
        return Host(name=name, kind=kind, address=address,
                    directory=self.base / "hosts" / name)

    # ------------------------------------------------------------------ lookup
    @property
    def hosts(self) -> list[Host]:
        """All hosts, nodes first then gateways."""
        return [*self.nodes, *self.gateways]

    def host(self, name: str) -> Host:
        """The host called ``name`` (``"node1"``, ``"gw2"``...); KeyError if none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    # --------------------------------------------------------- extra servers
    def start_server(self, name: str, addresses: Sequence[str], *, port: int | None = None,
                     sshd_extra: str = "", host_key: Path | None = None) -> Host:
        """Start one more sshd listening on every address of ``addresses`` (one port).

        sshd's stock limits apply (MaxSessions 10...) unless ``sshd_extra`` (sshd_config
        lines) says otherwise. ``port``: default a free one; ``host_key``: reuse the key of
        another server (default: a fresh key). Stopped by :meth:`stop` or :meth:`stop_server`.

        Raises:
            TestbedError when sshd does not come up.
        """
        if len(addresses) > MAX_LISTEN_ADDRESSES:
            raise TestbedError(f"{name}: at most {MAX_LISTEN_ADDRESSES} ListenAddress per sshd")
        host = Host(name=name, kind="extra", address=addresses[0], directory=self.base / "hosts" / name,
                    addresses=tuple(addresses), sshd_extra=sshd_extra)
        host.directory.mkdir(parents=True, exist_ok=True)
        if host_key is not None:
            shutil.copy(host_key, host.host_key_path)
            shutil.copy(host_key.with_suffix(".pub"), host.host_key_path.with_suffix(".pub"))
            host.host_key_path.chmod(0o600)
        else:
            self._keygen([(host.host_key_path, f"{name}@apssh-testbed")])
        host.host_key_line = _key_line(host.host_key_path.with_suffix(".pub"))
        host.fingerprint = fingerprint_of(host.host_key_line)
        if port is None:
            self._pick_ports([host])
        else:
            host.port = port
        self.extra_hosts.append(host)
        self._launch(host)
        self._wait_ready(host, time.monotonic() + self.start_timeout)
        for address in host.addresses[1:]:
            while not _banner((address, host.port)).startswith(b"SSH-"):
                time.sleep(0.005)
        return host

    def stop_server(self, host: Host) -> None:
        """Stop an extra server started by :meth:`start_server`, with its sessions."""
        if host.process is not None:
            children = []
            for pid in self.sshd_pids(host) - {host.pid}:
                try:
                    children.append(psutil.Process(pid))
                except psutil.NoSuchProcess:  # a session that ended since it was listed
                    pass
            host.process.terminate()
            try:
                host.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait()
            _terminate(children)
        host.process = None
        host.pid = None
        if host in self.extra_hosts:
            self.extra_hosts.remove(host)

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def setup_client(self) -> None:
        """Create the client HOME with its key pair and an empty known_hosts.

        Idempotent and cheap; :meth:`start` calls it. Keys already present are kept.
        """
        self.ssh_dir.mkdir(parents=True, exist_ok=True)
        self.ssh_dir.chmod(0o700)
        self._keygen([(self.client_key, f"apssh-testbed-client@{self.user}")])
        self.known_hosts.touch()

    def start(self) -> Self:
        """Generate keys, start every sshd in parallel and wait until all send their banner.

        Returns self. Raises TestbedError (with the tail of the sshd log) when a
        server does not come up within ``start_timeout`` seconds; servers that
        did start are stopped again in that case.
        """
        if self.started:
            raise TestbedError("testbed already started")
        began = time.monotonic()
        for host in self.hosts:
            host.directory.mkdir(parents=True, exist_ok=True)
        self.ssh_dir.mkdir(parents=True, exist_ok=True)
        self.ssh_dir.chmod(0o700)
        # one batch of ssh-keygen processes running in parallel: client + all host keys
        self._keygen([(self.client_key, f"apssh-testbed-client@{self.user}")]
                     + [(h.host_key_path, f"{h.name}@apssh-testbed") for h in self.hosts])
        self.known_hosts.touch()
        for host in self.hosts:
            host.host_key_line = _key_line(host.host_key_path.with_suffix(".pub"))
            host.fingerprint = fingerprint_of(host.host_key_line)
        self.second_user = self._ensure_second_user()
        self._write_authorized_keys()
        if os.geteuid() == 0:
            # sshd refuses to start as root without its privilege separation directory
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._pick_ports(self.hosts)
        atexit.register(self.stop)
        self.started = True
        try:
            for host in self.hosts:
                self._launch(host)
            deadline = time.monotonic() + self.start_timeout
            for host in self.hosts:
                self._wait_ready(host, deadline)
        except BaseException:
            self.stop()
            raise
        self._write_client_files()
        self.start_duration = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Terminate every sshd this testbed started, with all its descendants.

        Also kills orphaned remote-session processes carrying this testbed's
        marker variable. Sends SIGTERM, waits up to 3 s, then SIGKILL. Never
        touches any other process. Safe to call several times.
        """
        atexit.unregister(self.stop)
        for host in list(self.extra_hosts):
            self.stop_server(host)
        descendants: dict[int, psutil.Process] = {}
        for host in self.hosts:
            # snapshot the trees first: once a listener is gone, its children get reparented
            for pid in self.sshd_pids(host) - {host.pid}:
                try:
                    descendants[pid] = psutil.Process(pid)
                except psutil.NoSuchProcess:
                    pass
        for proc in self._marked_processes():
            descendants.setdefault(proc.pid, proc)
        # listeners first, so that no new session starts while we clean up
        running = [h.process for h in self.hosts if h.process is not None]
        for process in running:
            if process.poll() is None:
                process.terminate()
        for process in running:
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for host in self.hosts:
            host.process = None
            host.pid = None
        _terminate(list(descendants.values()))
        if self.authorized_keys_dir.parent != self.base:
            shutil.rmtree(self.authorized_keys_dir, ignore_errors=True)
        self.started = False

    # ----------------------------------------------------------------- setup
    def _keygen(self, keys: Sequence[tuple[Path, str]]) -> None:
        """Run ``ssh-keygen -t ed25519`` in parallel for every (path, comment) missing."""
        procs = []
        for path, comment in keys:
            if path.exists() and path.with_suffix(".pub").exists():
                continue
            path.unlink(missing_ok=True)
            procs.append((path, subprocess.Popen(
                [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        for path, proc in procs:
            output, _ = proc.communicate()
            if proc.returncode != 0:
                raise TestbedError(f"ssh-keygen failed for {path}: {output.decode(errors='replace')}")

    def _ensure_second_user(self) -> str | None:
        """Create (once, kept afterwards) the second login user; None when not root."""
        if os.geteuid() != 0 or not self._wanted_second_user:
            return None
        name = self._wanted_second_user
        if not _user_exists(name):
            result = subprocess.run(["useradd", "-m", "-s", "/bin/sh", name],
                                    check=False, capture_output=True, text=True)
            if result.returncode != 0 and not _user_exists(name):  # else: created concurrently
                raise TestbedError(f"useradd {name} failed: {result.stderr.strip()}")
        entry = pwd.getpwnam(name)
        home = Path(entry.pw_dir)
        if not home.is_dir():
            home.mkdir(parents=True)
            os.chown(home, entry.pw_uid, entry.pw_gid)
        if _shadow_password(name).startswith("!"):
            # with UsePAM no, sshd rejects "locked" (!) accounts even for public keys
            subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
        return name

    def _write_authorized_keys(self) -> None:
        """Write ``authorized_keys/<user>`` = the client key, for each allowed user."""
        if self.second_user:
            # sshd reads the file as the target user: it needs a path others can traverse
            self.authorized_keys_dir = Path(tempfile.mkdtemp(prefix="apssh-testbed-keys-"))
            self.authorized_keys_dir.chmod(0o711)
        else:
            self.authorized_keys_dir = self.base / "authorized_keys"
            self.authorized_keys_dir.mkdir(exist_ok=True)
        key = self.client_pubkey.read_text()
        for user in filter(None, [self.user, self.second_user]):
            path = self.authorized_keys_dir / user
            path.write_text(key)
            path.chmod(0o644)

    def _pick_ports(self, hosts: Iterable[Host], tries: int = 100) -> None:
        """Give each host a port free on its address, in PORT_RANGE.

        Raises TestbedError when ``tries`` random ports in a row cannot be bound
        (e.g. the address is not local).
        """
        held = []
        error: OSError | None = None
        try:
            for host in hosts:
                for _ in range(tries):
                    port = random.randrange(*PORT_RANGE)
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    try:
                        sock.bind((host.address, port))
                    except OSError as exc:
                        sock.close()
                        error = exc
                        continue
                    held.append(sock)  # held until all are picked: no duplicates
                    host.port = port
                    break
                else:
                    raise TestbedError(f"no free port for {host.name} on {host.address}: {error}")
        finally:
            for sock in held:
                sock.close()

    def _write_sshd_config(self, host: Host) -> None:
        listen = "\n".join(f"ListenAddress {address}:{host.port}"
                           for address in (host.addresses or (host.address,)))
        host.config_path.write_text(f"""\
# generated by tests/testbed.py for {host.name}
{listen}
HostKey {host.host_key_path}
PidFile {host.pid_path}
AuthorizedKeysFile {self.authorized_keys_dir}/%u
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitRootLogin prohibit-password
MaxStartups 1000:30:2000
MaxAuthTries 10
LoginGraceTime 30
AllowTcpForwarding yes
AllowAgentForwarding yes
X11Forwarding yes
PrintMotd no
PrintLastLog no
UseDNS no
Subsystem sftp internal-sftp
SetEnv {MARKER_VARIABLE}={self.token} {MARKER_VARIABLE}_HOST={host.name} SHLVL=1
LogLevel DEBUG
{host.sshd_extra}""")

    def _launch(self, host: Host) -> None:
        """Start sshd for ``host`` in the foreground (-D) as our own child process."""
        self._write_sshd_config(host)
        host.log_path.write_bytes(b"")  # fresh log for each launch (count_log)
        with open(host.stderr_path, "wb") as stderr:
            # own session: a Ctrl-C in the terminal must not hit the servers directly
            host.process = subprocess.Popen(
                [SSHD, "-D", "-f", str(host.config_path), "-E", str(host.log_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                start_new_session=True)
        host.pid = host.process.pid

    def _wait_ready(self, host: Host, deadline: float, attempts: int = 3) -> None:
        """Wait until ``host`` accepts TCP and sends its SSH banner; relaunch on a port clash."""
        assert host.process is not None
        while True:
            if host.process.poll() is not None:
                log = self.log_tail(host)
                if "Address already in use" in log and attempts > 1:
                    # lost a race for the port since we picked it: try another one
                    attempts -= 1
                    host.process = None
                    self._pick_ports([host])
                    self._launch(host)
                    continue
                raise TestbedError(
                    f"sshd for {host.name} ({host.address}:{host.port}) exited with"
                    f" code {host.process.returncode}; log tail:\n{log}")
            if _banner(host.endpoint).startswith(b"SSH-"):
                return
            if time.monotonic() > deadline:
                raise TestbedError(
                    f"sshd for {host.name} ({host.address}:{host.port}) not ready after"
                    f" {self.start_timeout}s; log tail:\n{self.log_tail(host)}")
            time.sleep(0.005)

    def _write_client_files(self) -> None:
        """Write known_hosts_all and ssh_config for the OpenSSH client."""
        self.write_known_hosts(self.all_known_hosts)
        # ssh reads ~/.ssh from the passwd entry, not $HOME: hence an explicit -F file
        self.ssh_config.write_text(f"""\
Host *
    User {self.user}
    IdentityFile {self.client_key}
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile {self.all_known_hosts}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    BatchMode yes
    ConnectTimeout 10
    ControlMaster no
    ControlPath none
    LogLevel ERROR
""")

    # --------------------------------------------------------- client helpers
    def known_hosts_text(self, hosts: Iterable[Host] | None = None) -> str:
        """known_hosts content for ``hosts`` (default: all), one entry per line."""
        return "".join(h.known_hosts_entry + "\n" for h in (self.hosts if hosts is None else hosts))

    def write_known_hosts(self, path: str | os.PathLike, hosts: Iterable[Host] | None = None) -> Path:
        """Write :meth:`known_hosts_text` to ``path`` and return it as a Path."""
        path = Path(path)
        path.write_text(self.known_hosts_text(hosts))
        return path

    def ssh_command(self, host: Host, *command: str, user: str | None = None,
                    jumps: Sequence[Host] = (), known_hosts: str | os.PathLike | None = None,
                    options: Sequence[str] = ()) -> list[str]:
        """argv for the OpenSSH client to run ``command`` on ``host``.

        ``jumps`` are gateways in order (``ssh -J gw1,gw2``), logged in as the
        current user. ``known_hosts`` overrides the final hop's known_hosts file
        (default: all testbed hosts). ``options`` are extra ssh arguments.
        """
        argv = [SSH, "-F", str(self.ssh_config), "-i", str(self.client_key),
                "-p", str(host.port), "-l", user or self.user]
        if known_hosts is not None:
            argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
        if jumps:
            argv += ["-J", ",".join(j.jump_spec(self.user) for j in jumps)]
        return [*argv, *options, host.address, *command]

    # ----------------------------------------------------------- inspection
    def log_tail(self, host: Host, lines: int = 30) -> str:
        """Last ``lines`` lines of the host's sshd log and stderr."""
        text = ""
        for path in (host.stderr_path, host.log_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def count_log(self, host: Host, text: str) -> int:
        """How many lines of ``host``'s sshd log contain ``text``.

        The log is at LogLevel DEBUG: a forwarded connection shows up as
        ``server_request_direct_tcpip: originator ... target ADDRESS port PORT``.
        """
        try:
            content = host.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return sum(1 for line in content.splitlines() if text in line)

    def established_connections(self, host: Host) -> list[Connection]:
        """ESTABLISHED TCP connections to ``host``'s address:port.

        Each :class:`Connection` carries the pid owning the client end (when it
        is a local process we may see; always the case as root) and the pid of
        the sshd owning the server end.
        """
        target = host.endpoint
        client_pids: dict[tuple[str, int], int | None] = {}
        server_pids: dict[tuple[str, int], int | None] = {}
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status != psutil.CONN_ESTABLISHED or not conn.raddr:
                continue
            local = (conn.laddr.ip, conn.laddr.port)
            remote = (conn.raddr.ip, conn.raddr.port)
            if remote == target:
                client_pids[local] = conn.pid
            elif local == target:
                server_pids[remote] = conn.pid
        return [Connection(client=peer, server=target, client_pid=client_pids.get(peer),
                           server_pid=server_pids.get(peer))
                for peer in sorted(set(client_pids) | set(server_pids))]

    def sshd_pids(self, host: Host) -> set[int]:
        """Pids of ``host``'s sshd listener and all its descendants (empty if not running)."""
        if host.pid is None:
            return set()
        try:
            listener = psutil.Process(host.pid)
            return {listener.pid, *(child.pid for child in listener.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def connection_came_through(self, node: Host, gateway: Host) -> bool:
        """True if some connection to ``node`` was opened by ``gateway``'s sshd (direct-tcpip)
        and none by the test process itself."""
        connections = self.established_connections(node)
        gateway_pids = self.sshd_pids(gateway)
        if any(c.client_pid == os.getpid() for c in connections):
            return False
        return any(c.client_pid in gateway_pids for c in connections)

    def remote_processes(self, pattern: str) -> list[psutil.Process]:
        """Live processes started by a testbed sshd whose command line contains ``pattern``.

        Covers descendants of every testbed sshd, and also orphans reparented to
        init once their session ended (found by this testbed's marker variable).
        The listeners themselves and zombies are never returned.
        """
        candidates: dict[int, psutil.Process] = {}
        for host in self.hosts:
            if host.pid is None:
                continue
            try:
                for child in psutil.Process(host.pid).children(recursive=True):
                    candidates[child.pid] = child
            except psutil.NoSuchProcess:
                pass
        for proc in self._marked_processes():
            candidates.setdefault(proc.pid, proc)
        found = []
        for _pid, proc in sorted(candidates.items()):
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if pattern in " ".join(proc.cmdline()):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def _marked_processes(self) -> list[psutil.Process]:
        """Processes whose environment holds this testbed's marker (remote sessions)."""
        me = os.getpid()
        marked = []
        for proc in psutil.process_iter():
            if proc.pid == me:
                continue
            try:
                if proc.environ().get(MARKER_VARIABLE) == self.token:
                    marked.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
        return marked


# ------------------------------------------------------------------ helpers
def _key_line(pub_path: Path) -> str:
    """``"type base64"`` from a .pub file, without its comment."""
    kind, blob, *_ = pub_path.read_text().split()
    return f"{kind} {blob}"


def _banner(endpoint: tuple[str, int], timeout: float = 1.0) -> bytes:
    """First line sent by the server at ``endpoint``, or b"" if it cannot be read yet."""
    try:
        with socket.create_connection(endpoint, timeout=timeout) as sock:
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
            # identify the probe in the sshd log ("remote software version testbed-probe")
            sock.sendall(b"SSH-2.0-testbed-probe\r\n")
            return data
    except OSError as exc:
        if exc.errno not in (None, errno.ECONNREFUSED, errno.ECONNRESET):
            raise
        return b""


def _shadow_password(name: str) -> str:
    """Password field of ``name`` in /etc/shadow ("" when absent or unreadable)."""
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name and len(fields) > 1:
                return fields[1]
    except OSError:
        pass
    return ""


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _terminate(procs: list[psutil.Process], timeout: float = 3.0) -> None:
    """SIGTERM ``procs``, wait up to ``timeout`` s, then SIGKILL the survivors."""
    alive = []
    for proc in procs:
        try:
            proc.terminate()
            alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(alive, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)

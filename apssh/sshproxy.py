"""One SSH connection to one host: lazy connect, gateways, SFTP, and line reassembly.

An :class:`SshProxy` connects on first use (guarded by a lock, so that many jobs
on the same node share a single connection), reaches its host through a chain of
gateways of any depth (one connection per gateway, shared by every node behind
it), runs commands whose output is handed to a formatter in batches of whole
lines, and moves files over SFTP.
"""

from __future__ import annotations

import asyncio
import codecs
import getpass
import os
import pwd
import secrets
import weakref
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.config import SSHClientConfig

from .formatters import COMMAND_FORMATTER, STDERR, STDOUT, ColonFormatter, Formatter

#: accepted values for ``host_key_policy``
HOST_KEY_POLICIES = ("strict", "accept-new", "ignore")

# a line longer than this is handed over in pieces, so memory stays bounded
MAX_PENDING_CHARS = 1 << 20
# how long a remote command gets between TERM and KILL when it is aborted
ABORT_GRACE_SECONDS = 1.0
# environment variable marking the processes of one remote run, so that an abort can find
# and kill them: sshd ignores signal requests for root logins ("session signalling requires
# privilege separation") and only ever signals the session leader
RUN_MARKER_VARIABLE = "APSSH_RUN_ID"
# how long the remote kill script of an aborted command may take
KILL_SCRIPT_SECONDS = 10.0
# a close that takes longer than this is cut short
CLOSE_TIMEOUT_SECONDS = 3.0
# ProxyJump chains longer than this are taken for loops in ~/.ssh/config
MAX_CONFIG_HOPS = 16


class SshConnectError(ConnectionError):
    """A host could not be reached; the message names the host, the hop and the cause."""

    def __init__(self, message: str, *, hostname: str | None = None):
        super().__init__(message)
        self.hostname = hostname


class HostKeyError(SshConnectError):
    """The host key is unknown (strict policy) or differs from the one on record."""


class ExitCode(int):
    """An exit status that may come from a signal: then ``signal`` is its name (e.g. 'TERM').

    A command killed by a signal gets ``128 + signal number``, as in a shell.
    """

    signal: str | None = None

    def __new__(cls, value: int, signal: str | None = None):
        code = super().__new__(cls, value)
        code.signal = signal
        return code

    def __repr__(self) -> str:
        return f"ExitCode({int(self)}, signal={self.signal!r})" if self.signal else str(int(self))


def local_username() -> str:
    """The local login name, even with no $USER and a uid missing from /etc/passwd."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError depending on the version
        try:
            return pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            return str(os.getuid())


def _signal_code(name: str) -> int:
    import signal as signal_module

    number = getattr(signal_module, f"SIG{name}", None)
    return 128 + int(number) if number is not None else 255


class LineSplitter:
    """Turns a stream of byte chunks into whole lines, decoding UTF-8 with replacement.

    Undecodable bytes become U+FFFD; a character split across two chunks is kept whole;
    a partial line is kept as a list of pieces (joined once, when its newline arrives).
    """

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending: list[str] = []
        self._pending_size = 0

    def feed(self, data: bytes | str) -> list[str]:
        """The complete lines (with their newline) that ``data`` finishes."""
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        if "\n" not in text:
            if text:
                self._pending.append(text)
                self._pending_size += len(text)
                if self._pending_size > MAX_PENDING_CHARS:
                    return self._take_pending()
            return []
        pieces = text.split("\n")
        if self._pending:
            pieces[0] = "".join(self._pending) + pieces[0]
            self._pending, self._pending_size = [], 0
        last = pieces.pop()
        if last:
            self._pending.append(last)
            self._pending_size = len(last)
        return [piece + "\n" for piece in pieces]

    def _take_pending(self) -> list[str]:
        line = "".join(self._pending)
        self._pending, self._pending_size = [], 0
        return [line] if line else []

    def flush(self) -> list[str]:
        """What is left at end of stream (a last line without newline), if anything."""
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._pending.append(tail)
        return self._take_pending()


class _CommandSession(asyncssh.SSHClientSession):
    """Receives a remote command's output and hands whole lines to a formatter."""

    def __init__(self, proxy: SshProxy, formatter: Formatter, stdout_sink: list | None):
        self._proxy = proxy
        self._formatter = formatter
        self._stdout_sink = stdout_sink
        self._splitters = {STDOUT: LineSplitter(), STDERR: LineSplitter()}

    def _dispatch(self, lines: list[str], datatype) -> None:
        if not lines:
            return
        if datatype == STDERR:
            self._formatter.lines(lines, STDERR, self._proxy.hostname, self._proxy.username)
            return
        if self._stdout_sink is not None:
            self._stdout_sink.extend(lines)
        self._formatter.lines(lines, STDOUT, self._proxy.hostname, self._proxy.username)

    def data_received(self, data, datatype) -> None:
        datatype = STDERR if datatype == STDERR else STDOUT
        if getattr(self._formatter, "receives_bytes", False):  # e.g. -o files: the bytes as sent
            self._formatter.bytes_received(data, datatype, self._proxy.hostname, self._proxy.username)
        self._dispatch(self._splitters[datatype].feed(data), datatype)

    def flush(self) -> None:
        """Deliver the last partial lines of both streams."""
        for datatype, splitter in self._splitters.items():
            self._dispatch(splitter.flush(), datatype)

    def connection_lost(self, exc) -> None:
        self.flush()


class _ClientHooks(asyncssh.SSHClient):
    """asyncssh callbacks of one connection, routed back to its SshProxy."""

    def __init__(self, proxy: SshProxy):
        self._proxy = proxy

    def auth_completed(self) -> None:
        self._proxy.formatter.auth_completed(self._proxy.hostname, self._proxy.username)

    def connection_lost(self, exc) -> None:
        self._proxy._lost_reason = exc
        self._proxy.formatter.connection_lost(self._proxy.hostname, exc, self._proxy.username)

    def validate_host_public_key(self, host, addr, port, key) -> bool:
        return self._proxy._unlisted_host_key(host, port, key)


# gateways named by ProxyJump in ~/.ssh/config, shared by every node that jumps through them
_CONFIG_GATEWAYS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class SshProxy:
    """A lazily opened SSH connection to ``hostname``, possibly through a gateway.

    Args:
        hostname: the remote host (a name from ~/.ssh/config works, as with ``ssh``).
        username: remote login; None means the ``User`` of ~/.ssh/config, else the local user.
        gateway: another SshProxy used as a hop (any depth); when None, a ``ProxyJump``
            in ~/.ssh/config is followed, hop by hop, each hop reading its own config.
        keys: private keys (file names or asyncssh keys); None means the ssh agent's
            keys, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa (and IdentityFile from config).
        known_hosts: the known_hosts file; default ~/.ssh/known_hosts.
        port: the SSH port (22 defers to a ``Port`` line in ~/.ssh/config).
        formatter: where output goes; default a ColonFormatter (``host:line``).
        verbose: when not None, sets the formatter's verbosity (connection events).
        debug: print connection steps on stderr.
        timeout: seconds allowed to connect and authenticate.
        host_key_policy: "accept-new" (default: unknown hosts are recorded, changed keys
            refused), "strict" (the host must already be known) or "ignore" (no check).
        keepalive_interval: seconds between SSH keepalives; 0 disables them.
        keepalive_count_max: how many unanswered keepalives in a row are tolerated (default
            3): a dead peer is noticed after about ``keepalive_interval * (count + 1)`` s.
        ssh_config: OpenSSH client config file(s); default ~/.ssh/config; None: no config.
        default_username: the login when neither ``username`` nor the config's ``User``
            gives one (None: the local user).

    Raises (on connection): SshConnectError, HostKeyError.
    """

    def __init__(self, hostname: str, *, username: str | None = None, gateway: SshProxy | None = None,
                 keys=None, known_hosts: str | os.PathLike | None = None, port: int = 22,
                 formatter: Formatter | None = None, verbose: bool | None = None,
                 debug: bool = False, timeout: float = 30,
                 host_key_policy: str = "accept-new", keepalive_interval: float = 30,
                 keepalive_count_max: int = 3,
                 ssh_config: Any = (), default_username: str | None = None):
        if not isinstance(hostname, str) or not hostname:
            raise ValueError(f"SshProxy: hostname must be a non-empty string, got {hostname!r}")
        if host_key_policy not in HOST_KEY_POLICIES:
            raise ValueError(f"SshProxy({hostname!r}): host_key_policy must be one of "
                             f"{', '.join(HOST_KEY_POLICIES)}, got {host_key_policy!r}")
        if gateway is not None and not isinstance(gateway, SshProxy):
            raise TypeError(f"SshProxy({hostname!r}): gateway must be an SshProxy/SshNode, "
                            f"got {type(gateway).__name__}")
        self.hostname = hostname
        self.gateway = gateway
        self.keys = keys
        self.known_hosts = known_hosts
        self.port = int(port)
        self.debug = debug
        self.timeout = timeout
        self.host_key_policy = host_key_policy
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.ssh_config = ssh_config
        #: why the last run() returned None ("connection lost", "server not responding to
        #: keepalive after 60 s"...), or None
        self.failure_reason: str | None = None
        self._lost_reason: BaseException | None = None
        self.formatter = formatter if formatter is not None else ColonFormatter(verbose=bool(verbose))
        if verbose is not None:
            self.formatter.verbose = verbose
        self.verbose = verbose
        self._config = self._load_config(username)
        self.username = username or self._config.get("User") or default_username or local_username()
        self.conn: asyncssh.SSHClientConnection | None = None
        self.sftp_client: asyncssh.SFTPClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._locks: dict = {}
        self._dependents: set[int] = set()
        self._own_use = False
        self._config_gateway: SshProxy | None = None
        self._jump_trail: list[str] = []  # hosts whose ProxyJump led here (loop detection)
        self._host_key_trouble: str | None = None
        self._stopping: set[asyncio.Task] = set()  # aborted commands still being stopped

    # -- description
    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        """``user@host:port``, followed by the gateway chain if any."""
        text = f"{self.username}@{self.hostname}" + (f":{self.port}" if self.port != 22 else "")
        hop = self.effective_gateway()
        return f"{text} via {hop.describe()}" if hop is not None else text

    def hop_names(self) -> list[str]:
        """Host names from the first gateway to this host."""
        hop = self.effective_gateway()
        return (hop.hop_names() if hop is not None else []) + [self.hostname]

    # -- configuration
    def _config_paths(self) -> list[Path]:
        if self.ssh_config is None:
            return []
        if self.ssh_config == ():
            default = Path("~/.ssh/config").expanduser()
            return [default] if default.is_file() else []
        paths = [self.ssh_config] if isinstance(self.ssh_config, (str, os.PathLike)) else self.ssh_config
        return [Path(path).expanduser() for path in paths]

    def _load_config(self, username: str | None) -> SSHClientConfig:
        """This host's options from the OpenSSH client config (empty when there is none)."""
        port = self.port if self.port != 22 else ()
        try:
            return SSHClientConfig.load(None, self._config_paths(), False, False, False,
                                        local_username(), username or (), self.hostname, port)
        except (OSError, asyncssh.Error, ValueError) as exc:
            raise ValueError(f"{self.hostname}: cannot read ssh config {self._config_paths()}: {exc}") from exc

    def effective_gateway(self) -> SshProxy | None:
        """The hop used to reach this host: ``gateway``, or ProxyJump from ~/.ssh/config."""
        if self.gateway is not None:
            return self.gateway
        jump = self._config.get("ProxyJump")
        if not jump or str(jump).lower() == "none":
            return None
        if self._config_gateway is None:
            self._config_gateway = self._gateway_from_jump(str(jump))
        return self._config_gateway

    def _gateway_from_jump(self, jump: str) -> SshProxy:
        """The SshProxy of the last host of a ProxyJump list, chained through the others."""
        trail = self._jump_trail + [self.hostname]
        if len(trail) > MAX_CONFIG_HOPS:
            raise SshConnectError(f"ProxyJump chain too long or looping in ssh config: "
                                  f"{' -> '.join(trail)}", hostname=self.hostname)
        previous = None
        for spec in jump.split(","):
            user, _, hostport = spec.strip().rpartition("@")
            host, port = hostport, 22
            if hostport.count(":") == 1:
                host, port_text = hostport.split(":")
                port = int(port_text)
            key = (user, host, port, previous and id(previous), tuple(map(str, self._config_paths())))
            hop = _CONFIG_GATEWAYS.get(key)
            if hop is None:
                hop = SshProxy(host, username=user or None, port=port, gateway=previous,
                               keys=self.keys, known_hosts=self.known_hosts,
                               formatter=self.formatter, timeout=self.timeout,
                               host_key_policy=self.host_key_policy,
                               keepalive_interval=self.keepalive_interval,
                               keepalive_count_max=self.keepalive_count_max, ssh_config=self.ssh_config)
                hop._jump_trail = trail
                _CONFIG_GATEWAYS[key] = hop
            previous = hop
        if previous.hostname in trail:
            raise SshConnectError(f"ProxyJump loop in ssh config: {' -> '.join(trail + [previous.hostname])}",
                                  hostname=self.hostname)
        return previous

    def distance(self) -> int:
        """Number of hops from the local host: 1 without a gateway."""
        hop = self.effective_gateway()
        return 1 if hop is None else hop.distance() + 1

    # -- host keys
    def _known_hosts_path(self) -> Path:
        return Path(self.known_hosts or "~/.ssh/known_hosts").expanduser()

    def _known_hosts_pattern(self, host: str, port: int | None) -> str:
        return f"[{host}]:{port}" if port and port != 22 else host

    def _unlisted_host_key(self, host: str, port: int | None, key) -> bool:
        """Called by asyncssh for a host key that is not on record: accept it, or say why not."""
        fingerprint = key.get_fingerprint()
        path = self._known_hosts_path()
        pattern = self._known_hosts_pattern(host, port)
        recorded = []
        if path.is_file():
            recorded = asyncssh.match_known_hosts(str(path), host, "", port)[0]
        if any(known.public_data == key.public_data for known in recorded):
            # recorded meanwhile by a concurrent first connection to the same host
            return True
        if recorded:
            self._host_key_trouble = (
                f"host key of {pattern} has CHANGED: the server offers {fingerprint}, "
                f"which differs from the key recorded in {path}. If {host} was re-installed, "
                f"remove the old key with: ssh-keygen -R '{pattern}' -f {path} "
                f"(or set host_key_policy='ignore' for nodes that are re-imaged often)")
            return False
        if self.host_key_policy == "strict":
            self._host_key_trouble = (
                f"host {pattern} is not in {path} and host_key_policy is 'strict' "
                f"(server key {fingerprint}); add it with: ssh-keyscan -p {port or 22} {host} >> {path}, "
                f"or use host_key_policy='accept-new'")
            return False
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        public = key.export_public_key("openssh").decode().split()
        with open(path, "a", encoding="utf-8") as known:
            known.write(f"{pattern} {public[0]} {public[1]}\n")
        self.formatter.event(self.hostname, f"new host key {fingerprint} recorded in {path}")
        return True

    def _asyncssh_known_hosts(self):
        if self.host_key_policy == "ignore":
            return None
        path = self._known_hosts_path()
        # no file yet: an empty key list (asyncssh would read ~/.ssh/known_hosts for b"")
        return str(path) if path.is_file() else ([], [], [])

    # -- connection
    def _lock(self, name: str) -> asyncio.Lock:
        """A lock for the running loop: a scheduler run with a new loop gets fresh locks."""
        loop = asyncio.get_running_loop()
        key = (name, id(loop))
        if key not in self._locks:
            self._locks = {k: v for k, v in self._locks.items() if k[1] == id(loop)}
            self._locks[key] = asyncio.Lock()
        return self._locks[key]

    def is_connected(self) -> bool:
        """Whether the connection is up (in the running loop)."""
        return self.conn is not None and not self.conn.is_closed() and self._in_current_loop()

    def is_sftp_connected(self) -> bool:
        """Whether the SFTP subsystem is up."""
        return self.sftp_client is not None and self.is_connected()

    def _in_current_loop(self) -> bool:
        try:
            return self._loop is asyncio.get_running_loop()
        except RuntimeError:
            return self._loop is not None and not self._loop.is_closed()

    def _forget_connection(self) -> None:
        """Drop a connection left behind by a finished event loop, closing its socket."""
        conn, self.conn, self.sftp_client = self.conn, None, None
        if conn is None:
            return
        if self._loop is not None and self._loop.is_closed():
            # the loop that owned it is gone: nothing can run its close(), so shut the socket
            transport = getattr(conn, "_transport", None)
            sock = getattr(transport, "_sock", None)
            if sock is not None:
                sock.close()
        else:
            try:
                conn.abort()
            except RuntimeError:
                pass

    async def connect_lazy(self) -> asyncssh.SSHClientConnection:
        """Connect if needed; safe when many coroutines use this node at once.

        Returns:
            the asyncssh connection.

        Raises:
            SshConnectError / HostKeyError naming the host, the hop and the cause.
        """
        self._own_use = True
        return await self._connect()

    async def _connect_for(self, dependent: SshProxy) -> asyncssh.SSHClientConnection:
        """Connect as a gateway on behalf of ``dependent`` (which then holds this hop open)."""
        self._dependents.add(id(dependent))
        try:
            return await self._connect()
        except BaseException:
            self._dependents.discard(id(dependent))
            raise

    async def _connect(self) -> asyncssh.SSHClientConnection:
        if self.is_connected():
            return self.conn
        async with self._lock("connect"):
            if self.is_connected():
                return self.conn
            if self.conn is not None:
                self._forget_connection()
            self.conn = await self._open_connection()
            self._loop = asyncio.get_running_loop()
            return self.conn

    async def _open_connection(self) -> asyncssh.SSHClientConnection:
        gateway = self.effective_gateway()
        tunnel = None
        if gateway is not None:
            try:
                tunnel = await gateway._connect_for(self)
            except SshConnectError as exc:
                # same class: a gateway's changed host key is still a HostKeyError
                raise type(exc)(f"cannot reach {self.describe()}: gateway {gateway.hostname} "
                                f"failed: {exc}", hostname=self.hostname) from exc
        if self.debug:
            self.formatter.event(self.hostname, f"connecting to {self.describe()}")
        self._host_key_trouble = None
        self._lost_reason = None
        options = dict(
            tunnel=tunnel, username=self.username, known_hosts=self._asyncssh_known_hosts(),
            client_factory=lambda: _ClientHooks(self), connect_timeout=self.timeout,
            login_timeout=self.timeout, keepalive_interval=self.keepalive_interval,
            keepalive_count_max=self.keepalive_count_max, config=[str(path) for path in self._config_paths()] or None)
        if self.keys is not None:
            options["client_keys"] = list(self.keys)
            options["agent_path"] = None
        if self.port != 22 or not self._config.get("Port"):
            options["port"] = self.port
        self.formatter.connecting(self.hostname, self.username, gateway.hostname if gateway else None)
        try:
            conn = await self._asyncssh_connect(options)
        except BaseException as exc:
            if isinstance(exc, Exception):
                self.formatter.connection_failed(self.hostname, self.username, str(exc))
            if gateway is not None:
                await gateway._release(self)
            raise
        self.formatter.connection_made(self.hostname, self.username, gateway is None)
        return conn

    async def _asyncssh_connect(self, options: dict) -> asyncssh.SSHClientConnection:
        """asyncssh.connect, with its failures turned into errors that say what to do."""
        try:
            return await asyncssh.connect(self.hostname, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyError(f"{self.describe()}: {self._host_key_trouble or exc}",
                               hostname=self.hostname) from exc
        except asyncssh.PermissionDenied as exc:
            keys = ("the ssh agent's keys and ~/.ssh/id_*" if self.keys is None
                    else ", ".join(map(str, self.keys)) or "no key")
            raise SshConnectError(f"{self.describe()}: permission denied for user {self.username} "
                                  f"(keys tried: {keys}); check the user name and give a key "
                                  f"that the host accepts", hostname=self.hostname) from exc
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise SshConnectError(f"{self.describe()}: no answer within {self.timeout}s",
                                  hostname=self.hostname) from exc
        except (OSError, asyncssh.Error, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise SshConnectError(f"{self.describe()}: {reason}", hostname=self.hostname) from exc

    async def _release(self, dependent: SshProxy) -> None:
        """``dependent`` no longer needs this hop: close it if nobody else does."""
        self._dependents.discard(id(dependent))
        if not self._dependents and not self._own_use and self.conn is not None:
            await self.close()

    async def close(self) -> None:
        """Close the SFTP subsystem and the connection (reopened lazily if used again)."""
        self._own_use = False
        if self.conn is not None and not self._in_current_loop():
            self._forget_connection()
        conn, sftp = self.conn, self.sftp_client
        self.conn, self.sftp_client = None, None
        if sftp is not None:
            sftp.exit()
            try:
                await asyncio.wait_for(sftp.wait_closed(), CLOSE_TIMEOUT_SECONDS)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                pass
            self.formatter.sftp_stop(self.hostname)
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), CLOSE_TIMEOUT_SECONDS)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                conn.abort()
        self._dependents.clear()
        gateway = self.effective_gateway()
        if conn is not None and gateway is not None:
            await gateway._release(self)

    # -- commands
    async def run(self, command: str, *, formatter: Formatter | None = None,
                  stdout_sink: list | None = None, **x11_kwds) -> ExitCode | None:
        """Run ``command`` remotely; its lines go to the formatter as they arrive.

        Args:
            command: the remote command line.
            formatter: overrides this node's formatter for this command only.
            stdout_sink: a list that also receives every stdout line (used for captures).
            x11_kwds: passed to asyncssh's create_session, e.g. ``x11_forwarding=True``.

        Returns:
            the exit status (an :class:`ExitCode`; 128+N when killed by signal N), or None
            when the command could not be started at all.

        Cancelling the calling task sends TERM to the remote process group, then KILL.
        """
        await self.connect_lazy()
        formatter = formatter or COMMAND_FORMATTER.get() or self.formatter
        formatter.session_start(self.hostname, command)
        self.failure_reason = None
        run_id = secrets.token_hex(12)
        try:
            channel, session = await self.conn.create_session(
                lambda: _CommandSession(self, formatter, stdout_sink),
                f"export {RUN_MARKER_VARIABLE}={run_id}; {command}",
                encoding=None, **x11_kwds)
        except asyncio.CancelledError:
            # the command may already run remotely, its channel not yet handed to us
            await self._shielded_stop(None, run_id)
            raise
        except (OSError, asyncssh.Error) as exc:
            formatter.event(self.hostname, f"cannot start {command!r}: {exc}")
            self.failure_reason = self._loss_reason() if self.conn is None or self.conn.is_closed() \
                else f"cannot start the command: {exc}"
            return None
        try:
            await channel.wait_closed()
        except asyncio.CancelledError:
            await self._shielded_stop(channel, run_id)
            raise
        formatter.session_stop(self.hostname, command)
        signal = channel.get_exit_signal()
        if signal is not None:
            return ExitCode(_signal_code(signal[0]), signal[0])
        status = channel.get_exit_status()
        if status is None:
            self.failure_reason = self._loss_reason()
            return None
        return ExitCode(status)

    def _loss_reason(self) -> str:
        """Why a command ended without an exit status, in the user's words."""
        if "keepalive" in str(self._lost_reason or ""):
            after = self.keepalive_interval * (self.keepalive_count_max + 1)
            return f"server not responding to keepalive after {after:g} s"
        return "connection lost"

    async def _shielded_stop(self, channel, run_id: str) -> None:
        """Stop an aborted command; shielded, so that a second cancellation (a scheduler
        tidying up its tasks) cannot cut the cleanup short."""
        stopping = asyncio.ensure_future(self._stop_remote(channel, run_id))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        await asyncio.shield(stopping)

    async def _stop_remote(self, channel, run_id: str | None = None) -> None:
        """Abort path: TERM the remote command and its descendants, KILL them if they linger, close.

        The signal goes through the channel, and also (since sshd refuses channel signals for
        root logins) through a second session that kills every process carrying the run's
        marker variable (Linux /proc; best effort).
        """
        for signal in ("TERM", "KILL"):
            if channel is not None:
                try:
                    channel.send_signal(signal)
                except (OSError, asyncssh.Error):
                    pass
            if run_id is not None:
                await self._kill_marked(run_id, signal)
            if channel is None:  # nothing to watch: TERM gets the grace period, then KILL
                if signal == "TERM":
                    await asyncio.sleep(ABORT_GRACE_SECONDS)
                continue
            try:
                await asyncio.wait_for(asyncio.shield(channel.wait_closed()), ABORT_GRACE_SECONDS)
                break
            except (asyncio.TimeoutError, asyncio.CancelledError):
                continue
        if channel is not None:
            channel.close()

    async def _kill_marked(self, run_id: str, signal: str) -> None:
        """Send ``signal`` to the remote processes of run ``run_id``, and to their process groups.

        They are found by the marker in their environment (inherited by every child) or in
        their command line (the shell that sshd started has it in its ``-c`` argument only).
        The marker is quoted in two halves so that this script never matches itself.
        """
        conn = self.conn
        if conn is None or conn.is_closed():
            return
        # process groups first (the shell with its children, at once), then single processes
        script = (f"m='{RUN_MARKER_VARIABLE}''={run_id}'; "
                  f"l=$(grep -l \"$m\" /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null); "
                  f"for f in $l; do p=${{f#/proc/}}; kill -{signal} -${{p%/*}} 2>/dev/null; done; "
                  f"for f in $l; do p=${{f#/proc/}}; kill -{signal} ${{p%/*}} 2>/dev/null; done; true")
        try:
            # not the short grace: on a loaded host the login shell alone can take a second,
            # and this script is what actually stops the command when sshd refuses signals
            await asyncio.wait_for(conn.run(script, check=False), KILL_SCRIPT_SECONDS)
        except (asyncio.TimeoutError, asyncio.CancelledError, OSError, asyncssh.Error):
            pass

    # -- SFTP
    async def sftp_connect_lazy(self) -> asyncssh.SFTPClient:
        """Start the SFTP subsystem if needed (connecting first if needed)."""
        await self.connect_lazy()
        if self.sftp_client is not None:
            return self.sftp_client
        async with self._lock("sftp"):
            if self.sftp_client is None:
                self.sftp_client = await self.conn.start_sftp_client()
                self.formatter.sftp_start(self.hostname)
        return self.sftp_client

    @staticmethod
    def _sftp_path(path: str | os.PathLike) -> str:
        """SFTP paths are relative to the remote home: ``~/x`` becomes ``x``."""
        text = os.fspath(path)
        if text == "~":
            return "."
        return text[2:] if text.startswith("~/") else text

    async def mkdir(self, remotedir: str, mode: int = 0o755) -> bool:
        """Create a remote directory (and its parents) if needed.

        Returns:
            True when the directory exists afterwards.

        Raises:
            asyncssh.SFTPError when it cannot be created.
        """
        sftp = await self.sftp_connect_lazy()
        path = self._sftp_path(remotedir)
        if not await sftp.isdir(path):
            await sftp.makedirs(path, attrs=asyncssh.SFTPAttrs(permissions=mode), exist_ok=True)
        return True

    async def put_file_s(self, localpaths, remotepath: str, **kwds) -> bool:
        """Copy local files into remote directory (or file) ``remotepath``.

        ``kwds`` go to asyncssh's SFTPClient.put (e.g. ``recurse=True``, ``preserve=True``).
        Returns True, or raises (OSError / asyncssh.SFTPError).
        """
        sftp = await self.sftp_connect_lazy()
        if isinstance(localpaths, (str, os.PathLike)):
            localpaths = [localpaths]
        await sftp.put([os.fspath(path) for path in localpaths], self._sftp_path(remotepath), **kwds)
        return True

    async def get_file_s(self, remotepaths, localpath: str, **kwds) -> bool:
        """Copy remote files to ``localpath``, creating missing local directories.

        With several sources (or a trailing ``/``, or an existing directory) ``localpath``
        is a directory; a single remote file pulled to a new name lands as that file, as
        with ``cp``.  ``kwds`` go to SFTPClient.get (``recurse``, ``preserve``...).
        Returns True, or raises.
        """
        sftp = await self.sftp_connect_lazy()
        if isinstance(remotepaths, (str, os.PathLike)):
            remotepaths = [remotepaths]
        sources = [self._sftp_path(path) for path in remotepaths]
        target = Path(localpath).expanduser()
        into_directory = len(sources) > 1 or os.fspath(localpath).endswith("/") or target.is_dir()
        if into_directory:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        await sftp.get(sources, os.fspath(target), **kwds)
        return True

    async def put_string_script(self, script_body: str, remotefile: str, mode: int = 0o755,
                                **kwds) -> bool:
        """Write ``script_body`` to ``remotefile`` over SFTP, with permissions ``mode``.

        Returns True, or raises.
        """
        sftp = await self.sftp_connect_lazy()
        path = self._sftp_path(remotefile)
        async with sftp.open(path, "wb", attrs=asyncssh.SFTPAttrs(permissions=mode)) as remote:
            await remote.write(script_body.encode("utf-8"))
        await sftp.chmod(path, mode)
        return True

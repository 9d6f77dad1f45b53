"""SshProxy: one remote host as the spec describes it; a thin facade over one module per concern.

* :mod:`apssh._sshconfig`: ssh config and ProxyJump, resolved once per host;
* :mod:`apssh._hostkeys`: known_hosts per host and port, parsed once;
* :mod:`apssh._options`: keys loaded once, connection options without executor threads;
* :mod:`apssh._hops`: one shared connection per hop chain, held while a job needs it;
* :mod:`apssh._remote`: run a remote command, stream its lines, stop it on abort;
* :mod:`apssh._lines`: bytes to lines.
"""

from __future__ import annotations

import asyncio
import contextvars
import getpass
import os
import pwd
from pathlib import Path
from typing import Any

import asyncssh

from . import _hops, _options, _remote, _runs, _sshconfig
from ._hops import CLOSE_TIMEOUT_SECONDS, RESERVED_SESSIONS  # noqa: F401  (re-exported)
from ._hostkeys import HOST_KEY_POLICIES, known_hosts_file, unlisted_key_verdict
from ._lines import MAX_PENDING_CHARS, LineSplitter  # noqa: F401  (re-exported)
from ._remote import ABORT_GRACE_SECONDS, KILL_SCRIPT_SECONDS, RUN_MARKER_VARIABLE, CommandSession, ExitCode  # noqa: F401
from ._sshconfig import MAX_CONFIG_HOPS
from .formatters import COMMAND_FORMATTER, ColonFormatter, Formatter

#: accepted values for ``abort_marker``
ABORT_MARKER_CHOICES = ("auto", True, False)
#: sshd's default MaxSessions: sessions allowed on one connection
DEFAULT_MAX_SESSIONS = 10
#: a session the server refused is asked again this many times, after 0.05, 0.1 and 0.2 s (sshd
#: frees a slot a little after the client saw the channel close)
SESSION_OPEN_RETRIES = 3
SESSION_OPEN_RETRY_SECONDS = 0.05

# the job (or other holder) on whose behalf the current task uses connections
CURRENT_HOLDER: contextvars.ContextVar = contextvars.ContextVar("apssh_connection_holder", default=None)


class SshConnectError(ConnectionError):
    """A host could not be reached; the message names the host, the hop and the cause."""

    def __init__(self, message: str, *, hostname: str | None = None):
        super().__init__(message)
        self.hostname = hostname


class HostKeyError(SshConnectError):
    """The host key is unknown (strict policy) or differs from the one on record."""


def local_username() -> str:
    """The local login name, even with no $USER and a uid missing from /etc/passwd."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError depending on the version
        try:
            return pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            return str(os.getuid())


def _plain_cause(exc: BaseException) -> str:
    """A connect failure in the user's words ("connection refused", ...)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def _lost_reason(exc: BaseException | None, proxy: SshProxy) -> str:
    text = str(exc or "")
    if "keepalive" in text.lower():
        return (f"server not responding to keepalive after "
                f"{proxy.keepalive_interval * proxy.keepalive_count_max:g} s")
    if exc is None:
        return "connection closed"
    # asyncssh's own "Connection lost" says nothing more: not repeated
    return f"connection lost: {text}" if text and text.lower() != "connection lost" else "connection lost"


class _ClientHooks(asyncssh.SSHClient):
    """asyncssh callbacks of one connection, routed back to its hop and SshProxy."""

    def __init__(self, proxy: SshProxy, hop: _hops.Hop):
        self._proxy = proxy
        self._hop = hop
        self.host_key_trouble: str | None = None

    def auth_completed(self) -> None:
        self._proxy.formatter.auth_completed(self._proxy.hostname, self._proxy.username)

    def connection_lost(self, exc) -> None:
        self._hop.lost_reason = _lost_reason(exc, self._proxy)
        self._proxy.formatter.connection_lost(self._proxy.hostname, exc, self._proxy.username)

    def validate_host_public_key(self, host, addr, port, key) -> bool:
        proxy = self._proxy
        accepted, trouble = unlisted_key_verdict(known_hosts_file(proxy.known_hosts),
                                                 proxy.host_key_policy, host, port, key)
        if accepted and trouble:
            proxy.formatter.event(proxy.hostname, trouble)
        elif not accepted:
            self.host_key_trouble = trouble
        return accepted


class SshProxy:
    """A lazily opened SSH connection to ``hostname``, possibly through a gateway.

    Args:
        hostname: the remote host (a name from ~/.ssh/config works, as with ``ssh``).
        username: remote login; None means the ``User`` of ~/.ssh/config, else the local user.
        gateway: another SshProxy used as a hop (any depth); when None, a ``ProxyJump``
            in ~/.ssh/config is followed, hop by hop, each hop reading its own config.
        keys: private keys (file names or asyncssh keys); None means the ssh agent's
            keys, then IdentityFile from the config and ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
            Key files are read once per process.
        known_hosts: the known_hosts file; default ~/.ssh/known_hosts.
        port: the SSH port (22 defers to a ``Port`` line in ~/.ssh/config).
        formatter: where output goes; default a ColonFormatter (``host:line``).
        verbose: when not None, sets the formatter's verbosity (connection events).
        debug: print connection steps on stderr.
        timeout: seconds allowed to connect and authenticate (default 30).
        host_key_policy: "accept-new" (default: unknown hosts are recorded, changed keys
            refused), "strict" (the host must already be known) or "ignore" (no check).
            Keys are looked up per host AND port, as OpenSSH does.
        keepalive_interval: seconds between SSH keepalives (default 15); 0 disables them.
        keepalive_count_max: unanswered keepalives after which the server is taken for
            dead (default 4: a dead peer is noticed within about a minute).
        ssh_config: OpenSSH client config file(s); default ~/.ssh/config; None: no config.
        default_username: the login when neither ``username`` nor the config's ``User``
            gives one (None: the local user).
        max_sessions: sessions the server allows on one connection (sshd's MaxSessions,
            default 10); commands beyond ``max_sessions - 2`` wait for a free one, two
            are kept for SFTP and for stopping an aborted command.
        abort_marker: how an aborted command is found to be killed. "auto" (default):
            through its channel (TERM, then KILL), plus a marker variable for root logins,
            whose sessions sshd does not signal; True: always add the marker
            (``export APSSH_RUN_ID=...;`` before the command, POSIX shells only); False:
            never (a login shell that is not POSIX, a forced command, a switch CLI).

    Attributes:
        failure_reason: after a ``run()`` that returned None, why ("connection lost",
            "session refused by the server: ..."); None after a run that returned a status.

    Raises (on connection): SshConnectError (e.g. "connection refused"), HostKeyError.
    """

    def __init__(self, hostname: str, *, username: str | None = None, gateway: SshProxy | None = None,
                 keys=None, known_hosts: str | os.PathLike | None = None, port: int = 22,
                 formatter: Formatter | None = None, verbose: bool | None = None,
                 debug: bool = False, timeout: float = 30,
                 host_key_policy: str = "accept-new", keepalive_interval: float = 15,
                 keepalive_count_max: int = 4, ssh_config: Any = (),
                 default_username: str | None = None, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 abort_marker: str | bool = "auto"):
        if not isinstance(hostname, str) or not hostname:
            raise ValueError(f"SshProxy: hostname must be a non-empty string, got {hostname!r}")
        if host_key_policy not in HOST_KEY_POLICIES:
            raise ValueError(f"SshProxy({hostname!r}): host_key_policy must be one of "
                             f"{', '.join(HOST_KEY_POLICIES)}, got {host_key_policy!r}")
        if gateway is not None and not isinstance(gateway, SshProxy):
            raise TypeError(f"SshProxy({hostname!r}): gateway must be an SshProxy/SshNode, "
                            f"got {type(gateway).__name__}")
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"SshProxy({hostname!r}): max_sessions must be a positive integer "
                             f"(sshd's MaxSessions, default 10), got {max_sessions!r}")
        if not (abort_marker == "auto" or abort_marker is True or abort_marker is False):
            raise ValueError(f"SshProxy({hostname!r}): abort_marker must be 'auto', True or False, "
                             f"got {abort_marker!r}")
        self.hostname = hostname
        self.gateway = gateway
        self.keys = keys
        self.known_hosts = known_hosts
        self.port = int(port)
        self.debug = debug
        self.timeout = timeout
        self.host_key_policy = host_key_policy
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = int(keepalive_count_max)
        self.ssh_config = ssh_config
        self.max_sessions = max_sessions
        self.abort_marker = abort_marker
        self.formatter = formatter if formatter is not None else ColonFormatter(verbose=bool(verbose))
        if verbose is not None:
            self.formatter.verbose = verbose
        self.verbose = verbose
        self.failure_reason: str | None = None
        self._config = self._load_config(username)
        self.username = username or self._config.get("User") or default_username or local_username()
        self._config_gateway: SshProxy | None = None
        self._jump_trail: list[str] = []  # hosts whose ProxyJump led here (loop detection)
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
        return _sshconfig.config_paths(self.ssh_config)

    def _load_config(self, username: str | None):
        """This host's options from the OpenSSH client config (empty when there is none)."""
        return _sshconfig.host_config(self._config_paths(), local_username(), self.hostname,
                                      username, self.port)

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
        """The SshProxy of the last host of a ProxyJump list, chained through the others.

        Gateways get this node's options (keys, known_hosts, policy, timeouts): the
        connection is shared with other nodes only when all of these are the same.
        """
        trail = self._jump_trail + [self.hostname]
        if len(trail) > MAX_CONFIG_HOPS:
            raise SshConnectError(f"ProxyJump chain too long or looping in ssh config: "
                                  f"{' -> '.join(trail)}", hostname=self.hostname)
        previous = None
        for user, host, port in _sshconfig.parse_jump(jump):
            hop = SshProxy(host, username=user, port=port, gateway=previous,
                           keys=self.keys, known_hosts=self.known_hosts,
                           formatter=self.formatter, timeout=self.timeout,
                           host_key_policy=self.host_key_policy,
                           keepalive_interval=self.keepalive_interval,
                           keepalive_count_max=self.keepalive_count_max,
                           ssh_config=self.ssh_config, max_sessions=self.max_sessions)
            hop._jump_trail = trail
            previous = hop
        if previous.hostname in trail:
            raise SshConnectError(f"ProxyJump loop in ssh config: {' -> '.join(trail + [previous.hostname])}",
                                  hostname=self.hostname)
        return previous

    def distance(self) -> int:
        """Number of hops from the local host: 1 without a gateway."""
        hop = self.effective_gateway()
        return 1 if hop is None else hop.distance() + 1

    # -- identity
    def hop_key(self) -> tuple:
        """What makes two proxies one connection: login, options and the whole hop chain.

        Computed again only when one of the options it depends on was changed on this proxy
        or a gateway (it is asked several times per command)."""
        gateway = self.effective_gateway()
        # the key objects themselves (not their ids): the memo keeps them alive
        keys = self.keys if self.keys is None or isinstance(self.keys, (str, os.PathLike)) else tuple(self.keys)
        config = self.ssh_config if not isinstance(self.ssh_config, list) else tuple(self.ssh_config)
        given = (self.username, self.hostname, self.port, keys, self.known_hosts, self.host_key_policy,
                 self.timeout, self.keepalive_interval, self.keepalive_count_max, config,
                 self.max_sessions, gateway.hop_key() if gateway is not None else None)
        memo = self.__dict__.get("_hop_key_memo")
        if memo is not None and memo[0] == given:
            return memo[1]
        key = self._compute_hop_key(gateway)
        self._hop_key_memo = (given, key)
        return key

    def _compute_hop_key(self, gateway) -> tuple:
        keys = None if self.keys is None else tuple(
            _options.key_identity(key) for key in
            ([self.keys] if isinstance(self.keys, (str, os.PathLike)) else self.keys))
        known = None if self.host_key_policy == "ignore" else str(
            Path(self.known_hosts or "~/.ssh/known_hosts").expanduser().absolute())
        return (self.username, self.hostname, self.port, keys, known, self.host_key_policy,
                self.timeout, self.keepalive_interval, self.keepalive_count_max,
                tuple(map(str, self._config_paths())), self.max_sessions,
                gateway.hop_key() if gateway is not None else None)

    def hop_keys(self) -> list[tuple]:
        """The keys of this hop and of every gateway before it."""
        gateway = self.effective_gateway()
        return [self.hop_key()] + (gateway.hop_keys() if gateway is not None else [])

    def _hop(self) -> _hops.Hop | None:
        return _hops.find_hop(self.hop_key())

    @property
    def conn(self) -> asyncssh.SSHClientConnection | None:
        """The open asyncssh connection in the running loop, or None."""
        hop = self._hop()
        return hop.conn if hop is not None and hop.is_open() else None

    @property
    def sftp_client(self) -> asyncssh.SFTPClient | None:
        hop = self._hop()
        return hop.sftp if hop is not None and hop.is_open() else None

    def is_connected(self) -> bool:
        """Whether the connection is up (in the running loop)."""
        return self.conn is not None

    def is_sftp_connected(self) -> bool:
        """Whether the SFTP subsystem is up."""
        return self.sftp_client is not None

    # -- connection
    async def connect_lazy(self) -> asyncssh.SSHClientConnection:
        """Connect if needed; many coroutines using this node (or another SshProxy for the
        same login and hop chain) share one connection and one connect attempt.

        Outside a job, the connection stays open until :meth:`close`.

        Returns:
            the asyncssh connection.

        Raises:
            SshConnectError / HostKeyError naming the host, the hop and the cause.
        """
        hop = _hops.hop_for(self)
        hop.hold(CURRENT_HOLDER.get() or self)
        return await hop.connect(self._open_connection)

    async def _open_connection(self, hop: _hops.Hop) -> asyncssh.SSHClientConnection:
        gateway = self.effective_gateway()
        tunnel = None
        if gateway is not None:
            gateway_hop = _hops.hop_for(gateway)
            gateway_hop.hold(hop)
            hop.gateway = gateway_hop
            try:
                tunnel = await gateway_hop.connect(gateway._open_connection, behind=hop)
            except SshConnectError as exc:
                # same class: a gateway's changed host key is still a HostKeyError
                raise type(exc)(f"cannot reach {self.describe()}: gateway {gateway.hostname} "
                                f"failed: {exc}", hostname=self.hostname) from exc
        hooks = _ClientHooks(self, hop)
        # with a handshake limit (_hops.limit_handshakes), "connecting" is said once this
        # connection's handshake starts, not while it waits for a slot
        async with _hops.handshake_slot():
            if self.debug:
                self.formatter.event(self.hostname, f"connecting to {self.describe()}")
            self.formatter.connecting(self.hostname, self.username, gateway.hostname if gateway else None)
            try:
                conn = await self._asyncssh_connect(tunnel, hooks)
            except Exception as exc:
                self.formatter.connection_failed(self.hostname, self.username, str(exc))
                raise
            self.formatter.connection_made(self.hostname, self.username, gateway is None)
        return conn

    def _options(self, tunnel, hooks: _ClientHooks) -> asyncssh.SSHClientConnectionOptions:
        port = self.port if self.port != 22 or not self._config.get("Port") else ()
        known = None
        if self.host_key_policy != "ignore":
            known = known_hosts_file(self.known_hosts).match
        return _options.connection_options(
            host=self.hostname, port=port, username=self.username, host_config=self._config,
            keys=_options.client_keys(self.keys, self._config), explicit_keys=self.keys is not None,
            known_hosts=known, client_factory=lambda: hooks, tunnel=tunnel, timeout=self.timeout,
            keepalive_interval=self.keepalive_interval, keepalive_count_max=self.keepalive_count_max)

    async def _asyncssh_connect(self, tunnel, hooks: _ClientHooks) -> asyncssh.SSHClientConnection:
        """Open the connection, with its failures turned into errors that say what to do."""
        try:
            return await _options.open_connection(self._options(tunnel, hooks))
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyError(f"{self.describe()}: {hooks.host_key_trouble or exc}",
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
            raise SshConnectError(f"{self.describe()}: {_plain_cause(exc)}", hostname=self.hostname) from exc

    async def close(self) -> None:
        """Close the SFTP subsystem and the connection (reopened lazily if used again).

        The connection is shared by every SshProxy of the same login and hop chain: it
        stays open while another of them, or a running job, still uses it, and closes
        when the last one lets go. ``keep_connection`` no longer holds it after this.
        """
        hop = self._hop()
        if hop is not None:
            await hop.let_go(self)

    async def release_job(self, job) -> None:
        """``job`` is done with this node (its scheduler shuts it down).

        The connection (and each gateway) closes once no job of the run that uses it is
        still pending or running, and no one else holds it; ``job.keep_connection`` keeps it.
        """
        hop = self._hop()
        if hop is None:
            return
        if getattr(job, "keep_connection", False):
            hop.kept = True
            hop.holders.pop(id(job), None)
            return
        run, ending = _runs.outermost_run(job)
        await hop.release(job, run=run, ending=ending, but=job)

    def keep_open(self) -> None:
        """Keep this node's connection (if open) until an explicit :meth:`close`."""
        hop = self._hop()
        if hop is not None and hop.is_open():
            hop.kept = True

    # -- commands
    def uses_abort_marker(self) -> bool:
        """Whether commands carry the marker variable (``abort_marker``; "auto": root logins)."""
        if self.abort_marker == "auto":
            return self.username == "root"
        return bool(self.abort_marker)

    def _failed(self, formatter: Formatter, reason: str) -> None:
        self.failure_reason = reason
        formatter.event(self.hostname, reason)

    async def run(self, command: str, *, formatter: Formatter | None = None,
                  stdout_sink: list | None = None, **x11_kwds) -> ExitCode | None:
        """Run ``command`` remotely; its lines go to the formatter as they arrive.

        Waits for a free session when ``max_sessions - 2`` commands already run on the
        connection.

        Args:
            command: the remote command line.
            formatter: overrides this node's formatter for this command only.
            stdout_sink: a list that also receives every stdout line (used for captures).
            x11_kwds: passed to asyncssh's create_session, e.g. ``x11_forwarding=True``.

        Returns:
            the exit status (an :class:`ExitCode`; 128+N when killed by signal N), or None
            when the command could not be started, or ended without an exit status
            (connection lost, keepalive timeout); then ``failure_reason`` says why, and
            the formatter got it as an event.

        Raises:
            SshConnectError: the host cannot be reached.

        Cancelling the calling task sends TERM to the remote command, then KILL (see
        ``abort_marker``); a stop that fails is reported to the formatter.
        """
        self.failure_reason = None
        formatter = formatter or COMMAND_FORMATTER.get() or self.formatter
        await self.connect_lazy()
        hop = _hops.hop_for(self)
        formatter.session_start(self.hostname, command)
        run_id = _remote.new_run_id() if self.uses_abort_marker() else None
        remote_command = _remote.marked(command, run_id) if run_id else command
        async with hop.sessions:
            conn = hop.conn
            if conn is None or conn.is_closed():
                self._failed(formatter, f"cannot start {command!r}: "
                                        f"{hop.lost_reason or 'connection closed'}")
                return None
            for attempt in range(SESSION_OPEN_RETRIES + 1):
                opening = asyncio.ensure_future(conn.create_session(
                    lambda: CommandSession(self.hostname, self.username, formatter, stdout_sink),
                    remote_command, encoding=None, **x11_kwds))
                try:
                    channel, session = await asyncio.shield(opening)
                    break
                except asyncio.CancelledError:
                    # the command may already run remotely, its channel not yet handed to us
                    await self._shielded_stop(conn, hop, opening, run_id, formatter, command)
                    raise
                except asyncssh.ChannelOpenError as exc:
                    # sshd frees a session slot a little after the client saw the channel close:
                    # when short commands follow each other, the next open may come too early
                    if attempt < SESSION_OPEN_RETRIES and not conn.is_closed():
                        await asyncio.sleep(SESSION_OPEN_RETRY_SECONDS * 2 ** attempt)
                        continue
                    self._failed(formatter, f"cannot start {command!r}: session refused by the "
                                            f"server: {exc.reason or exc}")
                    return None
                except (OSError, asyncssh.Error) as exc:
                    self._failed(formatter, f"cannot start {command!r}: "
                                            f"{hop.lost_reason or exc or type(exc).__name__}")
                    return None
            try:
                await channel.wait_closed()
            except asyncio.CancelledError:
                await self._shielded_stop(conn, hop, opening, run_id, formatter, command)
                raise
        formatter.session_stop(self.hostname, command)
        signal = channel.get_exit_signal()
        if signal is not None:
            return ExitCode(_remote.signal_code(signal[0]), signal[0])
        status = channel.get_exit_status()
        if status is None or status < 0:
            reason = hop.lost_reason or (_lost_reason(session.lost, self) if session.lost else None)
            self._failed(formatter, reason or f"{command!r} ended with no exit status (connection lost)")
            return None
        return ExitCode(status)

    async def _shielded_stop(self, conn, hop, opening: asyncio.Future, run_id: str | None,
                             formatter: Formatter, command: str) -> None:
        """Stop an aborted command; shielded, so that a second cancellation (a scheduler
        tidying up its tasks) cannot cut the cleanup short."""
        stopping = asyncio.ensure_future(self._stop(conn, hop, opening, run_id, formatter, command))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        await asyncio.shield(stopping)

    async def _stop(self, conn, hop, opening: asyncio.Future, run_id, formatter, command) -> None:
        channel = None
        try:
            channel, _ = await asyncio.wait_for(asyncio.shield(opening), _remote.KILL_SCRIPT_SECONDS)
        except (asyncio.TimeoutError, TimeoutError):
            opening.cancel()
        except (OSError, asyncssh.Error, asyncio.CancelledError):
            return  # never started: nothing to stop
        problem = await _remote.stop_remote(conn, channel, run_id, hop.kill_slot)
        if problem:
            formatter.event(self.hostname, f"could not stop {command!r}: {problem}")

    # -- SFTP
    async def sftp_connect_lazy(self) -> asyncssh.SFTPClient:
        """Start the SFTP subsystem if needed (connecting first if needed); it has a session
        slot of its own, so transfers never wait behind commands."""
        await self.connect_lazy()
        hop = _hops.hop_for(self)
        if hop.sftp is not None:
            return hop.sftp
        async with hop.sftp_lock:
            if hop.sftp is None:
                hop.sftp = await hop.conn.start_sftp_client()
                self.formatter.sftp_start(self.hostname)
        return hop.sftp

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

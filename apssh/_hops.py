"""Connection sharing: one connection per hop chain, held open while someone needs it.

A :class:`Hop` is one SSH connection of the running event loop, shared by every SshProxy
that names the same hop chain with the same options (two SshNode objects for one host share
it; one private address behind two different gateways is two hops). Its *holders* are the
jobs using it, the run they belong to while more of its jobs are to come, the hops reached
through it, and SshProxy objects used by hand (until their ``close()``); it closes when the
last holder lets go, unless kept open (``keep_connection``).

Concurrent connects share one attempt; a failed attempt is remembered for one connect
timeout, so the nodes queued behind a silent or refusing gateway fail at once with its error
instead of trying it again one after another.

Handshakes: :func:`limit_handshakes` bounds how many connections are being set up at once in
each event loop (none by default).

Sessions: sshd allows ``MaxSessions`` (10 by default) sessions per connection. Commands take
a slot of ``max_sessions - 2`` and wait for a free one; the SFTP subsystem and an abort's kill
command each have a slot of their own, so they never wait behind commands.
"""

from __future__ import annotations

import asyncio
import weakref

import asyncssh

from . import _runs

#: sessions per connection that commands leave free: one for SFTP, one for an abort's kill
RESERVED_SESSIONS = 2
# a close that takes longer than this is cut short
CLOSE_TIMEOUT_SECONDS = 3.0


class Hop:
    """One shared connection (see the module docstring).

    Args:
        key: the identity (options and whole hop chain), see ``SshProxy.hop_key``.
        proxy: the SshProxy whose settings and formatter this connection uses.
        max_sessions: sessions the server allows on one connection (sshd's MaxSessions).
    """

    def __init__(self, key: tuple, proxy, max_sessions: int):
        self.key = key
        self.proxy = proxy
        self.gateway: Hop | None = None  # the gateway hop held while this one is open or opening
        self.conn: asyncssh.SSHClientConnection | None = None
        self.sftp: asyncssh.SFTPClient | None = None
        self.holders: dict[int, object] = {}  # id -> the (live, held) object
        self.kept = False
        self.lost_reason: str | None = None
        self.connects = 0  # attempts made (figures and tests)
        self._opening: asyncio.Future | None = None
        self._failure: BaseException | None = None
        self._failed_at = 0.0
        self.sessions = asyncio.Semaphore(max(1, max_sessions - RESERVED_SESSIONS))
        self.kill_slot = asyncio.Semaphore(1)
        self.sftp_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Hop({self.proxy.describe()}, holders={list(self.holders.values())})"

    # -- holders
    def hold(self, holder) -> None:
        self.holders[id(holder)] = holder

    def is_open(self) -> bool:
        return self.conn is not None and not self.conn.is_closed()

    def wanted_later(self, run, but) -> bool:
        """Whether a job of ``run`` still to come (other than ``but``) goes through this hop."""
        for job in _runs.jobs_to_come(run, but):
            node = getattr(job, "node", None)
            chain = getattr(node, "hop_keys", None)
            if chain is not None and self.key in chain():
                return True
        return False

    async def release(self, holder, *, run=None, ending: bool = False, but=None) -> None:
        """``holder`` lets go; close when nobody holds this hop any more.

        With ``run`` (the outermost running scheduler of job ``but``) and the run not
        ending, the run itself keeps holding the hop while more of its jobs will use it.
        """
        self.holders.pop(id(holder), None)
        if run is not None:
            if not ending and self.wanted_later(run, but):
                self.hold(run)
                return
            self.holders.pop(id(run), None)
        if self.holders or self.kept:
            return
        await self.close(run=run, ending=ending, but=but)

    async def let_go(self, proxy) -> None:
        """An explicit ``close()`` through ``proxy``: close unless another user still needs it.

        What stays: other SshProxy objects using it by hand, and jobs still running.
        """
        self.kept = False
        self.holders.pop(id(proxy), None)
        # hops behind this one go with it; a run's hold or a job not running is no use
        users = [holder for holder in self.holders.values() if not isinstance(holder, Hop)
                 and (not hasattr(holder, "is_running") or holder.is_running())]
        if not users:
            await self.close()

    # -- connecting
    async def connect(self, opener, *, behind: Hop | None = None) -> asyncssh.SSHClientConnection:
        """The open connection; concurrent callers share one attempt made by ``opener()``.

        ``behind``: the hop asking, when this one is its gateway; it then receives a recent
        failure again instead of a new attempt.
        """
        if self.is_open():
            return self.conn
        loop = asyncio.get_running_loop()
        if (self._failure is not None and behind is not None
                and loop.time() - self._failed_at < self.proxy.timeout):
            raise self._failure
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open(opener))
        opening = self._opening
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _open(self, opener) -> asyncssh.SSHClientConnection:
        self.connects += 1
        self.lost_reason = None
        try:
            conn = await opener(self)
        except BaseException as exc:
            self._failure, self._failed_at = exc, asyncio.get_running_loop().time()
            gateway, self.gateway = self.gateway, None
            if gateway is not None:
                await gateway.release(self)
            raise
        self._failure = None
        self.conn = conn
        if find_hop(self.key) is not self:  # closed while opening: nobody will use it
            self.conn = None
            conn.close()
        return conn

    # -- closing
    async def close(self, *, run=None, ending: bool = False, but=None) -> None:
        """Close the SFTP subsystem and the connection now, then let go of the gateway."""
        self.holders.clear()
        self.kept = False
        conn, sftp = self.conn, self.sftp
        self.conn, self.sftp = None, None
        _forget(self)
        if sftp is not None:
            sftp.exit()
            try:
                await asyncio.wait_for(sftp.wait_closed(), CLOSE_TIMEOUT_SECONDS)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                pass
            self.proxy.formatter.sftp_stop(self.proxy.hostname)
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), CLOSE_TIMEOUT_SECONDS)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                conn.abort()
        gateway, self.gateway = self.gateway, None
        if gateway is not None:
            await gateway.release(self, run=run, ending=ending, but=but)


# the hops of each running event loop, by key
_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

# connections set up at once in one event loop (see limit_handshakes); None: no limit
_handshake_limit: int | None = None
# each event loop's (limit, semaphore)
_HANDSHAKE_SLOTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def limit_handshakes(limit: int | None) -> None:
    """Set up at most ``limit`` SSH connections at once in each event loop; None (the default)
    sets no limit.

    A connection takes a slot for its TCP connect, key exchange and authentication (after its
    gateway is connected, so a node never holds a slot while waiting for its gateway's); its
    connect timeout starts once it has the slot, and so does its formatter's ``connecting``
    event.  The command-line tools need no limit (``-w``
    bounds their open connections).  An application whose event loop also draws a screen uses
    one: every ready callback of hundreds of simultaneous handshakes runs before the loop
    looks at a key again (apssh-tui uses 4, see its --handshakes).  Takes effect for connects started afterwards.

    Raises:
        ValueError: ``limit`` is not None nor a positive number.
    """
    global _handshake_limit
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"handshake limit must be a positive number of connections or None, got {limit!r}")
    _handshake_limit = limit


class _NoLimit:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc) -> None:
        return None


_NO_LIMIT = _NoLimit()


def handshake_slot():
    """An async context manager holding one of the running loop's handshake slots (see
    :func:`limit_handshakes`)."""
    if _handshake_limit is None:
        return _NO_LIMIT
    loop = asyncio.get_running_loop()
    limit, slots = _HANDSHAKE_SLOTS.get(loop, (None, None))
    if limit != _handshake_limit:
        slots = asyncio.Semaphore(_handshake_limit)
        _HANDSHAKE_SLOTS[loop] = (_handshake_limit, slots)
    return slots


def _hops_of_loop() -> dict[tuple, Hop]:
    loop = asyncio.get_running_loop()
    hops = _REGISTRY.get(loop)
    if hops is None:
        _drop_finished_loops()
        hops = _REGISTRY[loop] = {}
    return hops


def _drop_finished_loops() -> None:
    """Connections left open by an event loop that is gone: nothing can run their close(),
    so their sockets are shut."""
    for loop in list(_REGISTRY.keys()):
        if not loop.is_closed():
            continue
        for hop in _REGISTRY.pop(loop).values():
            transport = getattr(hop.conn, "_transport", None)
            transport = getattr(transport, "wrapped", transport)  # under _writes.CoalescedWrites
            sock = getattr(transport, "_sock", None)
            if sock is not None:
                sock.close()
            hop.conn = hop.sftp = None


def find_hop(key: tuple) -> Hop | None:
    """The hop of ``key`` in the running loop, if one exists."""
    try:
        return _hops_of_loop().get(key)
    except RuntimeError:
        return None


def hop_for(proxy) -> Hop:
    """The hop of ``proxy`` in the running loop, created (with its gateways) if needed."""
    hops = _hops_of_loop()
    key = proxy.hop_key()
    hop = hops.get(key)
    if hop is None:
        hop = hops[key] = Hop(key, proxy, proxy.max_sessions)
    return hop


def _forget(hop: Hop) -> None:
    try:
        hops = _hops_of_loop()
    except RuntimeError:
        return
    if hops.get(hop.key) is hop:
        del hops[hop.key]

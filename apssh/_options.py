"""Connection options built once per process: keys loaded once, no executor thread per connection.

``asyncssh.connect`` builds a fresh options object in an executor thread for every connection:
it reads ~/.ssh/id_* again, re-parses known_hosts and ~/.ssh/config, holding the GIL while the
event loop waits. Here the private keys are loaded once per file (a passphrase is asked once),
known_hosts comes from :mod:`apssh._hostkeys` and the config from :mod:`apssh._sshconfig`,
and each connection's options are derived from that prepared material in the loop itself.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from pathlib import Path

import asyncssh
from asyncssh.config import SSHClientConfig

from . import _readhold
from . import keys as keys_module
from ._writes import CoalescedWrites

_KEYS: dict[tuple, object] = {}
_KEYS_LOCK = threading.Lock()
key_loads = 0  # how many key files were read in this process (figures and tests)


def _load_key_file(path: Path):
    """The private key in ``path``, read once per process (None when it cannot be used)."""
    global key_loads
    try:
        stat = path.stat()
        stamp = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = (str(path), None, None)
    with _KEYS_LOCK:
        if stamp in _KEYS:
            return _KEYS[stamp]
        key_loads += 1
        key = keys_module.import_private_key(path) if stamp[1] is not None else None
        _KEYS[stamp] = key
        return key


def key_identity(key) -> str:
    """A stable name for a key given as a file or as a loaded key (never ``id()``)."""
    if isinstance(key, (str, os.PathLike)):
        return str(Path(key).expanduser())
    public = getattr(key, "public_data", None)
    if public is None and hasattr(key, "get_public_key"):
        public = key.get_public_key().public_data
    return public.hex() if isinstance(public, bytes) else repr(key)


def client_keys(keys, host_config: SSHClientConfig) -> list:
    """The keys to offer: ``keys`` as given, else IdentityFile from the config then ~/.ssh/id_*."""
    if keys is not None:
        given = [keys] if isinstance(keys, (str, os.PathLike)) else list(keys)
        loaded = [_load_key_file(Path(k).expanduser()) if isinstance(k, (str, os.PathLike)) else k
                  for k in given]
        return [key for key in loaded if key is not None]
    files = [Path(str(name)).expanduser() for name in host_config.get("IdentityFile", ()) or ()]
    files += [path for path in keys_module.default_key_files() if path not in files]
    loaded = [_load_key_file(path) for path in files if path.is_file()]
    return [key for key in loaded if key is not None]


#: the ciphers tried first when neither the caller nor the ssh config (``Ciphers``) chooses:
#: AES-GCM is one AESGCM call per packet in cryptography (hardware AES on x86-64 and ARMv8),
#: where asyncssh's chacha20-poly1305, its own first choice, costs several Python calls per
#: packet: measured here, 128 MB over SFTP took 1.4 s / 1.0 s CPU (get) and 1.9 s / 1.4 s (put)
#: with chacha20-poly1305, 0.9 s / 0.6 s and 1.3 s / 0.8 s with aes128-gcm (bench/RESULTS.md).
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def default_ciphers() -> list[str]:
    """asyncssh's default (secure) ciphers with :data:`FAST_CIPHERS` moved first; the others
    (chacha20-poly1305, aes-ctr) stay offered, in asyncssh's order, for servers without GCM."""
    from asyncssh.encryption import get_default_encryption_algs  # noqa: PLC0415

    defaults = [alg.decode() for alg in get_default_encryption_algs()]
    first = [alg for alg in FAST_CIPHERS if alg in defaults]
    return first + [alg for alg in defaults if alg not in first]


def connection_options(*, host: str, port: int, username: str, host_config: SSHClientConfig,
                       keys, explicit_keys: bool, known_hosts, client_factory, tunnel,
                       timeout: float, keepalive_interval: float,
                       keepalive_count_max: int) -> asyncssh.SSHClientConnectionOptions:
    """Options for one connection, derived in the event loop from material prepared once.

    ``keys`` are loaded keys; ``explicit_keys`` means no agent is asked (as with ``-k``).
    The ciphers are the ssh config's ``Ciphers`` when it has one, else :func:`default_ciphers`
    (AES-GCM first).
    """
    agent = () if not explicit_keys and os.environ.get("SSH_AUTH_SOCK") else None
    kwargs = dict(
        last_config=host_config, config=None, host=host, port=port, username=username,
        tunnel=tunnel or (), client_factory=client_factory, known_hosts=known_hosts,
        client_keys=list(keys) if keys else None, agent_path=agent, agent_identities=None,
        x509_trusted_certs=None, x509_trusted_cert_paths=None,
        connect_timeout=timeout, login_timeout=timeout,
        keepalive_interval=keepalive_interval, keepalive_count_max=keepalive_count_max)
    if not host_config.get("Ciphers"):
        kwargs["encryption_algs"] = _DEFAULT_CIPHERS or _default_ciphers_once()
    if agent is not None and not keys:
        kwargs["client_keys"] = []  # the agent's keys (asyncssh would drop the agent for None)
    options = object.__new__(asyncssh.SSHClientConnectionOptions)
    # what Options.__init__ does, with our prepared config as the "last" one (no file read)
    options.kwargs = kwargs
    options.prepare(**kwargs)
    return options


_DEFAULT_CIPHERS: list[str] = []


def _default_ciphers_once() -> list[str]:
    _DEFAULT_CIPHERS[:] = default_ciphers()
    return _DEFAULT_CIPHERS


_MSG_IGNORE = 2
_EMPTY_STRING = (b"\0\0\0\0",)


class _Connection(asyncssh.SSHClientConnection):
    """An asyncssh client connection with fewer writes and packets.

    - A packet, and the packets sent while handling one read (a window opening, a burst of
      replies), leave in one write (:class:`apssh._writes.CoalescedWrites`).
    - asyncssh sends an empty MSG_IGNORE before every encrypted packet, a defence of CBC mode
      (its predictable IVs); with the other ciphers (GCM, ChaCha20-Poly1305, CTR) it only
      doubles the packets to build, encrypt and parse on both sides, so it is not sent.
    """

    # a weak reference: when asyncssh drops its transport (a connection aborted in a loop that
    # then ended), the socket must go with it, as it does without the wrapper
    _writes = staticmethod(lambda: None)
    _sending = False

    def connection_made(self, transport) -> None:
        _readhold.watch(transport)
        writes = CoalescedWrites(transport)
        self._writes = weakref.ref(writes)
        super().connection_made(writes)

    def data_received(self, data: bytes, datatype=None) -> None:
        writes = self._writes()
        if writes is None:
            super().data_received(data, datatype)
            return
        writes.hold()
        try:
            super().data_received(data, datatype)
        finally:
            writes.release()

    def send_packet(self, pkttype: int, *args: bytes, handler=None) -> None:
        if self._sending:  # a packet that asyncssh sends before the one being sent
            if pkttype == _MSG_IGNORE and args == _EMPTY_STRING and not self._cbc():
                return
            super().send_packet(pkttype, *args, handler=handler)
            return
        writes = self._writes()
        if writes is None:
            super().send_packet(pkttype, *args, handler=handler)
            return
        writes.hold()
        self._sending = True
        try:
            super().send_packet(pkttype, *args, handler=handler)
        finally:
            self._sending = False
            writes.release()

    _cipher_is_cbc: bool | None = None

    def _cbc(self) -> bool:
        # known once keys are first exchanged (a re-key negotiates from the same lists)
        if self._cipher_is_cbc is None:
            cipher = self.get_extra_info("send_cipher")
            if cipher is None:
                return False  # nothing encrypted yet: asyncssh sends no MSG_IGNORE
            self._cipher_is_cbc = str(cipher).endswith("-cbc")
        return self._cipher_is_cbc


async def open_connection(options: asyncssh.SSHClientConnectionOptions) -> asyncssh.SSHClientConnection:
    """asyncssh.connect with prepared options: no executor thread, no file read."""
    loop = asyncio.get_running_loop()
    opener = getattr(asyncssh.connection, "_connect", None)
    if opener is None:  # another asyncssh: the public path (an executor thread per connection)
        return await asyncssh.connect(options.host, options.port, options=options, config=None)

    def factory():
        return _Connection(loop, options, wait="auth")

    return await asyncio.wait_for(
        opener(options, None, loop, 0, None, factory, "Opening SSH connection to"),
        timeout=options.connect_timeout)

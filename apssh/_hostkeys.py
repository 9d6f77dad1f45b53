"""Host keys: known_hosts files parsed once per process, looked up per host AND port.

As in OpenSSH, an entry for ``host`` (port 22) says nothing about ``[host]:2222``: asyncssh's
own lookup falls back to the entry without a port, so a second server on the same address
would be refused as CHANGED. A :class:`KnownHostsFile` is read once and kept in step with the
entries that accept-new appends; it is read again only when another program changed the file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import asyncssh

#: accepted values for ``host_key_policy``
HOST_KEY_POLICIES = ("strict", "accept-new", "ignore")


def known_hosts_pattern(host: str, port: int | None) -> str:
    """The known_hosts name of a server: ``host`` on port 22, else ``[host]:port``."""
    return f"[{host}]:{port}" if port and port != 22 else host


class _ExactPortKnownHosts(asyncssh.SSHKnownHosts):
    """asyncssh's known_hosts list, without the fallback from ``[host]:port`` to ``host``."""

    def match(self, host: str, addr: str, port: int | None):
        return self._match(host, addr, port if port and port != 22 else None)


def _stat_key(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class KnownHostsFile:
    """One known_hosts file held in memory.

    Args:
        path: the file (it need not exist yet; it is created by the first :meth:`record`).
    """

    def __init__(self, path: Path):
        self.path = path
        self._stat: tuple | None = None
        self._entries = _ExactPortKnownHosts()
        self.loads = 0  # how many times the file was parsed (figures and tests)
        self._reload_if_changed()

    def _reload_if_changed(self) -> None:
        """Parse the file again only if some other program changed it since we last saw it."""
        stat = _stat_key(self.path)
        if stat == self._stat:
            return
        text = ""
        if stat is not None:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        self._entries = _ExactPortKnownHosts(text)
        self._stat = stat
        self.loads += 1

    def match(self, host: str, addr: str, port: int | None):
        """asyncssh's lookup callback: the keys on record for exactly this host and port."""
        self._reload_if_changed()
        return self._entries.match(host, addr, port)

    def recorded_keys(self, host: str, port: int | None) -> list:
        """The plain host keys on record for ``host`` on ``port``."""
        return list(self.match(host, "", port)[0])

    def record(self, host: str, port: int | None, key: asyncssh.SSHKey) -> None:
        """Append ``key`` for ``host`` and ``port`` to the file and to the copy in memory."""
        self._reload_if_changed()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        public = key.export_public_key("openssh").decode().split()
        line = f"{known_hosts_pattern(host, port)} {public[0]} {public[1]}\n"
        with open(self.path, "a", encoding="utf-8") as known:
            known.write(line)
        self._entries.load(line)
        self._stat = _stat_key(self.path)


_FILES: dict[str, KnownHostsFile] = {}
_FILES_LOCK = threading.Lock()
_BY_SPELLING: dict[tuple, KnownHostsFile] = {}


def known_hosts_file(path: str | os.PathLike | None) -> KnownHostsFile:
    """The process-wide :class:`KnownHostsFile` of ``path`` (default ``~/.ssh/known_hosts``)."""
    # the argument's own spelling first: resolving it (home, working directory) costs more
    # than the lookup, once per connection
    spelled = (os.fspath(path) if path else None, os.environ.get("HOME"), _cwd_if_relative(path))
    found = _BY_SPELLING.get(spelled)
    if found is not None:
        return found
    resolved = Path(path or "~/.ssh/known_hosts").expanduser().absolute()
    with _FILES_LOCK:
        found = _FILES.get(str(resolved))
        if found is None:
            found = _FILES[str(resolved)] = KnownHostsFile(resolved)
        _BY_SPELLING[spelled] = found
        return found


def _cwd_if_relative(path) -> str | None:
    text = os.fspath(path) if path else "~"
    return None if text.startswith(("/", "~")) else os.getcwd()


def unlisted_key_verdict(store: KnownHostsFile, policy: str, host: str, port: int | None,
                         key: asyncssh.SSHKey) -> tuple[bool, str | None]:
    """Decide on a host key that asyncssh did not find on record for ``host`` and ``port``.

    Returns:
        ``(accepted, trouble)``: ``trouble`` says why a key is refused and how to fix it, or,
        for an accepted key, that it was just recorded (None when it was already there).
    """
    fingerprint = key.get_fingerprint()
    pattern = known_hosts_pattern(host, port)
    recorded = store.recorded_keys(host, port)
    if any(known.public_data == key.public_data for known in recorded):
        return True, None  # recorded meanwhile by a concurrent first connection
    path = store.path
    if recorded:
        return False, (
            f"host key of {pattern} has CHANGED: the server offers {fingerprint}, which differs "
            f"from the key recorded in {path}. If {host} was re-installed, remove the old key "
            f"with: ssh-keygen -R '{pattern}' -f {path} (or set host_key_policy='ignore' for "
            f"nodes that are re-imaged often)")
    if policy == "strict":
        return False, (
            f"host {pattern} is not in {path} and host_key_policy is 'strict' (server key "
            f"{fingerprint}); add it with: ssh-keyscan -p {port or 22} {host} >> {path}, "
            f"or use host_key_policy='accept-new'")
    store.record(host, port, key)
    return True, f"new host key {fingerprint} recorded in {path}"

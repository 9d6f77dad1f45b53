"""OpenSSH client config: each host's options resolved once per process, and ProxyJump lists.

The config files are parsed by asyncssh (its :class:`SSHClientConfig`); the result for one
(files, host, user, port) is kept, so that many connections to one host, or a ProxyJump
gateway shared by many nodes, never parse the files again. A file changed on disk is read again.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.config import SSHClientConfig

# ProxyJump chains longer than this are taken for loops in ~/.ssh/config
MAX_CONFIG_HOPS = 16


def config_paths(ssh_config: Any) -> list[Path]:
    """The config files meant by an SshProxy's ``ssh_config`` argument.

    ``()`` means ~/.ssh/config when it exists; None means no config; a path or a list of paths.
    """
    if ssh_config is None:
        return []
    if ssh_config == ():
        default = _default_config_path()
        return [default] if default.is_file() else []
    paths = [ssh_config] if isinstance(ssh_config, (str, os.PathLike)) else ssh_config
    return [Path(path).expanduser() for path in paths]


def _default_config_path() -> Path:
    """~/.ssh/config, worked out once per value of $HOME."""
    return _config_in_home(os.environ.get("HOME"))


@functools.lru_cache(maxsize=4)
def _config_in_home(home: str | None) -> Path:
    return (Path(home) if home else Path.home()) / ".ssh" / "config"


def _stamp(paths: list[Path]) -> tuple:
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((str(path), None, None))
    return tuple(stamps)


_CACHE: dict[tuple, SSHClientConfig] = {}
_CACHE_LOCK = threading.Lock()
parses = 0  # how many times config files were parsed in this process (figures and tests)


def host_config(paths: list[Path], local_user: str, hostname: str, username: str | None,
                port: int) -> SSHClientConfig:
    """The options of ``hostname`` in the config ``paths`` (an empty config when there are none).

    Raises:
        ValueError naming the files when they cannot be read or parsed.
    """
    global parses
    port_arg = port if port != 22 else ()
    # with no file, nothing depends on the host name (it only serves Host/Match and tokens
    # while parsing): one empty config for every host
    key = (_stamp(paths), local_user, hostname if paths else None, username or (), port_arg)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    try:
        config = SSHClientConfig.load(None, paths, False, False, False, local_user,
                                      username or (), hostname, port_arg)
    except (OSError, asyncssh.Error, ValueError) as exc:
        raise ValueError(f"{hostname}: cannot read ssh config {[str(p) for p in paths]}: {exc}") from exc
    if paths:
        parses += 1
    with _CACHE_LOCK:
        _CACHE[key] = config
    return config


def parse_jump(jump: str) -> list[tuple[str | None, str, int]]:
    """A ProxyJump value as ``(user or None, host, port)`` hops, first hop first.

    Raises:
        ValueError for a port that is not a number.
    """
    hops = []
    for spec in jump.split(","):
        user, _, hostport = spec.strip().rpartition("@")
        host, port = hostport, 22
        if hostport.startswith("[") and "]" in hostport:  # [v6addr]:port
            host, _, rest = hostport[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif hostport.count(":") == 1:
            host, port_text = hostport.split(":")
            try:
                port = int(port_text)
            except ValueError:
                raise ValueError(f"ProxyJump {jump!r}: port {port_text!r} is not a number") from None
        hops.append((user or None, host, port))
    return hops

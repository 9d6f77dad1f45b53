"""Targets of the apssh commands: host names, user@host:port, gw->host, node sets, files.

A target string may hold several targets, separated by spaces, tabs, newlines or commas
(commas inside node-set brackets such as ``fit[01-03,07]`` belong to the set).  Node sets
are expanded with ClusterShell.  A target may name its own gateway: ``gw->host``
(or ``gw→host``); ``None->host`` is reached directly even when a default gateway is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: where relative target files and directories are also looked up
APSSH_DIR = Path("~/.apssh")
GATEWAY_ARROWS = ("->", "→")
NO_GATEWAY = "None"


class TargetError(ValueError):
    """A target that cannot be understood; the message names it."""


@dataclass(frozen=True)
class Target:
    """One login on one host, possibly reached through a gateway.

    ``gateway`` is another Target, or None (use the default gateway if any);
    ``direct`` is True for ``None->host`` (never use a gateway).
    """

    hostname: str
    username: str | None = None
    port: int | None = None
    gateway: Target | None = None
    direct: bool = False

    def login(self) -> str:
        """``[user@]host[:port]``, without the gateway."""
        host = f"[{self.hostname}]" if self.port and ":" in self.hostname else self.hostname  # IPv6
        text = f"{self.username}@{host}" if self.username else host
        return f"{text}:{self.port}" if self.port else text

    def __str__(self) -> str:
        if self.direct:
            return f"{NO_GATEWAY}->{self.login()}"
        return f"{self.gateway}->{self.login()}" if self.gateway else self.login()


def parse_login(text: str) -> Target:
    """``[user@]host[:port]`` (``[v6addr]:port`` too) as a Target without gateway."""
    text = text.strip()
    username, _, hostport = text.rpartition("@")
    port = None
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    else:
        host = hostport
    if not host or (username == "" and "@" in text):
        raise TargetError(f"target {text!r}: expected [user@]host[:port]")
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise TargetError(f"target {text!r}: port {port!r} is not a number between 1 and 65535")
        port = int(port)
    return Target(hostname=host, username=username or None, port=port)


def parse_target(text: str) -> Target:
    """One target: ``[gw->]...[user@]host[:port]``, gateways chained by arrows."""
    for arrow in GATEWAY_ARROWS[1:]:
        text = text.replace(arrow, GATEWAY_ARROWS[0])
    hops = [hop.strip() for hop in text.split(GATEWAY_ARROWS[0])]
    if any(not hop for hop in hops):
        raise TargetError(f"target {text!r}: empty name around '->'")
    direct = False
    if hops[0] == NO_GATEWAY:
        direct = True
        hops = hops[1:]
        if len(hops) != 1:
            raise TargetError(f"target {text!r}: 'None->' must be followed by exactly one host")
    gateway = None
    for hop in hops[:-1]:
        login = parse_login(hop)
        gateway = Target(login.hostname, login.username, login.port, gateway=gateway)
    last = parse_login(hops[-1])
    return Target(last.hostname, last.username, last.port, gateway=gateway, direct=direct)


def split_target_words(text: str) -> list[str]:
    """Split on whitespace and commas, except commas inside ``[...]``."""
    words, current, depth = [], [], 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        if (char.isspace() or char == ",") and depth == 0:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        words.append("".join(current))
    return words


def expand_word(word: str) -> list[str]:
    """A word with its node set expanded: ``gw->fit[01-02]`` gives two targets."""
    if "[" not in word:
        return [word]
    normalized = word
    for arrow in GATEWAY_ARROWS[1:]:
        normalized = normalized.replace(arrow, GATEWAY_ARROWS[0])
    prefix, arrow, last = normalized.rpartition(GATEWAY_ARROWS[0])
    user, at, hostport = last.rpartition("@")
    if hostport.startswith("[") and ":" in hostport.partition("]")[0]:
        return [word]  # [IPv6 address]:port, not a node set
    from ClusterShell.NodeSet import NodeSet, NodeSetParseError  # noqa: PLC0415 (only for node sets)

    try:
        hosts = list(NodeSet(hostport))
    except NodeSetParseError as exc:
        raise TargetError(f"target {word!r}: bad node set: {exc}") from None
    return [f"{prefix}{arrow}{user}{at}{host}" for host in hosts]


def expand_words(text: str) -> list[str]:
    """All target strings named by ``text`` (lists split, node sets expanded)."""
    return [name for word in split_target_words(text) for name in expand_word(word)]


def _existing(name: str, kind: str) -> Path | None:
    """``name`` as a file (kind='file') or directory, here or under ~/.apssh; OSError-proof."""
    # os.path, not Path.expanduser: ~nosuchuser stays as it is instead of raising RuntimeError
    candidates = [Path(os.path.expanduser(name))]
    if not os.path.isabs(name):
        candidates.append(APSSH_DIR.expanduser() / name)
    for path in candidates:
        try:
            if (path.is_file() if kind == "file" else path.is_dir()):
                return path
        except (OSError, ValueError):  # names too long or with NUL are not files
            continue
    return None


def read_target_file(path: Path) -> list[str]:
    """Targets listed in a file, ``#`` comments and blank lines ignored.

    Raises TargetError when the file is not text (probably not a target list).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"target file {path}: cannot be read as text: {exc}") from None
    names = []
    for line in text.splitlines():
        names.extend(expand_words(line.split("#", 1)[0]))
    return names


def analyze_target(target: str) -> tuple[bool, list[str]]:
    """What a ``-t`` argument names: a file of targets, a directory, or targets inline.

    Returns:
        ``(True, [names...])``, or ``(False, [])`` when it cannot be understood (an
        unreadable file, a bad node set, an empty or blank string: never the current
        directory).
    """
    if not split_target_words(target):
        return False, []
    try:
        if (path := _existing(target, "file")) is not None:
            return True, read_target_file(path)
        if (path := _existing(target, "dir")) is not None:
            return True, sorted(entry.name for entry in path.iterdir() if entry.is_file())
        return True, expand_words(target)
    except TargetError:
        return False, []


def resolve_targets(target_args: list[str], exclude_args: list[str] = ()) -> list[Target]:
    """The Targets named by ``-t`` arguments, duplicates removed, ``-x`` exclusions applied.

    An exclusion naming a host alone excludes every login on that host.

    Raises:
        TargetError naming the argument that cannot be understood.
    """
    def collect(arguments, option):
        found = []
        for argument in arguments:
            if not split_target_words(argument):
                raise TargetError(f"{option} {argument!r}: empty target; give a host name, "
                                  f"user@host:port, a node set such as fit[01-12], or a file of targets")
            ok, names = analyze_target(argument)
            if not ok:
                _, detail = _explain(argument)
                raise TargetError(f"{option} {argument!r}: {detail}")
            try:
                found.extend(parse_target(name) for name in names)
            except TargetError as exc:
                raise TargetError(f"{option} {argument!r}: {exc}") from None
        return found

    targets = list(dict.fromkeys(collect(target_args, "-t")))
    excluded = collect(exclude_args, "-x")
    def is_excluded(target: Target) -> bool:
        for other in excluded:
            if other.hostname != target.hostname:
                continue
            if other.username is None and other.port is None:
                return True
            if other.username == target.username and other.port in (None, target.port):
                return True
        return False
    return [target for target in targets if not is_excluded(target)]


def _explain(argument: str) -> tuple[bool, str]:
    """Why ``argument`` could not be read, for the error message."""
    path = _existing(argument, "file")
    if path is not None:
        try:
            read_target_file(path)
        except TargetError as exc:
            return False, str(exc)
    try:
        expand_words(argument)
    except TargetError as exc:
        return False, str(exc)
    return False, "not a target list"


def fold(names) -> str:
    """Host names folded as a node set: ``fit[01-03,07]``."""
    names = list(names)
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    from ClusterShell.NodeSet import NodeSet, NodeSetParseError  # noqa: PLC0415 (only to fold many)

    try:
        return str(NodeSet.fromlist(names))
    except NodeSetParseError:
        return ",".join(names)

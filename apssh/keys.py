"""Finding private keys: from the command line, the ssh agent, or ~/.ssh.

What this module has to say (a key that cannot be used, how many keys were loaded) goes to
the ``apssh.keys`` logger when a front-end listens there (a handler on ``apssh.keys`` or
``apssh``: apssh-tui shows them in its output, under its screen they would be lost), and to
stderr otherwise, as ``apssh: <message>`` (the commands).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import getpass
import logging
import os
import sys
from pathlib import Path

import asyncssh

#: default key files, tried in this order when no key is given and the agent has none
DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa", "id_dsa")
#: the same as paths in ~/.ssh (apssh 0.27 name; 0.27 tried only id_rsa and id_dsa)
default_private_keys = tuple(Path.home() / ".ssh" / name for name in DEFAULT_KEY_NAMES)

log = logging.getLogger("apssh.keys")
#: whether a passphrase may be asked on the terminal (True by default); a full-screen front-end
#: (apssh-tui) sets it to False while its screen is up: a prompt there would be hidden and hang
ask_on_terminal = True


def _listened() -> bool:
    """Whether a front-end put a handler on ``apssh.keys`` or ``apssh`` (the root logger's do not count:
    an application's catch-all logging must not hide these messages from the terminal)."""
    logger = log
    while logger is not None and logger.name.startswith("apssh"):
        if logger.handlers:
            return True
        logger = logger.parent
    return False


def _say(message: str, level: int = logging.WARNING) -> None:
    """``message`` to the listening front-end, or to stderr."""
    if _listened():
        log.log(level, message)
    else:
        print(f"apssh: {message}", file=sys.stderr)


def import_private_key(filename: str | os.PathLike) -> asyncssh.SSHKey | None:
    """Load the private key in ``filename``; asks for its passphrase on a terminal if needed.

    Returns:
        the asyncssh SSHKey, or None when the file is missing or cannot be read as a key
        (the reason goes to stderr, or to the ``apssh.keys`` logger when a front-end listens).
    """
    path = Path(filename).expanduser()
    try:
        return asyncssh.read_private_key(path)
    except asyncssh.KeyEncryptionError:
        pass
    except (OSError, asyncssh.KeyImportError) as exc:
        # asyncssh reports an encrypted key read without passphrase as a KeyImportError
        if not (isinstance(exc, asyncssh.KeyImportError) and "passphrase must be specified" in str(exc).lower()):
            _say(f"cannot use private key {path}: {exc}")
            return None
    if not ask_on_terminal:
        _say(f"private key {path} needs a passphrase, which cannot be asked while the screen is "
             "in use; load it into ssh-agent (ssh-add) instead")
        return None
    if not sys.stdin or not sys.stdin.isatty():
        _say(f"private key {path} needs a passphrase and there is no terminal to ask; "
             "load it into ssh-agent (ssh-add) instead")
        return None
    for _ in range(3):
        passphrase = getpass.getpass(f"Enter passphrase for key {path}: ")
        try:
            return asyncssh.read_private_key(path, passphrase)
        except asyncssh.KeyEncryptionError:
            print("wrong passphrase", file=sys.stderr)
    return None


async def co_load_agent_keys(agent_path: str | None = None) -> list:
    """Async version of :func:`load_agent_keys`."""
    agent_path = agent_path or os.environ.get("SSH_AUTH_SOCK")
    if not agent_path:
        return []
    try:
        async with asyncssh.connect_agent(agent_path) as agent:
            return list(await agent.get_keys())
    except (OSError, asyncssh.Error):
        return []


def _run_coroutine_anywhere(coro_factory):
    """Run a coroutine to completion, even when called from inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    # inside a loop: a private loop in a worker thread avoids re-entering this one
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro_factory()).result()


def load_agent_keys(agent_path: str | None = None) -> list:
    """The keys that ssh-agent offers.

    Args:
        agent_path: the agent's socket; default ``$SSH_AUTH_SOCK``.

    Returns:
        a list of agent keys, empty when no agent can be reached.
    """
    return _run_coroutine_anywhere(lambda: co_load_agent_keys(agent_path))


def default_key_files(ssh_dir: str | os.PathLike | None = None) -> list[Path]:
    """The default key files of ``~/.ssh`` that exist, in preference order."""
    directory = Path(ssh_dir) if ssh_dir else Path("~/.ssh").expanduser()
    return [directory / name for name in DEFAULT_KEY_NAMES if (directory / name).is_file()]


def load_private_keys(command_line_keys=None, verbose: bool = False) -> list:
    """The default policy for private keys, shared by the commands and SshNode.

    1. keys given explicitly (``command_line_keys``, e.g. from ``apssh -k``): exactly those;
    2. otherwise the keys of the ssh agent (``$SSH_AUTH_SOCK``), when it has any;
    3. otherwise ``~/.ssh/id_ed25519``, ``id_ecdsa``, ``id_rsa``, ``id_dsa`` that exist.

    Returns:
        a list of keys (possibly empty: the caller decides how to report that).
    """
    if command_line_keys:
        keys = [import_private_key(filename) for filename in command_line_keys]
        loaded = [key for key in keys if key is not None]
        if verbose:
            _say(f"{len(loaded)} key(s) loaded from {list(command_line_keys)}", logging.INFO)
        return loaded
    agent_keys = load_agent_keys()
    if agent_keys:
        if verbose:
            _say(f"using {len(agent_keys)} key(s) from ssh-agent", logging.INFO)
        return agent_keys
    keys = [import_private_key(path) for path in default_key_files()]
    loaded = [key for key in keys if key is not None]
    if verbose:
        _say(f"{len(loaded)} key(s) loaded from ~/.ssh", logging.INFO)
    return loaded

"""Defaults, under the names apssh 0.27 scripts import from ``apssh.config``.

* ``default_time_name``: ``YYYY-MM-DD@HH:MM`` when apssh was imported (0.27's run names);
* ``default_username``: the local login name;
* ``default_timeout``: seconds to connect and authenticate (30);
* ``default_private_keys``: the key files tried when no key is given and ssh-agent has none,
  in order (``~/.ssh/id_ed25519``, ``id_ecdsa``, ``id_rsa``, ``id_dsa``; 0.27 tried only the
  last two);
* ``local_config_dir``: ``~/.apssh``, where target files are also looked up;
* ``default_remote_workdir``: ``.apssh-remote``, the remote directory (relative to the login's
  home) where scripts are copied.
"""

from __future__ import annotations

import time
from pathlib import Path

from .commands import REMOTE_DIR
from .keys import DEFAULT_KEY_NAMES
from .sshproxy import local_username

__all__ = ["default_time_name", "default_username", "default_timeout", "default_private_keys",
           "local_config_dir", "default_remote_workdir"]

default_time_name = time.strftime("%Y-%m-%d@%H:%M")
default_username = local_username()
default_timeout = 30
default_private_keys = tuple(Path.home() / ".ssh" / name for name in DEFAULT_KEY_NAMES)
local_config_dir = Path.home() / ".apssh"
default_remote_workdir = REMOTE_DIR

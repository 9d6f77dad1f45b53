"""Users' own keys: a YAML file mapping binding ids to keys, e.g. ``app.rerun_failed: ctrl+r``.

Read from ``--keys FILE``, else from ``~/.config/apssh-tui/keys.yaml`` when it exists.  The ids
are the ones the help screen (F1) lists.
"""

from __future__ import annotations

from pathlib import Path

import yaml

DEFAULT_KEYMAP = Path("~/.config/apssh-tui/keys.yaml")


class KeymapError(ValueError):
    """A keymap file that cannot be used; the message names the file and the entry."""


def load_keymap(path: str | Path, known_ids: set[str]) -> dict[str, str]:
    """The ``{binding id: key}`` mapping of ``path``.

    Raises:
        KeymapError for an unreadable file, a file that is not a mapping, an unknown id
        (the message lists the known ones) or a key that is not a string.
    """
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KeymapError(f"{path}: cannot read the keymap: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KeymapError(f"{path}: a keymap maps binding ids to keys, e.g. 'app.start: ctrl+s'")
    keymap = {}
    for binding_id, key in data.items():
        if binding_id not in known_ids:
            raise KeymapError(f"{path}: unknown binding id {binding_id!r}; known ids: {', '.join(sorted(known_ids))}")
        if not isinstance(key, str) or not key.strip():
            raise KeymapError(f"{path}: {binding_id}: the key must be a string such as 'ctrl+r', got {key!r}")
        keymap[binding_id] = key.strip()
    return keymap


def default_keymap_file() -> Path | None:
    """``~/.config/apssh-tui/keys.yaml`` if it exists."""
    path = DEFAULT_KEYMAP.expanduser()
    return path if path.is_file() else None

"""Natural order: ``probe2`` before ``probe10``, ``127.0.0.9`` before ``127.0.0.10``."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: object) -> tuple:
    """A sort key that compares runs of digits as numbers (case-insensitive otherwise).

    ``sorted(["probe10", "probe2"], key=natural_key)`` gives ``["probe2", "probe10"]``.
    """
    text = str(text)
    parts = _DIGITS.split(text)
    return tuple((0, int(part)) if index % 2 else (1, part.lower())
                 for index, part in enumerate(parts)) + ((2, text),)

"""Small helpers apssh 0.27 scripts import from ``apssh.util``."""

from __future__ import annotations

import sys

__all__ = ["print_stderr", "check_arg_type"]


def print_stderr(*args, **kwds) -> None:
    """``print()`` on standard error (same arguments as print)."""
    print(*args, file=sys.stderr, **kwds)


def check_arg_type(instance, types, message: str) -> None:
    """Check that ``instance`` is of ``types`` (a class or a tuple of classes, as isinstance takes).

    Raises:
        ValueError naming the argument (``message``), the expected types and the given one, e.g.
        ``SshProxy.gateway is expected to be an instance of SshProxy, got a str instead``.
    """
    if isinstance(instance, types):
        return
    expected = " or ".join(kind.__name__ for kind in (types if isinstance(types, tuple) else (types,)))
    raise ValueError(f"{message} is expected to be an instance of {expected}, "
                     f"got a {type(instance).__name__} instead")

"""The apssh command's implementation, where apssh 0.27 had it (see :mod:`apssh.cli`)."""

from .cli import Appull, Appush, Apssh, main

__all__ = ["Apssh", "Appush", "Appull", "main"]

"""Where the apssh, appush and appull commands start: before the apssh package is imported.

An SSH command has no use for TLS, but asyncio imports Python's ``ssl`` module, and with it the
system's libssl, as soon as it is imported itself: 1.2 MB of each command's memory and about
8 ms of its start (bench/RESULTS.md, "Sixth pass").  The apssh package imports asyncio at
once, so the commands start here, outside it: ``ssl`` is recorded as absent before anything
imports asyncio, which asyncio accepts (it then offers no TLS, which nothing here asks for).

Only the commands' processes are concerned: a program that imports apssh, and
``python -m apssh``, load asyncio as usual.
"""

from __future__ import annotations

import sys


def _cli():
    """apssh.cli, imported without Python's ssl module (unless something loaded it already)."""
    sys.modules.setdefault("ssl", None)
    from apssh import cli  # noqa: PLC0415

    return cli


def apssh_main() -> None:
    """The apssh command."""
    _cli().apssh_main()


def appush_main() -> None:
    """The appush command."""
    _cli().appush_main()


def appull_main() -> None:
    """The appull command."""
    _cli().appull_main()

"""The event loop of the apssh, appush and appull commands: uvloop when it is installed.

uvloop (``pip install 'apssh-tui[fast]'``) runs the same asyncio code on libuv; the fan-out
benchmarks (bench/RESULTS.md) measure what it changes. Without it, the standard asyncio loop
is used; nothing else differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory():
    """``uvloop.new_event_loop`` when uvloop can be imported, else None (asyncio's default loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Like ``asyncio.run(coroutine)``, on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coroutine)

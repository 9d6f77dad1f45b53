"""Helpers shared by the fault tests."""

from __future__ import annotations

from testbed import Testbed


def hp(testbed: Testbed, name: str) -> str:
    """``address:port`` of testbed host ``name``, as a -t target."""
    host = testbed.host(name)
    return f"{host.address}:{host.port}"

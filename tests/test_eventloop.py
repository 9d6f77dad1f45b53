"""The commands' event loop: uvloop when it is installed, asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from apssh import eventloop


def test_run_returns_the_coroutine_result():
    """eventloop.run runs a coroutine to completion, like asyncio.run."""
    async def answer():
        await asyncio.sleep(0)
        return 42
    assert eventloop.run(answer()) == 42


def test_uvloop_when_installed():
    """With uvloop importable, the commands' loop is a uvloop loop."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is the optional 'fast' extra")

    async def loop_type():
        return type(asyncio.get_running_loop())
    assert eventloop.run(loop_type()) is uvloop.Loop


def test_asyncio_loop_without_uvloop(monkeypatch):
    """Without uvloop (hidden here), the standard asyncio loop runs the commands."""
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert eventloop.loop_factory() is None

    async def loop_module():
        return type(asyncio.get_running_loop()).__module__
    assert eventloop.run(loop_module()).startswith("asyncio")


def test_the_apssh_command_loads_no_yaml_nor_graphviz():
    """Importing the command line loads neither YAML scenarios nor graphviz (start-up cost per run)."""
    code = ("import sys, apssh.cli; "
            "print(sorted(m for m in ('yaml', 'graphviz', 'apssh.yaml_loader') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_names_still_importable_from_apssh():
    """Scenario, YamlLoader, Service and the topology helpers are importable from apssh."""
    import apssh
    from apssh import Scenario, Service, YamlLoader, topology_dot  # noqa: F401

    assert set(apssh.__all__) <= set(dir(apssh))
    for name in apssh.__all__:
        assert getattr(apssh, name) is not None

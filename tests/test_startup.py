"""What the apssh command loads at start-up (paid once per run, on every run)."""

from __future__ import annotations

import subprocess
import sys


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

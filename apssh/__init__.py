"""apssh: asynchronous parallel ssh, on asyncssh and asynciojobs.

Everything a scenario needs is importable from here: ``from apssh import SshNode, SshJob, Run``.
"""

import importlib

# first: imports asyncssh without its liboqs probe's subprocesses (see apssh/_startup.py)
from . import _startup  # noqa: F401, I001
from .commands import CommandFailedError, Pull, Push, Run, RunScript, RunString
from .deferred import Capture, Deferred, Variables
from .formatters import (
                         CaptureFormatter,
                         ColonFormatter,
                         Formatter,
                         HostFormatter,
                         RawFormatter,
                         SubdirFormatter,
                         TerminalFormatter,
                         TimeColonFormatter,
                         TimeHostFormatter,
)
from .keys import import_private_key, load_agent_keys, load_private_keys
from .nodes import LocalNode, SshNode
from .sshproxy import HostKeyError, SshConnectError, SshProxy
from .version import __version__

# imported on first use: the apssh command needs none of them (YAML, graphviz, services;
# SshJob brings asynciojobs)
_LAZY = {
    "SshJob": ".sshjob",
    "Scenario": ".scenario", "load_scenario": ".scenario",
    "Service": ".service",
    "limit_handshakes": "._hops",
    "close_ssh_in_scheduler": ".topology", "co_close_ssh_in_scheduler": ".topology",
    "topology_as_dotfile": ".topology", "topology_as_pngfile": ".topology", "topology_dot": ".topology",
    "topology_graph": ".topology",
    "ScenarioError": ".yaml_loader", "YamlLoader": ".yaml_loader",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Pull", "Push", "Run", "RunScript", "RunString",
    "Capture", "Deferred", "Variables",
    "CaptureFormatter", "ColonFormatter", "Formatter", "HostFormatter", "RawFormatter",
    "SubdirFormatter", "TerminalFormatter", "TimeColonFormatter", "TimeHostFormatter",
    "import_private_key", "load_agent_keys", "load_private_keys",
    "LocalNode", "SshNode", "Service", "CommandFailedError", "SshJob",
    "HostKeyError", "SshConnectError", "SshProxy",
    "close_ssh_in_scheduler", "co_close_ssh_in_scheduler", "topology_as_dotfile",
    "topology_as_pngfile", "topology_dot", "topology_graph", "__version__",
    "Scenario", "ScenarioError", "YamlLoader", "load_scenario", "limit_handshakes",
]

"""apssh: asynchronous parallel ssh, on asyncssh and asynciojobs.

Everything a scenario needs is importable from here: ``from apssh import SshNode, SshJob, Run``.
"""

from .commands import Pull, Push, Run, RunScript, RunString
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
from .scenario import Scenario, load_scenario
from .service import Service
from .sshjob import CommandFailedError, SshJob
from .sshproxy import HostKeyError, SshConnectError, SshProxy
from .topology import (
                         close_ssh_in_scheduler,
                         co_close_ssh_in_scheduler,
                         topology_as_dotfile,
                         topology_as_pngfile,
                         topology_dot,
                         topology_graph,
)
from .version import __version__
from .yaml_loader import ScenarioError, YamlLoader

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
    "Scenario", "ScenarioError", "YamlLoader", "load_scenario",
]

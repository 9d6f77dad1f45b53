"""Scripts written for apssh 0.27 keep working: the behaviours they rely on, one test each.

The scenarios here are written for these tests, following the patterns 0.27 scripts use
(f-strings around commands, commands wrapped in Run, booleans as script arguments...).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from helpers import CommandRecorder, known_node, run_jobs

from apssh import (
    Capture,
    Deferred,
    LocalNode,
    Pull,
    Push,
    Run,
    RunScript,
    RunString,
    Service,
    SshJob,
    SshNode,
    TerminalFormatter,
    Variables,
    config,
)
from apssh.commands import REMOTE_DIR
from apssh.formatters import VerboseFormatter
from apssh.keys import default_private_keys
from apssh.util import check_arg_type, print_stderr


def write_script(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


# ---------------------------------------------------------------- 1. commands are str-like
def test_commands_are_str_like_and_repr_stays_readable(tmp_path):
    """str() of a command is its command line (0.27 StrLikeMixin); repr() keeps the class name."""
    script = write_script(tmp_path / "setup.sh", "#!/bin/sh\n")
    assert str(Run("a", "b")) == "a b"
    assert f"ssh node {Run('uname', '-r')}" == "ssh node uname -r"
    assert repr(Run("a", "b")) == "<Run: a b>"
    assert str(RunScript(script, "x", 2)) == "setup.sh x 2"
    assert str(RunString("#!/bin/sh\necho $1\n", "x", remote_name="say.sh")) == "say.sh x"


def test_service_commands_are_str_like():
    """A Service command in an f-string gives its shell line, not '<Run: ...>'."""
    service = Service("sleep 100", service_id="compat-sleep", backend="systemd")
    assert str(service.stop_command()) == service.stop_line()
    assert f"ssh n {service.start_command()}" == f"ssh n {service.start_line('sleep 100')}"


def test_str_of_a_deferred_command_keeps_unknown_variables_as_templates():
    """Before the run, str() shows a variable that is not captured yet as its template (as 0.27)."""
    env = Variables()
    command = Run("ping", Deferred("{{peer}}", env))
    assert str(command) == "ping {{peer}}"
    env.peer = "fit02"
    assert str(command) == "ping fit02"


def test_boolean_and_number_parts_are_text():
    """Parts that are bool, int or float are joined as str() shows them, as in 0.27."""
    assert Run("ls", True, 3, 1.5).command_line() == "ls True 3 1.5"
    assert SshJob(SshNode("fit01"), commands=["echo", False, 2]).commands[0].command_line() == "echo False 2"
    assert str(RunScript("/tmp/s.sh", "x", True)) == "s.sh x True"


def test_command_wrapping_a_command_runs_its_command_line(testbed):
    """Run(Run('a', 'b')) runs 'a b'; concatenating text to a Run extends its command line."""
    recorder = CommandRecorder()
    env = Variables()
    inner = Run("echo", "inner", 1)
    commands = [Run(inner, capture=Capture("wrapped", env)),
                Run("echo") + " concatenated",
                "printf '%s' " + Run("prefixed")]
    commands[1].capture = Capture("appended", env)
    commands[2].capture = Capture("prepended", env)
    assert run_jobs(SshJob(known_node(testbed, "node1", formatter=recorder), commands=commands))
    assert recorder.commands == ["echo inner 1", "echo concatenated", "printf '%s' prefixed"]
    assert (env.wrapped, env.appended, env.prepended) == ("inner 1", "concatenated", "prefixed")


def test_run_of_a_service_command_runs_it_with_its_allowed_exits(testbed):
    """Run(service.status_command()) runs the status line; 'not running' (exit 3) is still an answer."""
    service = Service("sleep 100", service_id=f"compat-{uuid.uuid4().hex[:8]}", backend="process")
    env = Variables()
    status = Run(service.status_command(), capture=Capture("status", env))
    assert status.service is service
    assert run_jobs(SshJob(known_node(testbed, "node1"), commands=[status]))
    assert env.status == f"{service.service_id}: inactive"


def test_runscript_with_boolean_argument_runs(testbed, tmp_path):
    """RunScript('s.sh', 'x', True) runs 's.sh x True' (0.27 scripts pass flags this way)."""
    script = write_script(tmp_path / "args.sh", """
        #!/bin/sh
        echo "$@"
        """)
    env = Variables()
    assert run_jobs(SshJob(known_node(testbed, "node1"),
                           commands=RunScript(script, "x", True, 7, capture=Capture("out", env))))
    assert env.out == "x True 7"


# ---------------------------------------------------------------- 3. names 0.27 scripts import
def test_localnode_names_as_in_027():
    """LocalNode().hostname is LOCALNODE; username is the terminal's login, LOCALUSER without one."""
    node = LocalNode()
    assert node.hostname == "LOCALNODE"
    try:
        login = os.getlogin()
    except OSError:
        login = "LOCALUSER"
    assert node.username == login


def test_get_label_line_is_label_line(tmp_path):
    """get_label_line() (what 0.27 SshJob called) is label_line() on every command."""
    commands = [Run("ls", "-l"), Run("true", label="named"), RunScript(tmp_path / "s.sh", 1),
                RunString("#!/bin/sh\n"), Push("a", "b"), Pull("c", "d")]
    assert [command.get_label_line() for command in commands] == [command.label_line() for command in commands]


def test_verbose_formatter_prints_events_when_verbose(capsys):
    """apssh.formatters.VerboseFormatter: a base for custom formatters, events on stderr if verbose."""
    class Collect(VerboseFormatter):
        def __init__(self):
            super().__init__("@host@ @line@", verbose=True)
            self.seen = []

        def line(self, line, datatype, hostname):
            self.seen.append(self.format_lines([line], hostname))

    formatter = Collect()
    formatter.connection_made("fit01", "root", True)
    formatter.lines(["hello\n"], None, "fit01")
    assert formatter.seen == ["fit01 hello\n"]
    assert "fit01: connected (direct) as root" in capsys.readouterr().err
    assert issubclass(TerminalFormatter, VerboseFormatter)
    quiet = VerboseFormatter("@line@", verbose=False)
    quiet.connection_made("fit01", "root", True)
    assert capsys.readouterr().err == ""


def test_util_config_and_keys_names():
    """apssh.util, apssh.config and apssh.keys.default_private_keys with their 0.27 names."""
    print_stderr("to", "stderr")
    check_arg_type(3, (int, str), "width")
    with pytest.raises(ValueError, match="width is expected to be an instance of int or str, got a list"):
        check_arg_type([], (int, str), "width")
    assert config.default_remote_workdir == REMOTE_DIR == ".apssh-remote"
    assert config.default_timeout == 30
    assert re.fullmatch(r"\d{4}-\d\d-\d\d@\d\d:\d\d", config.default_time_name)
    assert config.default_username
    # paths in the home directory of the time apssh was imported (as 0.27)
    home = config.local_config_dir.parent
    assert config.local_config_dir == home / ".apssh"
    assert home / ".ssh" / "id_rsa" in default_private_keys
    assert config.default_private_keys == default_private_keys


def test_python_dash_m_apssh_is_the_command():
    """python -m apssh runs the apssh command, as with 0.27."""
    result = subprocess.run([sys.executable, "-m", "apssh", "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("apssh ")


# ---------------------------------------------------------------- 7. labels users read
def test_labels_read_as_in_027(tmp_path):
    """A job of several commands reads 'first.. + 2'; RunScript shows its base name and arguments;
    the graph label starts with user@host."""
    node = SshNode("fit01", username="root")
    job = SshJob(node, commands=[RunScript(tmp_path / "deep" / "init.sh", "--fast", True),
                                 Run("uname -a"), Pull("log", "logs/")])
    assert job.text_label() == "RunScript: init.sh --fast True.. + 2"
    assert job.graph_label().splitlines() == ["root@fit01", "RunScript: init.sh --fast True", "uname -a",
                                              "Pull log -> logs/"]
    assert SshJob(LocalNode(), command="true").graph_label().splitlines()[0] == f"{LocalNode().username}@LOCALNODE"

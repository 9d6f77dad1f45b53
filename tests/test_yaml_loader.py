"""YamlLoader: YAML (and Jinja2) scenarios, loaded into schedulers that run on the real testbed.

Scenarios are written in tmp_path; the testbed's addresses and ports (picked at start) reach
them through the Jinja2 env (``hostname: "{{ node1_addr }}"``, ``port: {{ node1_port }}``),
except for the apssh 0.27 files, which are plain YAML using ~/.ssh/config host aliases.
"""

from __future__ import annotations

import os
import re
import socket
import textwrap
from pathlib import Path

import pytest
from asynciojobs import Scheduler
from testbed import wait_for

from apssh import CommandFailedError, LocalNode, RawFormatter, ScenarioError, SshJob, SshNode, YamlLoader
from apssh.sshproxy import HostKeyError, SshConnectError
from apssh.yaml_loader import ScenarioWarning

SCENARIOS = Path(__file__).parent / "scenarios"
HOSTS = ("node1", "node2", "node3", "node4", "gw1", "gw2", "gw3")


# ---------------------------------------------------------------- helpers
def jinja_env(testbed, tmp_path: Path, **extra) -> dict:
    """The Jinja2 variables of the scenarios: ``<host>_addr``, ``<host>_port``, user, key, tmp."""
    env = {"user": testbed.user, "key": str(testbed.client_key), "tmp": str(tmp_path),
           "addr": {name: testbed.host(name).address for name in HOSTS},
           "port": {name: testbed.host(name).port for name in HOSTS}}
    for name in HOSTS:
        host = testbed.host(name)
        env[f"{name}_addr"] = host.address
        env[f"{name}_port"] = host.port
    env.update(extra)
    return env


def node(ident: str, host: str, *extra: str, username: str = "{{ user }}") -> str:
    """A ``nodes:`` entry for testbed host ``host`` (Jinja2 placeholders), with extra ``key: value`` lines."""
    lines = [f"  - id: {ident}",
             f'    hostname: "{{{{ {host}_addr }}}}"',
             f"    port: {{{{ {host}_port }}}}",
             f'    username: "{username}"',
             *(f"    {line}" for line in extra)]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, body: str, name: str = "scenario.yaml") -> Path:
    """``body`` (dedented) written to ``tmp_path/name``."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip("\n"))
    return path


def scenario(tmp_path: Path, nodes: str, jobs: str, *, name: str = "scenario.yaml", top: str = "") -> Path:
    """A scenario file made of ``nodes:`` entries, ``jobs:`` entries (dedented) and other top-level text."""
    text = "nodes:\n" + nodes + "jobs:\n" + textwrap.indent(textwrap.dedent(jobs).strip("\n"), "  ") + "\n"
    return write(tmp_path, text + textwrap.dedent(top), name)


def load(testbed, path: Path, **extra) -> Scheduler:
    """The scheduler of scenario ``path``, rendered with :func:`jinja_env`."""
    return YamlLoader(path).load(jinja_env(testbed, path.parent, **extra))


def run(scheduler: Scheduler) -> bool:
    """Run ``scheduler`` (at most 30 s unless it says otherwise); its result."""
    if scheduler.timeout is None:
        scheduler.timeout = 30
    return scheduler.run()


def lines_of(path: Path) -> list[str]:
    """The words of a local file (the lines written by the jobs)."""
    return path.read_text().split()


def bad(tmp_path: Path, text: str, env: dict | None = None, name: str = "bad.yaml") -> ScenarioError:
    """The ScenarioError raised by loading ``text`` (written to ``tmp_path/name``)."""
    path = write(tmp_path, text, name)
    with pytest.raises(ScenarioError) as info:
        YamlLoader(path).load(env)
    return info.value


def assert_names(error: ScenarioError, path: Path, line: int, *values: str) -> None:
    """``error`` is one message naming ``path``, ``line`` and each of ``values``."""
    message = str(error)
    assert message.startswith(f"{path}:{line}: "), message
    assert error.filename == str(path)
    assert error.line == line
    for value in values:
        assert value in message, message
    assert "\n" not in message


@pytest.fixture
def alias_home(testbed, tmp_path, monkeypatch) -> Path:
    """A $HOME whose ~/.ssh/config names every testbed host by an alias (``node1-alias``...)."""
    home = tmp_path / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True)
    blocks = [f"Host {name}-alias\n    HostName {testbed.host(name).address}\n    Port {testbed.host(name).port}\n"
              for name in HOSTS]
    blocks.append(f"Host *\n    IdentityFile {testbed.client_key}\n")
    (ssh_dir / "config").write_text("".join(blocks))
    monkeypatch.setenv("HOME", str(home))
    return home


# ---------------------------------------------------------------- apssh 0.27 format
def test_apssh027_scenario_runs_unchanged(testbed, alias_home, tmp_path, capsys):
    """A plain apssh 0.27 file (nodes:, jobs:, gateway, required, Run) loads without Jinja2 and runs."""
    gw1, node1 = testbed.host("gw1"), testbed.host("node1")
    target = f"target {node1.address} port {node1.port}"
    forwarded = testbed.count_log(gw1, target)
    path = write(tmp_path, f"""
        nodes:
          - id: gateway
            hostname: gw1-alias
            username: {testbed.user}
          - id: inside
            hostname: node1-alias
            username: {testbed.user}
            gateway: gateway
          - id: direct
            hostname: node2-alias
            username: {testbed.user}
        jobs:
          - id: first
            node: direct
            commands:
              - type: Run
                command: echo first on $APSSH_TESTBED_HOST >> {tmp_path}/order
          - id: second
            node: inside
            required: first
            commands:
              - type: Run
                command: echo second on $APSSH_TESTBED_HOST >> {tmp_path}/order; echo hello
    """, "apssh027.yaml")

    scheduler = YamlLoader(path).load()
    assert run(scheduler)

    assert (tmp_path / "order").read_text() == "first on node2\nsecond on node1\n"
    assert capsys.readouterr().out == "node1-alias:hello\n"
    assert testbed.count_log(gw1, target) == forwarded + 1


def test_node_hostname_port_username(testbed, tmp_path, capsys):
    """hostname, port and username of a node choose the host and the login the commands run as."""
    login = testbed.second_user or testbed.user
    path = scenario(tmp_path, node("n", "node3", "formatter: RawFormatter", username=login), """
        - id: who
          node: n
          commands:
            - type: Run
              command: echo $APSSH_TESTBED_HOST $(id -un)
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == f"node3 {login}\n"


def test_node_gateway_is_used(testbed, tmp_path):
    """A node with 'gateway: <id>' is reached through that node's sshd (direct-tcpip in its log)."""
    gw2, node4 = testbed.host("gw2"), testbed.host("node4")
    target = f"target {node4.address} port {node4.port}"
    before = testbed.count_log(gw2, target)
    path = scenario(tmp_path, node("gw", "gw2") + node("n", "node4", "gateway: gw"), f"""
        - id: j
          node: n
          command: echo $APSSH_TESTBED_HOST > {tmp_path}/where
    """)

    assert run(load(testbed, path))

    assert (tmp_path / "where").read_text() == "node4\n"
    assert testbed.count_log(gw2, target) == before + 1


FORMATS = {
    "RawFormatter": r"hello\n",
    "ColonFormatter": r"127\.0\.0\.11:hello\n",
    "HostFormatter": r"127\.0\.0\.11:hello\n",
    "TimeColonFormatter": r"\d\d-\d\d-\d\d:127\.0\.0\.11:hello\n",
    "TimeHostFormatter": r"\d\d-\d\d-\d\d:127\.0\.0\.11:hello\n",
}


@pytest.mark.parametrize("formatter", FORMATS)
def test_node_formatter_sets_output_format(testbed, tmp_path, capsys, formatter):
    """'formatter: <class name>' prints the node's output in that class's format."""
    path = scenario(tmp_path, node("n", "node1", f"formatter: {formatter}"), """
        - id: j
          node: n
          command: echo hello
    """)

    assert run(load(testbed, path))

    assert re.fullmatch(FORMATS[formatter], capsys.readouterr().out)


def test_node_verbose_shows_connection_events(testbed, tmp_path, capsys):
    """'verbose: true' on a node prints its connection events on stderr; 'verbose: false' does not."""
    path = scenario(tmp_path, node("loud", "node1", "verbose: true") + node("quiet", "node2", "verbose: false"), """
        - id: a
          node: loud
          command: "true"
        - id: b
          node: quiet
          command: "true"
    """)

    assert run(load(testbed, path))

    err = capsys.readouterr().err
    assert re.search(r"127\.0\.0\.11: connected \(direct\) as ", err), err
    assert "127.0.0.12" not in err


def test_localnode_runs_commands_locally(testbed, tmp_path, capsys):
    """'localnode: true' runs the job's commands on this machine (no testbed sshd involved)."""
    path = write(tmp_path, """
        nodes:
          - id: here
            localnode: true
        jobs:
          - id: j
            node: here
            commands:
              - type: Run
                command: echo ${APSSH_TESTBED_HOST:-not-remote} $PPID
    """)
    nodes, _, scheduler = YamlLoader(path).load_with_maps()

    assert run(scheduler)

    assert isinstance(nodes["here"], LocalNode)
    host, ppid = capsys.readouterr().out.strip().removeprefix("LOCALNODE:").split()
    assert host == "not-remote"
    assert ppid == str(os.getpid())


# ---------------------------------------------------------------- job keys
def test_job_required_single_id_orders_jobs(testbed, tmp_path):
    """'required: <id>' makes a job wait for that job (the slow one still writes first)."""
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: slow
          node: n
          command: sleep 0.3; echo slow >> {tmp_path}/order
        - id: fast
          node: n
          required: slow
          command: echo fast >> {tmp_path}/order
    """)

    assert run(load(testbed, path))

    assert lines_of(tmp_path / "order") == ["slow", "fast"]


def test_job_required_list_waits_for_all(testbed, tmp_path):
    """'required: [a, b]' makes a job wait for both a and b (the job checks both are done)."""
    path = scenario(tmp_path, node("n1", "node1") + node("n2", "node2"), f"""
        - id: a
          node: n1
          command: sleep 0.1; touch {tmp_path}/a
        - id: b
          node: n2
          command: sleep 0.5; touch {tmp_path}/b
        - id: last
          node: n1
          required: [b, a]
          command: test -f {tmp_path}/a && test -f {tmp_path}/b && touch {tmp_path}/last
    """)

    assert run(load(testbed, path))

    assert (tmp_path / "last").exists()


def test_job_critical_false_failure_does_not_abort(testbed, tmp_path):
    """A failing 'critical: false' job does not stop the scenario: the next job still runs."""
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: fails
          node: n
          critical: false
          command: exit 4
        - id: after
          node: n
          required: fails
          command: touch {tmp_path}/after
    """)
    _, jobs, scheduler = YamlLoader(path).load_with_maps(jinja_env(testbed, tmp_path))

    assert run(scheduler)

    assert (tmp_path / "after").exists()
    assert jobs["fails"].result() == 4


def test_job_critical_true_failure_aborts(testbed, tmp_path):
    """A failing critical job (the default, or 'critical: true') aborts the scenario with its error."""
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: fails
          node: n
          critical: true
          command: exit 4
        - id: after
          node: n
          required: fails
          command: touch {tmp_path}/after
    """)

    with pytest.raises(CommandFailedError, match="exit 4"):
        run(load(testbed, path))

    assert not (tmp_path / "after").exists()


def test_job_verbose_announces_its_commands(testbed, tmp_path, capsys):
    """'verbose: true' on a job makes each of its commands announce itself on stderr."""
    path = scenario(tmp_path, node("n", "node1"), """
        - id: loud
          node: n
          verbose: true
          command: echo loud-job
        - id: quiet
          node: n
          command: echo quiet-job
    """)

    assert run(load(testbed, path))

    err = capsys.readouterr().err
    assert "127.0.0.11: Run: echo loud-job" in err
    assert "quiet-job" not in err


def test_job_label_shows_in_listing(testbed, tmp_path, capsys):
    """A job's 'label:' is how the job shows in the scheduler's listing after the run."""
    path = scenario(tmp_path, node("n", "node1"), """
        - id: j
          node: n
          label: the greeting job
          command: echo hi
    """)
    scheduler = load(testbed, path)
    assert run(scheduler)
    capsys.readouterr()

    scheduler.list()

    listing = capsys.readouterr().out
    assert "the greeting job" in listing
    assert "[[ -> 0 ]]" in listing


def test_job_command_shorthand_and_string_commands(testbed, tmp_path, capsys):
    """A job's 'command: <line>' and plain strings in 'commands:' are Run commands."""
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: one
          node: n
          command: echo one
        - id: two
          node: n
          required: one
          commands:
            - echo two
            - echo three
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "one\ntwo\nthree\n"


# ---------------------------------------------------------------- command entries
def test_run_command_and_args_list(testbed, tmp_path, capsys):
    """A Run's 'args:' list is appended to 'command:', one argument each."""
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: Run
              command: printf '[%s]'
              args: [a, 2, "c d"]
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "[a][2][c][d]\n"


def test_run_args_scalar_is_one_argument(testbed, tmp_path, capsys):
    """'args: hello' is one argument, not split into characters."""
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: Run
              command: printf '[%s]'
              args: hello
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "[hello]\n"


def test_run_command_quoting_preserved(testbed, tmp_path, capsys):
    """Quotes and spacing in 'command:' reach the remote shell unchanged."""
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: Run
              command: echo "a   b" 'c   d'
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "a   b c   d\n"


def write_script_and_lib(directory: Path) -> None:
    """show.sh (prints its name and arguments, and LIB from lib.sh beside it) and lib.sh."""
    (directory / "show.sh").write_text('#!/bin/sh\n. "$(dirname "$0")/lib.sh"\n'
                                       'echo "$(basename "$0") $LIB"; for a in "$@"; do echo "[$a]"; done\n')
    (directory / "lib.sh").write_text("LIB=from-lib\n")


def test_runscript_local_script_args_includes(testbed, tmp_path, capsys):
    """RunScript copies 'local_script:' and 'includes:' over and runs the script with 'args:'."""
    write_script_and_lib(tmp_path)
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: RunScript
              local_script: show.sh
              includes: [lib.sh]
              args: [one, "two words"]
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "show.sh from-lib\n[one]\n[two]\n[words]\n"


def test_runscript_command_with_arguments(testbed, tmp_path, capsys):
    """RunScript 'command: show.sh arg1 arg2' is the script followed by its arguments, quotes kept."""
    write_script_and_lib(tmp_path)
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: RunScript
              command: show.sh arg1 "a   b"
              includes: lib.sh
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "show.sh from-lib\n[arg1]\n[a   b]\n"


def test_runstring_script_body_args_includes_remote_name(testbed, tmp_path, capsys):
    """RunString runs 'script_body:' under 'remote_name:', with 'args:' and 'includes:' beside it."""
    (tmp_path / "lib.sh").write_text("LIB=from-lib\n")
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: RunString
              remote_name: body.sh
              includes: [lib.sh]
              args: [x, y]
              script_body: |
                #!/bin/sh
                . "$(dirname "$0")/lib.sh"
                echo "$(basename "$0") $LIB $1-$2"
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "body.sh from-lib x-y\n"


def test_push_localpaths_remotepath(testbed, tmp_path):
    """Push copies 'localpaths:' (relative to the scenario) into 'remotepath:' on the node."""
    (tmp_path / "a.txt").write_text("A\n")
    (tmp_path / "b.txt").write_text("B\n")
    (tmp_path / "remote").mkdir()
    path = scenario(tmp_path, node("n", "node2"), """
        - id: j
          node: n
          commands:
            - type: Push
              localpaths: [a.txt, b.txt]
              remotepath: "{{ tmp }}/remote"
    """)

    assert run(load(testbed, path))

    assert (tmp_path / "remote" / "a.txt").read_text() == "A\n"
    assert (tmp_path / "remote" / "b.txt").read_text() == "B\n"


def test_pull_remotepaths_localpath(testbed, tmp_path):
    """Pull copies 'remotepaths:' from the node into 'localpath:' (created if missing)."""
    path = scenario(tmp_path, node("n", "node2"), f"""
        - id: j
          node: n
          commands:
            - type: Run
              command: mkdir -p {tmp_path}/far && echo X > {tmp_path}/far/x.txt && echo Y > {tmp_path}/far/y.txt
            - type: Pull
              remotepaths: ["{{{{ tmp }}}}/far/x.txt", "{{{{ tmp }}}}/far/y.txt"]
              localpath: "{{{{ tmp }}}}/pulled"
    """)

    assert run(load(testbed, path))

    assert sorted(p.name for p in (tmp_path / "pulled").iterdir()) == ["x.txt", "y.txt"]
    assert (tmp_path / "pulled" / "x.txt").read_text() == "X\n"


def test_push_and_pull_recurse(testbed, tmp_path):
    """'recurse: true' on Push and Pull copies whole directories."""
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "leaf").write_text("leaf\n")
    (tmp_path / "remote").mkdir()
    path = scenario(tmp_path, node("n", "node3"), """
        - id: j
          node: n
          commands:
            - type: Push
              localpaths: tree
              remotepath: "{{ tmp }}/remote"
              recurse: true
            - type: Pull
              remotepaths: "{{ tmp }}/remote/tree"
              localpath: "{{ tmp }}/back"
              recurse: true
    """)

    assert run(load(testbed, path))

    assert (tmp_path / "remote" / "tree" / "sub" / "leaf").read_text() == "leaf\n"
    assert (tmp_path / "back" / "sub" / "leaf").read_text() == "leaf\n"


def test_push_pull_accept_allowed_exits(testbed, tmp_path):
    """'allowed_exits:' on Push and Pull entries (accepted by the 0.27 format) does not break the transfer."""
    (tmp_path / "up.txt").write_text("up\n")
    (tmp_path / "remote").mkdir()
    path = scenario(tmp_path, node("n", "node2"), """
        - id: j
          node: n
          commands:
            - type: Push
              localpaths: up.txt
              remotepath: "{{ tmp }}/remote"
              allowed_exits: [1]
            - type: Pull
              remotepaths: "{{ tmp }}/remote/up.txt"
              localpath: "{{ tmp }}/down.txt"
              allowed_exits: [1]
    """)

    assert run(load(testbed, path))

    assert (tmp_path / "down.txt").read_text() == "up\n"


def test_command_label_names_the_failing_command(testbed, tmp_path):
    """A command's 'label:' is how the command is named when it fails."""
    path = scenario(tmp_path, node("n", "node1"), """
        - id: j
          node: n
          commands:
            - type: Run
              command: exit 7
              label: the step that breaks
    """)

    with pytest.raises(CommandFailedError) as info:
        run(load(testbed, path))

    assert info.value.command == "the step that breaks"
    assert info.value.retcod == 7


def test_allowed_exits_accepts_listed_codes(testbed, tmp_path):
    """'allowed_exits:' turns the listed exit codes into successes, others still fail."""
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: ok
          node: n
          commands:
            - type: Run
              command: exit 3
              allowed_exits: [3, 5]
            - type: Run
              command: touch {tmp_path}/went-on
        - id: ko
          node: n
          required: ok
          commands:
            - type: Run
              command: exit 4
              allowed_exits: [3]
    """)

    with pytest.raises(CommandFailedError) as info:
        run(load(testbed, path))

    assert (tmp_path / "went-on").exists()
    assert info.value.retcod == 4


def test_x11_key_reaches_the_command(testbed, tmp_path, monkeypatch):
    """'x11: true' asks for X11 forwarding: with no local DISPLAY the run says so."""
    monkeypatch.delenv("DISPLAY", raising=False)
    path = scenario(tmp_path, node("n", "node1"), """
        - id: j
          node: n
          commands:
            - type: Run
              command: echo $DISPLAY
              x11: true
    """)
    _, jobs, scheduler = YamlLoader(path).load_with_maps(jinja_env(testbed, tmp_path))
    command = jobs["j"].commands[0]
    assert command.x11 is True
    monkeypatch.setenv("DISPLAY", ":42")
    assert command._x11_options() == {"x11_forwarding": True}
    monkeypatch.delenv("DISPLAY")

    with pytest.raises(CommandFailedError, match="no local DISPLAY"):
        run(scheduler)


def test_command_verbose_announces_it(testbed, tmp_path, capsys):
    """'verbose: true' on one command announces that command only."""
    path = scenario(tmp_path, node("n", "node1"), """
        - id: j
          node: n
          commands:
            - type: Run
              command: echo shown
              verbose: true
            - type: Run
              command: echo hidden
    """)

    assert run(load(testbed, path))

    err = capsys.readouterr().err
    assert "Run: echo shown" in err
    assert "echo hidden" not in err


def test_run_ignore_outputs_on_localnode(testbed, tmp_path, capsys):
    """'ignore_outputs: true' on a local Run discards its output but still runs it."""
    path = write(tmp_path, f"""
        nodes:
          - id: here
            localnode: true
        jobs:
          - id: j
            node: here
            commands:
              - type: Run
                command: echo silenced; touch {tmp_path}/ran
                ignore_outputs: true
    """)

    assert run(YamlLoader(path).load())

    assert (tmp_path / "ran").exists()
    assert "silenced" not in capsys.readouterr().out


# ---------------------------------------------------------------- Jinja2
def test_jinja_env_renders_the_scenario(testbed, tmp_path, capsys):
    """With an env, the file goes through Jinja2 first: variables, loops and filters apply."""
    path = write(tmp_path, """
        nodes:
        {% for name in hosts %}
          - id: {{ name }}
            hostname: "{{ addresses[name] }}"
            port: {{ ports[name] }}
            username: "{{ user }}"
            formatter: RawFormatter
        {% endfor %}
        jobs:
        {% for name in hosts %}
          - id: job-{{ name }}
            node: {{ name }}
            command: echo {{ greeting | upper }} from $APSSH_TESTBED_HOST
        {% endfor %}
    """)
    names = ["node1", "node2", "node3"]
    env = dict(hosts=names, user=testbed.user, greeting="hi",
               addresses={n: testbed.host(n).address for n in names},
               ports={n: testbed.host(n).port for n in names})

    assert run(YamlLoader(path).load(env))

    assert sorted(capsys.readouterr().out.splitlines()) == ["HI from node1", "HI from node2", "HI from node3"]


def test_j2_file_is_rendered_without_env(testbed, tmp_path, capsys):
    """A *.yaml.j2 file goes through Jinja2 even when no env is given."""
    path = write(tmp_path, """
        {% set words = ["alpha", "beta"] %}
        nodes:
          - id: here
            localnode: true
            formatter: RawFormatter
        jobs:
        {% for word in words %}
          - id: {{ word }}
            node: here
            command: echo {{ word }}-{{ loop.index }}
        {% endfor %}
    """, "words.yaml.j2")

    assert run(YamlLoader(path).load())

    assert sorted(capsys.readouterr().out.split()) == ["alpha-1", "beta-2"]


def test_fanout_example_scenario(testbed, tmp_path, capsys):
    """tests/scenarios/fanout.yaml.j2 runs one job per node given in the env, all after a gateway check."""
    env = jinja_env(testbed, tmp_path, nodes=["node1", "node2", "node3", "node4"], gateway="gw3")

    assert run(YamlLoader(SCENARIOS / "fanout.yaml.j2").load(env))

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "gw3 ready"
    assert sorted(out[1:]) == [f"{name} via gw3" for name in ("node1", "node2", "node3", "node4")]


@pytest.mark.parametrize("name, expected", [("s.yaml.j2", "s.yaml"), ("s.yaml", "s.yaml.rendered.yaml")])
def test_save_intermediate_true_writes_rendered_yaml_beside(testbed, tmp_path, name, expected):
    """save_intermediate=True writes the rendered YAML beside the file (.j2 dropped, or .rendered.yaml added)."""
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: j
          node: n
          command: echo {{{{ word }}}} > {tmp_path}/said
    """, name=name)

    assert run(YamlLoader(path).load(jinja_env(testbed, tmp_path, word="rendered"), save_intermediate=True))

    assert (tmp_path / "said").read_text() == "rendered\n"
    written = (tmp_path / expected).read_text()
    assert "{{" not in written
    assert f"port: {testbed.host('node1').port}\n" in written
    assert "command: echo rendered >" in written


def test_save_intermediate_path_writes_there(testbed, tmp_path):
    """save_intermediate=<path> writes the rendered YAML to that path, which loads the same scenario."""
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: j
          node: n
          command: echo {{{{ word }}}} >> {tmp_path}/said
    """)
    saved = tmp_path / "elsewhere.yaml"

    assert run(YamlLoader(path).load(jinja_env(testbed, tmp_path, word="once"), save_intermediate=saved))
    assert run(YamlLoader(saved).load())

    assert (tmp_path / "said").read_text() == "once\nonce\n"


# ---------------------------------------------------------------- node keys beyond 0.27
def test_node_keys_gives_the_private_key(testbed, tmp_path, monkeypatch):
    """'keys:' names the private key files used to log in (here the only key available)."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_*: only 'keys:' can log in
    path = scenario(tmp_path, node("with", "node1", 'keys: ["{{ key }}"]') + node("without", "node2"), f"""
        - id: a
          node: with
          command: touch {tmp_path}/with-key
    """)

    assert run(load(testbed, path))
    assert (tmp_path / "with-key").exists()

    path = scenario(tmp_path, node("without", "node2"), f"""
        - id: b
          node: without
          command: touch {tmp_path}/without-key
    """)
    with pytest.raises(SshConnectError, match="permission denied"):
        run(load(testbed, path))
    assert not (tmp_path / "without-key").exists()


def test_node_timeout_bounds_connection(testbed, tmp_path):
    """'timeout:' is the connection timeout: a server that never answers fails after it."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        path = scenario(tmp_path, """\
  - id: mute
    hostname: 127.0.0.1
    port: {{ mute_port }}
    timeout: 0.4
""", """
            - id: j
              node: mute
              command: "true"
        """)
        with pytest.raises(SshConnectError, match=r"no answer within 0\.4s"):
            run(load(testbed, path, mute_port=silent.getsockname()[1]))
    finally:
        silent.close()


def test_node_host_key_policy_and_known_hosts(testbed, tmp_path, known_hosts_file):
    """'host_key_policy: strict' refuses a host missing from 'known_hosts:', accepts a listed one."""
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    nodes = (node("listed", "node1", "host_key_policy: strict", f"known_hosts: {known_hosts_file}")
             + node("unlisted", "node2", "host_key_policy: strict", f"known_hosts: {empty}"))
    ok = scenario(tmp_path, nodes, f"""
        - id: j
          node: listed
          command: touch {tmp_path}/listed
    """, name="ok.yaml")
    ko = scenario(tmp_path, nodes, f"""
        - id: j
          node: unlisted
          command: touch {tmp_path}/unlisted
    """, name="ko.yaml")

    assert run(load(testbed, ok))
    with pytest.raises(HostKeyError, match="strict"):
        run(load(testbed, ko))

    assert (tmp_path / "listed").exists()
    assert not (tmp_path / "unlisted").exists()
    assert empty.read_text() == ""


def test_node_accept_new_records_in_known_hosts(testbed, tmp_path):
    """'host_key_policy: accept-new' records a new host's key in the node's 'known_hosts:' file."""
    recorded = tmp_path / "recorded"
    path = scenario(tmp_path, node("n", "node3", "host_key_policy: accept-new", f"known_hosts: {recorded}"), """
        - id: j
          node: n
          command: "true"
    """)

    assert run(load(testbed, path))

    assert testbed.host("node3").host_key_line in recorded.read_text()


# ---------------------------------------------------------------- jobs and schedulers beyond 0.27
def test_job_forever_does_not_hold_the_scenario(testbed, tmp_path):
    """A 'forever: true' job is stopped when the other jobs are done (its remote command is killed)."""
    marker = "sleep 987.25"  # an unusual duration, to find the process
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: daemon
          node: n
          forever: true
          command: {marker}
        - id: work
          node: n
          command: sleep 0.2; touch {tmp_path}/work-done
      """, top="scheduler:\n  timeout: 20\n")
    _, jobs, scheduler = YamlLoader(path).load_with_maps(jinja_env(testbed, tmp_path))

    assert scheduler.run()

    assert (tmp_path / "work-done").exists()
    assert jobs["daemon"].forever is True
    assert not jobs["daemon"].is_done()
    assert wait_for(lambda: not testbed.remote_processes(marker))


def test_nested_scheduler_block(testbed, tmp_path):
    """A job with a nested 'scheduler:' block runs its own jobs (with their 'required') as one job."""
    path = scenario(tmp_path, node("n1", "node1") + node("n2", "node2"), f"""
        - id: before
          node: n1
          command: echo before >> {tmp_path}/order
        - id: block
          required: before
          label: the inner block
          scheduler:
            jobs:
              - id: inner-slow
                node: n1
                command: sleep 0.3; echo inner-slow >> {tmp_path}/order
              - id: inner-next
                node: n2
                required: inner-slow
                command: echo inner-next >> {tmp_path}/order
        - id: after
          node: n2
          required: block
          command: echo after >> {tmp_path}/order
    """)
    _, jobs, scheduler = YamlLoader(path).load_with_maps(jinja_env(testbed, tmp_path))

    assert run(scheduler)

    assert lines_of(tmp_path / "order") == ["before", "inner-slow", "inner-next", "after"]
    assert isinstance(jobs["block"], Scheduler)
    assert jobs["inner-next"] in jobs["block"].jobs
    assert jobs["block"].label == "the inner block"


def test_scheduler_jobs_window_limits_parallel_jobs(testbed, tmp_path):
    """Top-level 'scheduler: {jobs_window: 1}' runs one job at a time: no interleaving."""
    jobs = "".join(f"""
        - id: j{index}
          node: n{index}
          command: echo start >> {tmp_path}/log; sleep 0.1; echo end >> {tmp_path}/log
    """ for index in (1, 2, 3))
    path = scenario(tmp_path, node("n1", "node1") + node("n2", "node2") + node("n3", "node3"), jobs,
                    top="scheduler:\n  jobs_window: 1\n")
    scheduler = load(testbed, path)

    assert scheduler.jobs_window == 1
    assert run(scheduler)

    assert lines_of(tmp_path / "log") == ["start", "end"] * 3


def test_scheduler_timeout_stops_the_scenario(testbed, tmp_path):
    """Top-level 'scheduler: {timeout: ...}' stops a scenario that runs too long."""
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: long
          node: n
          command: sleep 30; touch {tmp_path}/finished
    """, top="scheduler:\n  timeout: 0.5\n")

    with pytest.raises(TimeoutError):
        load(testbed, path).run()

    assert not (tmp_path / "finished").exists()


def test_scheduler_critical_false_returns_false(testbed, tmp_path):
    """Top-level 'scheduler: {critical: false}' makes a failed run return False instead of raising."""
    path = scenario(tmp_path, node("n", "node1"), """
        - id: j
          node: n
          command: exit 2
    """, top="scheduler:\n  critical: false\n  label: top\n")
    scheduler = load(testbed, path)

    assert run(scheduler) is False

    assert scheduler.label == "top"
    assert isinstance(scheduler.why(), str)


@pytest.mark.parametrize("verbose", [True, False])
def test_scheduler_verbose_traces_the_run(testbed, tmp_path, capsys, verbose):
    """Top-level 'scheduler: {verbose: true}' makes the scheduler trace its jobs on stdout."""
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          label: traced job
          command: echo output
    """, top=f"scheduler:\n  verbose: {str(verbose).lower()}\n")

    assert run(load(testbed, path))

    out = capsys.readouterr().out
    assert ("traced job" in out) is verbose
    assert "output\n" in out


# ---------------------------------------------------------------- services
SERVICES = """
services:
  - id: web
    command: python3 -m http.server {{ '{{ port }}' }}
    service_id: my-web
    environ: {GREETING: hello}
    systemd_type: exec
  - id: shell
    command: bash -i
    tty: true
    stop_if_running: false
"""


def service_scenario(testbed, tmp_path) -> tuple[dict, YamlLoader]:
    """jobs_map and loader of a scenario using the SERVICES above (loaded, never run)."""
    path = scenario(tmp_path, node("n", "node1"), """
        - id: pick
          node: n
          commands:
            - type: Run
              command: echo 8123
              capture: port
        - id: services
          node: n
          required: pick
          commands:
            - type: Service
              service: web
              action: start
            - type: Service
              service: web
              action: status
              output: /tmp/web status
            - type: Service
              service: web
              action: journal
              since: 1 hour ago
            - type: Service
              service: web
              action: stop
              verbose: true
            - type: Service
              service: shell
    """, top=SERVICES)
    loader = YamlLoader(path)
    _, jobs, _ = loader.load_with_maps(jinja_env(testbed, tmp_path))
    return jobs, loader


def test_service_start_command_line(testbed, tmp_path):
    """A Service 'start' command runs systemd-run with the unit, type, environment and the command."""
    jobs, loader = service_scenario(testbed, tmp_path)
    start = jobs["services"].commands[0]
    loader.variables["port"] = "8123"

    line = start.command_line()

    assert "systemctl stop my-web.service" in line  # stop_if_running defaults to true
    assert ("systemd-run --unit=my-web --service-type=exec --setenv=GREETING=hello "
            "/bin/sh -c 'python3 -m http.server 8123'") in line
    assert start.label_line() == "start service my-web"


def test_service_status_journal_stop_command_lines(testbed, tmp_path):
    """Service 'status' (with output), 'journal' (with since) and 'stop' produce systemctl/journalctl lines."""
    jobs, _ = service_scenario(testbed, tmp_path)
    _, status, journal, stop, _ = jobs["services"].commands

    assert "then systemctl --no-pager --full status my-web.service;" in status.command_line()
    assert status.command_line().endswith(" > '/tmp/web status' 2>&1")
    assert "then journalctl --no-pager --unit=my-web.service --since='1 hour ago';" in journal.command_line()
    assert "then systemctl stop my-web.service;" in stop.command_line()
    assert status.is_success(3) and stop.is_success(5) and not journal.is_success(3)
    assert stop.verbose is True and status.verbose is False


def test_service_default_action_tty_and_no_stop(testbed, tmp_path):
    """A Service command defaults to 'start'; 'tty: true' wraps the command in script(1); the id is the unit."""
    jobs, _ = service_scenario(testbed, tmp_path)
    shell = jobs["services"].commands[4]

    line = shell.command_line()
    assert ("then systemd-run --unit=shell --service-type=simple "
            "/bin/sh -c 'script -qfec '\"'\"'bash -i'\"'\"' /dev/null';") in line
    assert "systemctl stop" not in line


def test_service_command_rendered_when_it_runs(testbed, tmp_path):
    """A Service command using a captured {{ name }} is rendered with the value captured at run time."""
    jobs, loader = service_scenario(testbed, tmp_path)
    start = jobs["services"].commands[0]
    pick = SshJob(SshNode(testbed.host("node2").address, port=testbed.host("node2").port, username=testbed.user,
                          formatter=RawFormatter()), commands=[jobs["pick"].commands[0]])

    assert Scheduler(pick, timeout=30).run()

    assert loader.variables["port"] == "8123"
    assert "http.server 8123'" in start.command_line()


# ---------------------------------------------------------------- captures
def test_capture_and_later_template(testbed, tmp_path, capsys):
    """'capture: name' stores a command's output; '{{ name }}' in later commands and jobs is rendered then."""
    path = scenario(tmp_path, node("n1", "node1", "formatter: RawFormatter")
                    + node("n2", "node2", "formatter: RawFormatter"), """
        - id: ask
          node: n1
          commands:
            - type: Run
              command: echo $APSSH_TESTBED_HOST
              capture: who
            - type: Run
              command: echo same job {{ who }}
        - id: tell
          node: n2
          required: ask
          commands:
            - type: Run
              command: echo
              args: ["other job {{ who }}"]
            - type: RunString
              script_body: |
                #!/bin/sh
                echo script {{ who }} $1
              args: "{{ who }}"
    """)

    assert run(load(testbed, path))

    out = capsys.readouterr().out
    assert out == "node1\nsame job node1\nother job node1\nscript node1 node1\n"


def test_load_with_maps_returns_nodes_jobs_scheduler(testbed, tmp_path):
    """load_with_maps() returns (nodes_map, jobs_map, scheduler): the objects that run, by id."""
    path = scenario(tmp_path, node("gw", "gw1") + node("n", "node1", "gateway: gw"), """
        - id: j
          node: n
          command: "true"
    """)

    nodes, jobs, scheduler = YamlLoader(path).load_with_maps(jinja_env(testbed, tmp_path))
    assert run(scheduler)

    assert set(nodes) == {"gw", "n"}
    assert nodes["n"].gateway is nodes["gw"]
    assert nodes["n"].port == testbed.host("node1").port
    assert list(jobs) == ["j"]
    assert jobs["j"].node is nodes["n"]
    assert jobs["j"] in scheduler.jobs
    assert jobs["j"].result() == 0


def test_yamlloader_importable_from_apssh():
    """'from apssh import YamlLoader' gives the loader (with ScenarioError beside it)."""
    import apssh
    import apssh.yaml_loader

    assert apssh.YamlLoader is apssh.yaml_loader.YamlLoader
    assert apssh.ScenarioError is apssh.yaml_loader.ScenarioError
    assert issubclass(ScenarioError, ValueError)


# ---------------------------------------------------------------- bad input
ENV = {"name": "value"}
NODE_OK = "nodes:\n  - id: n\n    hostname: h\n"


BAD = {
    "unknown top key": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    command: x\nextra: 1\n", 8, ["'extra'"]),
    "unknown node key": ("nodes:\n  - id: n\n    hostname: h\n    colour: blue\njobs:\n  - id: j\n    node: n\n"
                         "    command: x\n", 4, ["'colour'", "node 'n'"]),
    "unknown job key": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    retries: 3\n    command: x\n", 7,
                        ["'retries'", "job 'j'"]),
    "unknown command key": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    commands:\n      - type: Run\n"
                            "        command: x\n        shell: bash\n", 10, ["'shell'"]),
    "unknown type": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    commands:\n      - type: Runn\n"
                     "        command: x\n", 8, ["'Runn'"]),
    "unknown required": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    command: x\n    required: [nosuch]\n", 8,
                         ["'nosuch'"]),
    "cyclic required": (NODE_OK + "jobs:\n  - id: a\n    node: n\n    command: x\n    required: b\n"
                        "  - id: b\n    node: n\n    command: x\n    required: a\n", 12, ["a -> b -> a"]),
    "unknown node of job": (NODE_OK + "jobs:\n  - id: j\n    node: m\n    command: x\n", 6, ["'m'"]),
    "unknown gateway": ("nodes:\n  - id: n\n    hostname: h\n    gateway: g\njobs:\n  - id: j\n    node: n\n"
                        "    command: x\n", 4, ["'g'"]),
    "unknown formatter": ("nodes:\n  - id: n\n    hostname: h\n    formatter: Fancy\njobs:\n  - id: j\n"
                          "    node: n\n    command: x\n", 4, ["'Fancy'"]),
    "bad host_key_policy": ("nodes:\n  - id: n\n    hostname: h\n    host_key_policy: trusting\njobs:\n"
                            "  - id: j\n    node: n\n    command: x\n", 4, ["'trusting'", "strict"]),
    "bad port": ("nodes:\n  - id: n\n    hostname: h\n    port: ssh\njobs:\n  - id: j\n    node: n\n"
                 "    command: x\n", 4, ["'ssh'"]),
    "missing localpaths": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    commands:\n      - type: Push\n"
                           "        localpaths: [absent.txt]\n        remotepath: x\n", 9, ["'absent.txt'"]),
    "missing keys file": ("nodes:\n  - id: n\n    hostname: h\n    keys: [nokey]\njobs:\n  - id: j\n    node: n\n"
                          "    command: x\n", 4, ["'nokey'"]),
    "YAML syntax error": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    command: [x, y\n", 7, ["[x, y"]),
    "YAML tab": (NODE_OK + "jobs:\n\t- id: j\n", 5, ["'\\t'", "'- id: j'"]),
    "YAML duplicate key": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    node: m\n    command: x\n", 7,
                           ["'node'"]),
    "Jinja syntax error": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    command: echo {{ name( }}\n", 7,
                           ["{{ name( }}"]),
    "undefined Jinja variable in expression": ("nodes:\n  - id: n\n    hostname: h\n    port: {{ nosuch + 1 }}\n"
                                               "jobs:\n  - id: j\n    node: n\n    command: x\n", 4, ["'nosuch'"]),
    "undefined Jinja variable in a loop": ("nodes:\n{% for i in range(nosuch) %}\n  - id: n\n    hostname: h\n"
                                           "{% endfor %}\njobs:\n  - id: j\n    node: n\n    command: x\n", 2,
                                           ["'nosuch'"]),
    "undefined Jinja variable in a value": ("nodes:\n  - id: n\n    hostname: host-{{ nosuch }}\njobs:\n  - id: j\n"
                                            "    node: n\n    command: x\n", 3, ["nosuch", "hostname"]),
    "undefined Jinja variable as a value": ("nodes:\n  - id: n\n    hostname: {{ nosuch }}\njobs:\n  - id: j\n"
                                            "    node: n\n    command: x\n", 3, ["{{ nosuch }}"]),
    "undefined Jinja variable in a label": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    command: x\n"
                                            "    label: step {{ nosuch }}\n", 8, ["nosuch", "label"]),
    "template no command captures": (NODE_OK + "jobs:\n  - id: j\n    node: n\n    commands:\n"
                                     "      - type: Run\n        command: echo hi\n        capture: greeting\n"
                                     "      - type: Run\n        command: echo {{ greting }}\n", 12, ["greting"]),
    "no jobs": (NODE_OK, 1, ["jobs:"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_one_error_naming_file_line_value(tmp_path, case):
    """Each kind of bad input raises one ScenarioError naming the file, the line and the offending value."""
    text, line, values = BAD[case]
    path = tmp_path / "bad.yaml"

    error = bad(tmp_path, text, ENV)

    assert_names(error, path, line, *values)


LOOP = "nodes:\n{% for i in range(3) %}\n  - id: n{{ i }}\n    hostname: h\n{% endfor %}\njobs:\n"


def test_bad_input_after_a_jinja_loop_names_the_source_line(tmp_path):
    """After a Jinja2 loop that adds lines, the error still names the line of the source file."""
    error = bad(tmp_path, LOOP + "  - id: j\n    node: n1\n    colour: x\n    command: x\n", name="loop.yaml.j2")

    assert_names(error, tmp_path / "loop.yaml.j2", 9, "'colour'")


def test_bad_input_on_a_generated_line_names_the_rendered_line(tmp_path):
    """An error on a line that the loop generated names the rendered line, and says so."""
    error = bad(tmp_path, LOOP.replace("hostname: h", "hostname: h\n    colour: c{{ i }}")
                + "  - id: j\n    node: n1\n    command: x\n", name="loop.yaml.j2")

    assert_names(error, tmp_path / "loop.yaml.j2", 5, "'colour'", "rendered by Jinja2", "save_intermediate")


def test_bad_input_without_jinja_pass(tmp_path):
    """Without an env (no Jinja2 pass), a YAML error still names the file, the line and the text."""
    error = bad(tmp_path, NODE_OK + "jobs:\n  - id: j\n    node: n\n    command: {{ name }}\n")

    assert_names(error, tmp_path / "bad.yaml", 7, "{{ name }}")


def test_missing_scenario_file(tmp_path):
    """A missing scenario file raises one ScenarioError naming it (there is no line to name)."""
    path = tmp_path / "nowhere.yaml"

    with pytest.raises(ScenarioError) as info:
        YamlLoader(path).load()

    assert str(info.value).startswith(f"{path}: no such scenario file")
    assert info.value.line is None


def test_bad_input_builds_nothing(testbed, tmp_path):
    """A scenario with a mistake after valid jobs never opens a connection to its valid nodes."""
    node1 = testbed.host("node1")
    before = testbed.count_log(node1, "Accepted publickey")
    path = scenario(tmp_path, node("n", "node1"), f"""
        - id: fine
          node: n
          command: touch {tmp_path}/ran
        - id: broken
          node: n
          required: fine
          commands:
            - type: Nope
    """)

    with pytest.raises(ScenarioError, match="'Nope'"):
        load(testbed, path)

    assert testbed.count_log(node1, "Accepted publickey") == before
    assert not (tmp_path / "ran").exists()



# ---------------------------------------------------------------- as apssh 0.27 finds and renders things
MISSING_SCRIPT = """
    - id: j
      node: n
      commands:
        - type: RunScript
          local_script: nosuch.sh
          includes: [lost.sh]
"""


def test_missing_script_loads_with_a_warning_and_fails_when_run(testbed, tmp_path, monkeypatch):
    """A missing local_script/include: the scenario loads (to inspect it), a ScenarioWarning names the
    file and the paths tried, and the job fails at run time with that message."""
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    path = scenario(tmp_path, node("n", "node1"), MISSING_SCRIPT)

    with pytest.warns(ScenarioWarning) as warned:
        scheduler = load(testbed, path)

    messages = [str(warning.message) for warning in warned]
    assert len(messages) == 2
    script_message = next(message for message in messages if "'nosuch.sh'" in message)
    assert script_message.startswith(f"{path}:")
    assert str(here / "nosuch.sh") in script_message and str(tmp_path / "nosuch.sh") in script_message
    with pytest.raises(CommandFailedError) as info:
        run(scheduler)
    assert script_message in str(info.value)
    assert str(tmp_path / "lost.sh") in str(info.value)


def test_local_script_found_in_the_current_directory_first(testbed, tmp_path, monkeypatch, capsys):
    """As apssh 0.27: local_script and includes relative to the current directory, then to the YAML file."""
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    (here / "who.sh").write_text('#!/bin/sh\n. "$(dirname "$0")/lib.sh"; echo "cwd script, $LIB"\n')
    (tmp_path / "who.sh").write_text("#!/bin/sh\necho yaml-dir script\n")
    (tmp_path / "lib.sh").write_text("LIB=lib-beside-yaml\n")
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: RunScript
              local_script: who.sh
              includes: [lib.sh]
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out == "cwd script, lib-beside-yaml\n"


def test_a_loader_loads_twice(testbed, tmp_path):
    """load() twice on one YamlLoader gives two schedulers, each runnable (no 'duplicate node id')."""
    path = scenario(tmp_path, node("n", "node1"), """
        - id: j
          node: n
          command: "true"
    """)
    loader = YamlLoader(path)
    first = loader.load(jinja_env(testbed, tmp_path))
    second = loader.load(jinja_env(testbed, tmp_path))

    assert first is not second
    assert run(first) and run(second)


def test_filter_on_a_captured_value_is_rendered_at_run_time(testbed, tmp_path, capsys):
    """'{{ host | upper }}' on a value captured when the scenario runs is rendered then, filter included."""
    path = scenario(tmp_path, node("n", "node1", "formatter: RawFormatter"), """
        - id: j
          node: n
          commands:
            - type: Run
              command: echo fit01
              capture: host
            - type: Run
              command: echo {{ host | upper }}-{{ user }}
    """)

    assert run(load(testbed, path))

    assert capsys.readouterr().out.splitlines()[-1] == f"FIT01-{testbed.user}"

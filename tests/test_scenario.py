"""load_scenario(): one loader for Python scenarios (scheduler, scenario(), existing scripts) and YAML files.

The Python files are written in tmp_path by each test, with the testbed's address and port filled
in; every scheduler handed back is then run against the real testbed to show it is the real one.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from asynciojobs import Scheduler

from apssh import ScenarioError, SshJob, load_scenario
from apssh.scenario import Scenario, parse_definitions

HEADER = """\
from asynciojobs import Scheduler
from apssh import SshNode, SshJob, Run
from apssh.formatters import RawFormatter

def make_node():
    return SshNode({address!r}, port={port}, username={user!r}, formatter=RawFormatter())
"""


def write_python(testbed, tmp_path: Path, body: str, name: str = "scenario.py", host: str = "node1") -> Path:
    """A Python scenario: HEADER (make_node() for testbed host ``host``) followed by ``body`` (dedented)."""
    target = testbed.host(host)
    path = tmp_path / name
    path.write_text(HEADER.format(address=target.address, port=target.port, user=testbed.user)
                    + textwrap.dedent(body))
    return path


def logins(testbed, host: str = "node1") -> int:
    """How many logins the sshd of ``host`` has accepted so far."""
    return testbed.count_log(testbed.host(host), "Accepted publickey")


# ---------------------------------------------------------------- the three Python shapes
def test_module_level_scheduler(testbed, tmp_path):
    """A .py defining a module-level 'scheduler' is loaded into that scheduler, which runs."""
    path = write_python(testbed, tmp_path, f"""
        scheduler = Scheduler(SshJob(make_node(), command="echo module > {tmp_path}/out"), timeout=30)
    """)

    loaded = load_scenario(path)

    assert isinstance(loaded, Scenario)
    assert loaded.filename == path
    assert not (tmp_path / "out").exists()
    assert loaded.scheduler.run()
    assert (tmp_path / "out").read_text() == "module\n"


def test_scenario_function_receives_definitions(testbed, tmp_path):
    """scenario(**variables) receives the -D name=value variables as strings and returns the scheduler."""
    path = write_python(testbed, tmp_path, f"""
        def scenario(n, word="default"):
            assert isinstance(n, str)
            jobs = [SshJob(make_node(), command=f"echo {{word}} > {tmp_path}/out{{i}}") for i in range(int(n))]
            return Scheduler(*jobs, timeout=30)
    """)

    loaded = load_scenario(path, parse_definitions(["n=3", "word=hello there"]))

    assert len(loaded.scheduler.jobs) == 3
    assert loaded.scheduler.run()
    assert sorted(p.name for p in tmp_path.glob("out*")) == ["out0", "out1", "out2"]
    assert (tmp_path / "out2").read_text() == "hello there\n"


def test_scenario_function_with_wrong_variables(testbed, tmp_path):
    """A scenario() that does not accept the variables given raises a ScenarioError naming them."""
    path = write_python(testbed, tmp_path, """
        def scenario(n):
            return Scheduler()
    """)

    with pytest.raises(ScenarioError) as info:
        load_scenario(path, {"count": "3"})

    message = str(info.value)
    assert message.startswith(f"{path}: scenario(**variables) failed")
    assert "'count'" in message


def test_scenario_function_raising_names_its_line(testbed, tmp_path):
    """A scenario() raising (e.g. int('x') on a variable) gives a ScenarioError with its line and the error."""
    path = write_python(testbed, tmp_path, """
        def scenario(n):
            count = int(n)
            return Scheduler(*[SshJob(make_node(), command="true") for _ in range(count)])
    """)
    line = path.read_text().splitlines().index("    count = int(n)") + 1

    with pytest.raises(ScenarioError) as info:
        load_scenario(path, {"n": "three"})

    assert str(info.value).startswith(f"{path}:{line}: scenario(): ValueError: ")
    assert "'three'" in str(info.value)


def test_scenario_function_returning_no_scheduler(testbed, tmp_path):
    """A scenario() returning something else than a Scheduler gives a ScenarioError saying what it returned."""
    path = write_python(testbed, tmp_path, """
        def scenario():
            return [SshJob(make_node(), command="true")]
    """)

    with pytest.raises(ScenarioError) as info:
        load_scenario(path)

    assert str(info.value).startswith(f"{path}: scenario(**variables) returned [")
    assert str(info.value).endswith("not a Scheduler")


SCRIPT = """
import argparse
import asyncio

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default={target!r})
    args = parser.parse_args()
    scheduler = Scheduler(SshJob(make_node(), command=f"touch {{args.target}}"), timeout=30)
    {call}
    print("after the run")
    return 0

if __name__ == "__main__":
    exit(main())
"""

CALLS = {
    "run": "ok = scheduler.run()",
    "orchestrate": "ok = scheduler.orchestrate()",
    "co_run": "ok = asyncio.run(scheduler.co_run())",
}


@pytest.mark.parametrize("call", CALLS)
def test_existing_script_hands_its_scheduler_over(testbed, tmp_path, capsys, call):
    """A script calling run()/orchestrate()/co_run() under __main__ hands over its scheduler, unrun."""
    target = tmp_path / "created-by-job"
    path = write_python(testbed, tmp_path, SCRIPT.format(target=str(target), call=CALLS[call]))
    before = logins(testbed)

    loaded = load_scenario(path)

    assert not target.exists()
    assert logins(testbed) == before
    assert "after the run" not in capsys.readouterr().out
    assert loaded.scheduler.run()
    assert target.exists()
    assert logins(testbed) == before + 1


def test_script_argparse_does_not_see_pytest_argv(testbed, tmp_path):
    """The script's argparse sees only the script name (not pytest's argv), which is restored afterwards."""
    saved = sys.argv[:]
    sys.argv = [saved[0], "--not-an-option-of-the-script", "-q"]
    try:
        path = write_python(testbed, tmp_path, """
            import argparse
            import sys
            parser = argparse.ArgumentParser()
            parser.add_argument("--count", type=int, default=2)
            if __name__ == "__main__":
                args = parser.parse_args()
                seen = " ".join(sys.argv)
                scheduler = Scheduler(*[SshJob(make_node(), command=f"echo {i} '{seen}'") for i in range(args.count)],
                                      timeout=30)
                scheduler.run()
        """)

        loaded = load_scenario(path)

        assert sys.argv == [saved[0], "--not-an-option-of-the-script", "-q"]
    finally:
        sys.argv = saved
    jobs = loaded.scheduler.jobs
    assert len(jobs) == 2
    assert all(job.commands[0].command_line().endswith(f"'{path}'") for job in jobs)
    assert loaded.scheduler.run()


def test_script_imports_modules_beside_it(testbed, tmp_path):
    """A script importing a module from its own directory loads (its directory is on sys.path)."""
    (tmp_path / "mysteps.py").write_text(f"COMMAND = 'touch {tmp_path}/from-module'\n")
    path = write_python(testbed, tmp_path, """
        import mysteps
        if __name__ == "__main__":
            Scheduler(SshJob(make_node(), command=mysteps.COMMAND), timeout=30).run()
    """)
    path_before = sys.path[:]

    loaded = load_scenario(path)

    assert sys.path == path_before
    assert loaded.scheduler.run()
    assert (tmp_path / "from-module").exists()
    sys.modules.pop("mysteps", None)


def test_script_that_never_runs_a_scheduler(testbed, tmp_path):
    """A script that never reaches run()/orchestrate()/co_run() gives a clear ScenarioError."""
    path = write_python(testbed, tmp_path, """
        if __name__ == "__main__":
            job = SshJob(make_node(), command="true")
            print("built but never run")
    """)

    with pytest.raises(ScenarioError) as info:
        load_scenario(path)

    message = str(info.value)
    assert message.startswith(f"{path}: no scenario found")
    assert "scheduler.run()" in message and "'scenario(**variables)'" in message


def test_script_raising_names_its_line(testbed, tmp_path):
    """A script raising an exception gives a ScenarioError with the file, the line and the exception."""
    path = write_python(testbed, tmp_path, """
        def build():
            raise RuntimeError("no such testbed")

        if __name__ == "__main__":
            build()
    """)
    line = path.read_text().splitlines().index('    raise RuntimeError("no such testbed")') + 1

    with pytest.raises(ScenarioError) as info:
        load_scenario(path)

    assert str(info.value) == f"{path}:{line}: RuntimeError: no such testbed"
    assert info.value.line == line


def test_script_with_syntax_error_names_its_line(testbed, tmp_path):
    """A Python scenario with a syntax error gives a ScenarioError naming the file and the line."""
    path = write_python(testbed, tmp_path, """
        scheduler = None
        width = = 3
    """)
    line = path.read_text().splitlines().index("width = = 3") + 1

    with pytest.raises(ScenarioError) as info:
        load_scenario(path)

    assert str(info.value).startswith(f"{path}:{line}: Python syntax error")


def test_script_exiting_on_its_arguments(testbed, tmp_path):
    """A script that exits (e.g. argparse missing a required option) gives a ScenarioError, not SystemExit."""
    path = write_python(testbed, tmp_path, """
        import argparse
        if __name__ == "__main__":
            parser = argparse.ArgumentParser()
            parser.add_argument("--needed", required=True)
            parser.parse_args()
    """)

    with pytest.raises(ScenarioError) as info:
        load_scenario(path)

    assert str(info.value).startswith(f"{path}: the script exited (status 2)")


def test_interception_is_undone_after_loading(testbed, tmp_path):
    """After a script was loaded, Scheduler.run() runs schedulers again (the interception is gone)."""
    path = write_python(testbed, tmp_path, """
        if __name__ == "__main__":
            Scheduler(SshJob(make_node(), command="true")).run()
    """)
    node = next(iter(load_scenario(path).scheduler.jobs)).node

    ran = Scheduler(SshJob(node, command=f"touch {tmp_path}/ran-after"), timeout=30)

    assert ran.run()
    assert (tmp_path / "ran-after").exists()


# ---------------------------------------------------------------- YAML through the same loader
YAML = """\
nodes:
  - id: n
    hostname: "{{ address }}"
    port: {{ port }}
    username: "{{ user }}"
jobs:
  - id: j
    node: n
    commands:
      - type: Run
        command: echo {{ word }} > {{ tmp }}/yaml-out
"""


@pytest.mark.parametrize("name", ["s.yaml", "s.yml", "s.yaml.j2"])
def test_yaml_files_through_load_scenario(testbed, tmp_path, name):
    """load_scenario() loads YAML files with the -D variables as the Jinja2 env, with maps by id."""
    path = tmp_path / name
    path.write_text(YAML)
    host = testbed.host("node2")
    variables = parse_definitions([f"address={host.address}", f"port={host.port}", f"user={testbed.user}",
                                   "word=from-yaml", f"tmp={tmp_path}"])

    loaded = load_scenario(path, variables)

    assert set(loaded.nodes) == {"n"} and set(loaded.jobs) == {"j"}
    assert isinstance(loaded.jobs["j"], SshJob)
    assert loaded.scheduler.run()
    assert (tmp_path / "yaml-out").read_text() == "from-yaml\n"


def test_yaml_error_through_load_scenario(tmp_path):
    """A bad YAML scenario gives the same ScenarioError through load_scenario() (file, line, value)."""
    path = tmp_path / "bad.yaml"
    path.write_text("nodes:\n  - id: n\n    hostname: h\njobs:\n  - id: j\n    node: n\n    command: x\n"
                    "    required: ghost\n")

    with pytest.raises(ScenarioError) as info:
        load_scenario(path, {"x": "1"})

    assert str(info.value).startswith(f"{path}:8: ")
    assert "'ghost'" in str(info.value)


def test_missing_and_unknown_files(tmp_path):
    """A missing file or an unknown suffix raises a ScenarioError naming the file."""
    (tmp_path / "notes.txt").write_text("hello\n")

    with pytest.raises(ScenarioError, match="no such scenario file") as missing:
        load_scenario(tmp_path / "absent.py")
    with pytest.raises(ScenarioError, match="unknown scenario type") as unknown:
        load_scenario(tmp_path / "notes.txt")

    assert str(tmp_path / "absent.py") in str(missing.value)
    assert str(tmp_path / "notes.txt") in str(unknown.value)


# ---------------------------------------------------------------- -D definitions
def test_parse_definitions():
    """parse_definitions() turns -D name=value strings into a dict of strings (value may hold '=' or spaces)."""
    assert parse_definitions(["n=3", "msg=a b", "eq=x=y", "empty="]) == {"n": "3", "msg": "a b", "eq": "x=y",
                                                                          "empty": ""}
    assert parse_definitions([]) == {}


@pytest.mark.parametrize("definition", ["novalue", "=3", "bad name=1", "1x=2"])
def test_parse_definitions_rejects_bad_ones(definition):
    """A definition without '=' or with a name that is not an identifier raises ValueError naming it."""
    with pytest.raises(ValueError, match=repr(definition).replace("[", r"\[")):
        parse_definitions([definition])


# ---------------------------------------------------------------- a script's own command line
OWN_OPTIONS = """
import argparse
import sys
from pathlib import Path

Path({counter!r}).open("a").write("executed\\n")

def build(count, word):
    return Scheduler(*[SshJob(make_node(), command=f"echo {{word}} {{i}}") for i in range(count)], timeout=30)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-N", "--count", type=int, default=1)
    parser.add_argument("-s", "--slice", default="default-slice")
    args = parser.parse_args()
    build(args.count, args.slice).run()
"""


def test_script_gets_its_own_arguments(testbed, tmp_path):
    """script_args become the script's sys.argv[1:]: its argparse sees -s SLICE -N 3."""
    counter = tmp_path / "executions"
    path = write_python(testbed, tmp_path, OWN_OPTIONS.format(counter=str(counter)))
    saved = sys.argv[:]

    loaded = load_scenario(path, script_args=["-s", "my-slice", "-N", "3"])

    assert sys.argv == saved
    lines = [job.commands[0].command_line() for job in loaded.scheduler.jobs]
    assert sorted(lines) == ["echo my-slice 0", "echo my-slice 1", "echo my-slice 2"]
    assert loaded.scheduler.run()


def test_script_without_scheduler_or_scenario_is_executed_once(testbed, tmp_path):
    """An apssh script (no module-level scheduler, no scenario()) is executed once, as __main__."""
    counter = tmp_path / "executions"
    path = write_python(testbed, tmp_path, OWN_OPTIONS.format(counter=str(counter)))

    loaded = load_scenario(path)

    assert counter.read_text() == "executed\n"
    assert [job.commands[0].command_line() for job in loaded.scheduler.jobs] == ["echo default-slice 0"]


def test_scenario_function_is_executed_once_as_a_module(testbed, tmp_path):
    """A file defining scenario() is executed once, not as __main__ (its main block does not run)."""
    counter = tmp_path / "executions"
    path = write_python(testbed, tmp_path, f"""
        from pathlib import Path
        Path({str(counter)!r}).open("a").write("executed\\n")

        def scenario(word="hi"):
            return Scheduler(SshJob(make_node(), command=f"echo {{word}}"), timeout=30)

        if __name__ == "__main__":
            Path({str(counter)!r}).open("a").write("main block\\n")
    """)

    loaded = load_scenario(path, {"word": "hello"})

    assert counter.read_text() == "executed\n"
    assert loaded.scheduler.jobs.pop().commands[0].command_line() == "echo hello"


def test_script_arguments_for_a_yaml_scenario_are_refused(tmp_path):
    """Arguments after -- only make sense for a Python script: a YAML scenario says to use -D."""
    path = tmp_path / "s.yaml"
    path.write_text("nodes: []\njobs: []\n")
    with pytest.raises(ScenarioError, match="-D name=value"):
        load_scenario(path, script_args=["-N", "3"])

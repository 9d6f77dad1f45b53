"""The apssh-tui command line (apssh_tui.cli.main): errors before any screen, headless runs, the demo.

Headless runs load tests/scenarios/tui.yaml.j2 with the testbed's addresses and ports given as
``-D name=value``; the scenario succeeds only when its flag file exists.
"""

from __future__ import annotations

import json
from pathlib import Path

from tui_support import TUI_SCENARIO, definitions, scenario_variables

from apssh_tui.cli import main

BAD_SCENARIO = """\
nodes:
  - id: n1
    hostname: 127.0.0.11
jobs:
  - id: hello
    node: n1
    comand: echo hello
"""


def test_bad_scenario_file_exits_2_with_a_clear_message_before_any_screen(tmp_path, capsys, monkeypatch):
    """A scenario with a mistake: exit 2, one message naming file, line and key on stderr, no screen, no record."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SCENARIO)

    assert main([str(path)]) == 2

    out, err = capsys.readouterr()
    assert out == ""  # nothing drawn: a screen would write escape sequences to stdout
    assert err.startswith(f"apssh-tui: {path}:7: job 'hello': unknown key 'comand'")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [path]  # no record directory either


def test_missing_scenario_file_exits_2(tmp_path, capsys):
    """A scenario file that does not exist: exit 2 and a message saying so."""
    assert main([str(tmp_path / "nowhere.yaml")]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "nowhere.yaml" in err and "no such scenario file" in err


def test_variable_not_given_exits_2_and_names_it(tmp_path, capsys):
    """A template variable left undefined: exit 2 with a message telling to give it with -D."""
    assert main([str(TUI_SCENARIO), "--no-record"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"apssh-tui: {TUI_SCENARIO}:") and "-D" in err


def test_malformed_definition_exits_2(capsys):
    """A -D without '=' is refused with exit 2 before the scenario is read."""
    assert main([str(TUI_SCENARIO), "-D", "user"]) == 2

    assert "-D 'user': expected name=value" in capsys.readouterr().err


def test_negative_handshakes_exits_2_and_says_what_is_expected(capsys):
    """apssh-tui --handshakes -1 exits 2 before any screen, saying what the option takes."""
    assert main([str(TUI_SCENARIO), "--handshakes", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--handshakes" in err and "0 for no limit" in err and "-1" in err


def test_no_scenario_exits_2(capsys):
    """No scenario, no --demo, no --replay: exit 2 and a message saying what to give."""
    assert main([]) == 2

    assert "give a scenario file" in capsys.readouterr().err


def test_replay_of_a_directory_without_record_exits_2(tmp_path, capsys):
    """--replay on a directory that holds no run.json: exit 2 naming it, before any screen."""
    assert main(["--replay", str(tmp_path)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"apssh-tui: {tmp_path}: not a record directory (no run.json); " \
                  f"record directories are written by apssh-tui runs\n"


def test_headless_success_exits_0_and_writes_a_record(testbed, tmp_path, capsys):
    """--headless on a scenario that succeeds: progress lines, a summary, exit 0, a record directory."""
    flag = tmp_path / "flag"
    flag.touch()
    argv = [str(TUI_SCENARIO), "--headless", "--record-dir", str(tmp_path / "runs"),
            *definitions(scenario_variables(testbed, flag))]

    assert main(argv) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "== scenario succeeded"
    assert "== done 5 / failed 0 / running 0 / total 5" in lines
    assert any(line.split()[1:4] == ["done", "report", "report"] for line in lines)
    (record,) = (tmp_path / "runs").iterdir()
    assert f"== record: {record}" in lines
    data = json.loads((record / "run.json").read_text())
    assert data["succeeded"] is True and {job["state"] for job in data["jobs"]} == {"done"}


def test_headless_failure_exits_1_without_record(testbed, tmp_path, capsys, monkeypatch):
    """--headless --no-record on a scenario whose check fails: exit 1, the failed job listed, no record."""
    monkeypatch.chdir(tmp_path)
    variables = scenario_variables(testbed, tmp_path / "flag")
    argv = [str(TUI_SCENARIO), "--headless", "--no-record", *definitions(variables)]

    assert main(argv) == 1

    out = capsys.readouterr().out
    assert "== done 4 / failed 1 / running 0 / total 5" in out
    assert f"   failed: check check flag ({testbed.user}@127.0.0.12) exit code 1" in out
    assert out.endswith("== scenario FAILED\n")
    assert list(Path(tmp_path).iterdir()) == []


def test_demo_headless_fails_on_its_first_run(tmp_path, capsys, monkeypatch):
    """--demo --headless runs the bundled scenario on the embedded testbed; its measure job fails the first time."""
    monkeypatch.chdir(tmp_path)

    assert main(["--demo", "--headless", "--no-record"]) == 1

    out = capsys.readouterr().out
    assert "failed: measure measure (fails once)" in out
    assert out.endswith("== scenario FAILED\n")


SCRIPT_WITH_OPTIONS = """\
import argparse
from asynciojobs import Scheduler
from apssh import SshNode, SshJob

parser = argparse.ArgumentParser()
parser.add_argument("-u", "--user")
parser.add_argument("--host")
parser.add_argument("--port", type=int)
parser.add_argument("--known-hosts")
parser.add_argument("-N", type=int, default=1)
parser.add_argument("flag")
args = parser.parse_args()
node = SshNode(args.host, port=args.port, username=args.user, known_hosts=args.known_hosts)
scheduler = Scheduler(*[SshJob(node, command=f"echo {i} >> {args.flag}") for i in range(args.N)], timeout=30)
scheduler.run()
"""


def test_headless_python_script_gets_the_arguments_after_dashdash(testbed, tmp_path, capsys):
    """apssh-tui script.py --headless -- OPTIONS: the script parses OPTIONS, its jobs run with them."""
    script = tmp_path / "with_options.py"
    script.write_text(SCRIPT_WITH_OPTIONS)
    flag = tmp_path / "flag"
    host = testbed.host("node1")
    argv = [str(script), "--headless", "--no-record", "--", "-u", testbed.user, "--host", host.address,
            "--port", str(host.port), "--known-hosts", str(testbed.all_known_hosts), "-N", "3", str(flag)]

    assert main(argv) == 0

    assert sorted(flag.read_text().split()) == ["0", "1", "2"]
    assert "== scenario succeeded" in capsys.readouterr().out

"""Issue 11.2: a captured value is data, never shell code, with ``{{ v | quote }}``.

What the user sees: the value arrives intact in the next command (same bytes), and nothing
hidden in it (a ``;``, a newline, a quote, ``$(...)``) runs.
"""

from __future__ import annotations

import textwrap

import pytest
from asynciojobs import Scheduler
from helpers import known_node

from apssh import Capture, Deferred, Run, SshJob, Variables, YamlLoader

HOSTILE = {
    "semicolon": "a; touch {mark}",
    "newline": "a\ntouch {mark}\nb",
    "quotes": "it's \"quoted\" $(touch {mark}) `touch {mark}` 'x",
}


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request, tmp_path):
    """``(value, mark, source, out)``: a hostile value, the file that must never appear, the
    file the first command reads the value from, the file the second command writes it to."""
    mark = tmp_path / "touched"
    value = HOSTILE[request.param].format(mark=mark)
    source = tmp_path / "value.txt"
    source.write_text(value + "\n")
    return value, mark, source, tmp_path / "received.txt"


def test_quoted_capture_arrives_intact_and_runs_nothing(testbed, hostile):
    """Capture then Run(Deferred("... {{ v | quote }}")): the value is one word, nothing in it runs."""
    value, mark, source, out = hostile
    env = Variables()
    node = known_node(testbed, "node1")
    scheduler = Scheduler(timeout=30)
    first = SshJob(node, commands=Run(f"cat {source}", capture=Capture("v", env)), scheduler=scheduler)
    SshJob(node, commands=Run(Deferred(f"printf %s {{{{ v | quote }}}} > {out}", env)),
           required=first, scheduler=scheduler)
    assert scheduler.run()
    assert env.v == value
    assert out.read_text() == value
    assert not mark.exists()


def test_quoted_capture_in_yaml_arrives_intact_and_runs_nothing(testbed, hostile):
    """The same in a YAML scenario: 'capture: v', then '{{ v | quote }}' in a later command."""
    value, mark, source, out = hostile
    node1 = testbed.host("node1")
    path = source.parent / "scenario.yaml"
    path.write_text(textwrap.dedent(f"""\
        nodes:
          - id: n
            hostname: "{node1.address}"
            port: {node1.port}
            username: {testbed.user}
            known_hosts: {testbed.all_known_hosts}
        jobs:
          - id: read
            node: n
            commands:
              - type: Run
                command: cat {source}
                capture: v
          - id: use
            node: n
            required: read
            commands:
              - type: Run
                command: printf %s {{{{ v | quote }}}} > {out}
        """))
    scheduler = YamlLoader(path).load()
    scheduler.timeout = 30
    assert scheduler.run()
    assert out.read_text() == value
    assert not mark.exists()


def test_yaml_quote_filter_applies_to_d_variables_at_load_time(tmp_path):
    """A -D value given to '| quote' is quoted when the scenario loads."""
    path = tmp_path / "scenario.yaml"
    path.write_text("nodes:\n  - id: n\n    localnode: true\njobs:\n  - id: j\n    node: n\n"
                    "    command: echo {{ word | quote }}\n")
    _, jobs, _ = YamlLoader(path).load_with_maps({"word": "a b; c"})
    assert jobs["j"].commands[0].command_line() == "echo 'a b; c'"

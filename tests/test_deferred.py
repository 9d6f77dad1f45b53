"""Deferred evaluation: Variables, Deferred templates, Capture, rendered while the scenario runs."""

from __future__ import annotations

import jinja2
import pytest
from asynciojobs import Scheduler, Sequence
from helpers import known_node, run_jobs

from apssh import Capture, CommandFailedError, Deferred, Run, RunString, SshJob, Variables
from apssh.deferred import StrLikeMixin


# ---------------------------------------------------------------- Variables
def test_variables_attribute_and_item_are_the_same():
    """A Variables value set by attribute reads by item, and the other way round."""
    variables = Variables()
    variables.foo = "bar"
    variables["bar"] = "foo"
    assert variables.foo == variables["foo"] == "bar"
    assert variables.bar == variables["bar"] == "foo"
    del variables.foo
    assert "foo" not in variables


def test_variables_missing_attribute_names_it():
    """Reading a missing variable as an attribute raises AttributeError naming it."""
    with pytest.raises(AttributeError, match="nosuchvar"):
        Variables().nosuchvar  # noqa: B018 - the read is the test


# ---------------------------------------------------------------- Deferred
def test_deferred_renders_with_current_values():
    """A Deferred is rendered with the variables' values at render time, not at creation."""
    env = Variables()
    deferred = Deferred("ping -c 1 {{peer}}", env)
    env.peer = "first"
    assert str(deferred) == "ping -c 1 first"
    env.peer = "second"
    assert deferred.render() == "ping -c 1 second"


def test_spec_example_capture_then_deferred_in_a_sequence(testbed):
    """The spec's example: a value captured by a first job is used by a Deferred command in the next one."""
    env = Variables()
    node_obj, other_node_obj = known_node(testbed, "node1"), known_node(testbed, "node2")
    scheduler = Scheduler(Sequence(
        SshJob(node_obj, commands=Run("echo some-value-$((6*7))", capture=Capture("somevar", env))),
        SshJob(other_node_obj, commands=Run(Deferred("echo other-command {{somevar}}", env),
                                            capture=Capture("result", env)))), timeout=30)
    assert "somevar" not in env
    assert scheduler.run()
    assert env.somevar == "some-value-42"
    assert env.result == "other-command some-value-42"
    assert other_node_obj.formatter.stdout() == ["other-command some-value-42\n"]


def test_deferred_label_shows_template():
    """A command built from a Deferred shows its template (nothing is rendered at build time)."""
    env = Variables()
    assert Run(Deferred("echo {{notyet}}", env)).label_line() == "echo {{notyet}}"


def test_dup_from_string_shares_variables():
    """dup_from_string makes a new Deferred with another template on the same Variables."""
    env = Variables()
    original = Deferred("a {{x}}", env)
    copy = original.dup_from_string("b {{x}} {{y}}")
    assert isinstance(copy, Deferred) and copy is not original
    assert copy.variables is env
    env.x, env.y = 1, 2
    assert copy.render() == "b 1 2"
    assert original.render() == "a 1"


def test_concatenation_stays_deferred():
    """Deferred + str and str + Deferred are still Deferred, rendered only later."""
    env = Variables()
    deferred = Deferred("{{name}}", env)
    left, right, both = "echo " + deferred, deferred + " done", deferred + deferred
    for value in (left, right, both):
        assert isinstance(value, Deferred)
        assert value.variables is env
    env.name = "joe"
    assert (left.render(), right.render(), both.render()) == ("echo joe", "joe done", "joejoe")
    assert isinstance(deferred, StrLikeMixin)


def test_concatenated_literal_braces_are_not_template():
    """A plain string with {{ }} concatenated to a Deferred stays literal text."""
    env = Variables(v="x")
    assert (Deferred("{{v}}", env) + " {{v}}").render() == "x {{v}}"


def test_concatenated_deferred_runs_remotely(testbed):
    """A Run built from a concatenated Deferred runs the rendered command."""
    env = Variables()
    command = "echo " + Deferred("{{word}}", env) + " end"
    node = known_node(testbed, "node1")
    job = SshJob(node, commands=[Run("echo middle", capture=Capture("word", env)),
                                 Run(command, capture=Capture("out", env))])
    assert run_jobs(job)
    assert env.out == "middle end"


def test_missing_variable_names_it():
    """Rendering a Deferred whose variable is missing raises an error naming the variable."""
    with pytest.raises(jinja2.UndefinedError, match="nosuchvar"):
        Deferred("echo {{nosuchvar}}", Variables()).render()


def test_missing_variable_fails_the_job_naming_it(testbed):
    """A Run with a Deferred whose variable was never captured fails, naming the variable."""
    node = known_node(testbed, "node1")
    with pytest.raises(CommandFailedError, match="nosuchvar"):
        run_jobs(SshJob(node, commands=Run(Deferred("echo {{nosuchvar}}", Variables()))))
    assert node.formatter.stdout() == []


def test_deferred_runstring_body_from_capture(testbed):
    """A RunString whose body is a Deferred uses a value captured earlier in the same Sequence."""
    env = Variables()
    body = Deferred("#!/bin/sh\necho body-{{item}}-$1\n", env)
    scheduler = Scheduler(Sequence(
        SshJob(known_node(testbed, "node1"), commands=Run("echo apple", capture=Capture("item", env))),
        SshJob(known_node(testbed, "node2"), commands=RunString(body, "arg", capture=Capture("out", env)))),
        timeout=30)
    assert scheduler.run()
    assert env.out == "body-apple-arg"


def test_deferred_rejects_bad_templates():
    """A Deferred template must be a str with valid Jinja syntax."""
    with pytest.raises(TypeError):
        Deferred(42, Variables())
    with pytest.raises(ValueError, match="unclosed"):
        Deferred("{{ unclosed", Variables())


# ---------------------------------------------------------------- Capture
@pytest.mark.parametrize("varname", ["", "not valid", "1abc", None, 3])
def test_capture_rejects_bad_variable_names(varname):
    """Capture needs an identifier as its variable name."""
    with pytest.raises(ValueError, match="identifier"):
        Capture(varname, Variables())


def test_capture_store_drops_only_final_newline():
    """Capture.store keeps the text but its one final newline."""
    env = Variables()
    capture = Capture("out", env)
    capture.store("a\nb\n\n")
    assert env.out == "a\nb\n"
    capture.store("no newline")
    assert env.out == "no newline"


def test_commands_reject_a_non_capture():
    """capture= must be a Capture instance: a plain string is a TypeError at build time."""
    with pytest.raises(TypeError, match="Capture"):
        Run("true", capture="varname")
    with pytest.raises(TypeError, match="Capture"):
        RunString("#!/bin/sh\n", capture=("v", Variables()))

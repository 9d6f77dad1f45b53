"""One entry point to load a scenario file, YAML or Python, into a Scheduler.

Python scenarios come in three shapes, all accepted:

* a module-level ``scheduler`` (an asynciojobs Scheduler);
* a function ``scenario(**variables)`` returning one (``-D name=value`` become its arguments);
* an existing apssh script that builds a Scheduler and calls its ``run()``, ``orchestrate()``
  or ``co_run()``: the file runs as ``__main__`` with that call intercepted, and the scheduler
  it was about to run is returned instead of being run.

The file is executed once: a file that defines ``scenario`` or assigns ``scheduler`` at its top
level is executed as a module (not ``__main__``), any other file as ``__main__``.  The script
sees ``sys.argv`` as ``[file, *script_args]`` (``apssh-tui script.py -- -s SLICE -N 3``).
"""

from __future__ import annotations

import ast
import inspect
import os
import runpy
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asynciojobs import Scheduler
from asynciojobs.purescheduler import PureScheduler

from .yaml_loader import ScenarioError, YamlLoader

YAML_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")


@dataclass
class Scenario:
    """A loaded scenario: its scheduler, and what the loader knows by id (YAML only)."""

    filename: Path
    scheduler: Scheduler
    nodes: dict = field(default_factory=dict)
    jobs: dict = field(default_factory=dict)
    services: dict = field(default_factory=dict)
    variables: Any = None


def parse_definitions(definitions: list[str]) -> dict[str, str]:
    """``["a=1", "b=x y"]`` -> ``{"a": "1", "b": "x y"}`` (from ``-D name=value`` options).

    Raises ValueError naming the definition without ``=`` or with a bad name.
    """
    variables = {}
    for definition in definitions or []:
        name, equal, value = definition.partition("=")
        if not equal or not name.strip().isidentifier():
            raise ValueError(f"-D {definition!r}: expected name=value with a name such as n_nodes")
        variables[name.strip()] = value
    return variables


class _Intercepted(BaseException):
    """Raised in place of running a scheduler: carries it back to the loader."""

    def __init__(self, scheduler):
        super().__init__("scheduler intercepted")
        self.scheduler = scheduler


@contextmanager
def _intercept_runs():
    """While active, Scheduler.run()/orchestrate()/co_run() hand the scheduler over instead."""
    originals = {name: getattr(PureScheduler, name) for name in ("run", "orchestrate", "co_run")
                 if hasattr(PureScheduler, name)}
    coroutine_original = Scheduler.co_run

    def grab(self, *args, **kwds):
        raise _Intercepted(self)

    async def co_grab(self, *args, **kwds):
        raise _Intercepted(self)

    try:
        for name in originals:
            setattr(PureScheduler, name, co_grab if name == "co_run" else grab)
        Scheduler.co_run = co_grab
        yield
    finally:
        for name, original in originals.items():
            setattr(PureScheduler, name, original)
        Scheduler.co_run = coroutine_original


@contextmanager
def _script_context(path: Path, script_args: list[str]):
    """argv, cwd and sys.path as the script would see them when run by hand with ``script_args``."""
    saved_argv, saved_path, saved_cwd = sys.argv[:], sys.path[:], os.getcwd()
    sys.argv = [str(path), *script_args]
    sys.path.insert(0, str(path.parent))
    try:
        yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        os.chdir(saved_cwd)


def _run_python(path: Path, run_name: str) -> tuple[dict, Scheduler | None]:
    """Execute the file; returns its globals and the scheduler it tried to run, if any."""
    with _intercept_runs():
        try:
            return runpy.run_path(str(path), run_name=run_name), None
        except _Intercepted as intercepted:
            return {}, intercepted.scheduler
        except SystemExit as exc:
            raise ScenarioError(path, None, f"the script exited (status {exc.code}) before running "
                                            f"a scheduler; check its command-line arguments") from None
        except SyntaxError as exc:
            raise ScenarioError(path, exc.lineno, f"Python syntax error: {exc.msg}") from None
        except Exception as exc:
            line = _script_line(exc, path)
            raise ScenarioError(path, line, f"{type(exc).__name__}: {exc}") from exc


def _script_line(exc: BaseException, path: Path) -> int | None:
    tb, line = exc.__traceback__, None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _defines_scenario(path: Path) -> bool:
    """Whether the file defines ``scenario`` or assigns ``scheduler`` at its top level."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except SyntaxError:
        return False  # executing it reports the error with its line
    names = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(statement, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in statement.names)
    return bool(names & {"scenario", "scheduler"})


def _load_python(path: Path, variables: dict, script_args: list[str]) -> Scenario:
    with _script_context(path, script_args):
        return _load_python_here(path, variables)


def _load_python_here(path: Path, variables: dict) -> Scenario:
    if not _defines_scenario(path):
        # an apssh script: executed once, as __main__, its scheduler.run() intercepted
        _, grabbed = _run_python(path, "__main__")
        return _checked(path, grabbed)
    namespace, grabbed = _run_python(path, "apssh_scenario")
    if grabbed is None:
        factory = namespace.get("scenario")
        if callable(factory):
            try:
                inspect.signature(factory).bind(**variables)
            except TypeError as exc:
                raise ScenarioError(path, None, f"scenario(**variables) failed: {exc}; "
                                                f"variables given: {sorted(variables)}") from None
            except ValueError:  # no signature to check: let the call say
                pass
            try:
                with _intercept_runs():
                    grabbed = factory(**variables)
            except _Intercepted as intercepted:
                grabbed = intercepted.scheduler
            except Exception as exc:
                raise ScenarioError(path, _script_line(exc, path), f"scenario(): {type(exc).__name__}: {exc}") from exc
            if not isinstance(grabbed, PureScheduler):
                raise ScenarioError(path, None, f"scenario(**variables) returned {grabbed!r}, not a Scheduler")
        elif isinstance(namespace.get("scheduler"), PureScheduler):
            grabbed = namespace["scheduler"]
        else:
            # 'scheduler' was not a Scheduler once executed as a module (set under __main__ only)
            _, grabbed = _run_python(path, "__main__")
    return _checked(path, grabbed)


def _checked(path: Path, grabbed) -> Scenario:
    if not isinstance(grabbed, PureScheduler):
        raise ScenarioError(path, None, "no scenario found: define a module-level 'scheduler', a function "
                                        "'scenario(**variables)' returning a Scheduler, or call "
                                        "scheduler.run() in the script")
    return Scenario(path, grabbed)


def load_scenario(filename: str | os.PathLike, variables: dict | None = None,
                  script_args: list[str] | None = None) -> Scenario:
    """Load a YAML (``.yaml``, ``.yml``, ``.j2``) or Python (``.py``) scenario.

    Args:
        filename: the scenario file.
        variables: ``-D name=value`` variables: the Jinja2 environment of a YAML file,
            the keyword arguments of a Python ``scenario()`` function.
        script_args: a Python scenario's own command line (its ``sys.argv[1:]``, default none).

    Raises:
        ScenarioError naming the file (and line) and what to fix; script arguments given to a
        YAML scenario are an error (use -D for its variables).
    """
    path = Path(filename).resolve()
    variables = dict(variables or {})
    script_args = list(script_args or [])
    if not path.is_file():
        raise ScenarioError(filename, None, f"no such scenario file (from {os.getcwd()})")
    if script_args and path.suffix != ".py":
        raise ScenarioError(filename, None, f"arguments after -- ({' '.join(script_args)}) are a Python "
                                            f"script's command line; give a YAML scenario's variables "
                                            f"with -D name=value")
    if str(path).endswith(YAML_SUFFIXES):
        loader = YamlLoader(path)
        nodes, jobs, scheduler = loader.load_with_maps(variables if variables or path.suffix == ".j2" else None)
        return Scenario(path, scheduler, nodes, jobs, loader.services_map, loader.variables)
    if path.suffix == ".py":
        return _load_python(path, variables, script_args)
    raise ScenarioError(filename, None, "unknown scenario type: expected .yaml, .yml, .yaml.j2 or .py")

"""Scenarios written in YAML (optionally through Jinja2): nodes, jobs, commands, services.

The apssh 0.27 format loads unchanged::

    nodes:
      - id: gw
        hostname: faraday.example.org
        username: guest
      - id: n1
        hostname: fit01
        gateway: gw
    jobs:
      - id: hello
        node: n1
        commands:
          - type: Run
            command: hostname

Beyond 0.27: node keys ``port keys timeout host_key_policy known_hosts``; job keys
``forever keep_connection`` and nested ``scheduler:`` blocks; a top-level ``scheduler:``
with ``jobs_window timeout label``; ``services:`` with ``type: Service`` commands
(``action: start|stop|status|journal``); ``capture: name`` on a command stores its output,
and a later string containing ``{{ name | quote }}`` is rendered when its command runs
(``quote`` makes the captured value one shell word; a raw ``{{ name }}`` would run it as
shell code).

Relative file names (``local_script:``, ``includes:``, ``localpaths:``) are looked up in the
current directory first (as apssh 0.27 did), then beside the YAML file.  A script or include
found in neither still loads (to inspect or graph the scenario): a :class:`ScenarioWarning`
names the file and the paths tried, and the job fails with that message when it runs.

Every mistake raises one :class:`ScenarioError` naming the file, the line and the value.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml
from asynciojobs import Scheduler

from . import formatters
from .commands import AbstractCommand, Pull, Push, Run, RunScript, RunString
from .deferred import TEMPLATE_FILTERS, Capture, Deferred, Variables, quote
from .nodes import LocalNode, SshNode
from .service import Service
from .sshjob import SshJob
from .sshproxy import HOST_KEY_POLICIES


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message is ``file:line: what and the fix``."""

    def __init__(self, filename: str | os.PathLike, line: int | None, message: str):
        self.filename = str(filename)
        self.line = line
        self.message = message
        super().__init__(f"{filename}:{line}: {message}" if line else f"{filename}: {message}")


class ScenarioWarning(UserWarning):
    """Something the scenario will trip on when it runs (a missing script), not when it loads."""


# ---------------------------------------------------------------- YAML with line numbers
class _Mapping(dict):
    """A YAML mapping that remembers its line and the line of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (dict, list)):
            raise yaml.constructor.ConstructorError(None, None, "found a mapping or a list used as a key",
                                                    key_node.start_mark)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _KeepUnknown(jinja2.StrictUndefined):
    """At load time, a variable that is not given stays ``{{ name }}``: it may be a capture."""

    def __str__(self) -> str:
        return "{{ %s }}" % self._undefined_name

    __index__ = jinja2.StrictUndefined._fail_with_undefined_error


def _load_time_quote(value: Any) -> str:
    """``quote`` at load time: a captured variable (not known yet) stays ``{{ name | quote }}``
    for run time; a ``-D`` value is quoted now."""
    if isinstance(value, jinja2.Undefined):
        return "{{ %s | quote }}" % value._undefined_name
    return quote(value)


# ---------------------------------------------------------------- schema
TOP_KEYS = {"nodes", "jobs", "services", "scheduler"}
SCHEDULER_KEYS = {"jobs_window", "timeout", "label", "critical", "verbose"}
NODE_KEYS = {"id", "hostname", "username", "gateway", "formatter", "verbose", "localnode",
             "port", "keys", "timeout", "host_key_policy", "known_hosts"}
JOB_KEYS = {"id", "node", "commands", "command", "required", "critical", "verbose", "label",
            "forever", "keep_connection", "scheduler"}
NESTED_JOB_KEYS = {"id", "required", "critical", "label", "forever", "scheduler"}
SERVICE_KEYS = {"id", "command", "service_id", "tty", "systemd_type", "environ", "stop_if_running", "verbose",
                "backend"}
COMMON_COMMAND_KEYS = {"type", "label", "verbose", "allowed_exits"}
COMMAND_KEYS = {
    "Run": {"command", "args", "x11", "capture", "ignore_outputs"},
    "RunScript": {"command", "local_script", "args", "includes", "x11", "capture"},
    "RunString": {"script_body", "args", "includes", "remote_name", "x11", "capture"},
    "Push": {"localpaths", "remotepath", "recurse", "preserve"},
    "Pull": {"remotepaths", "localpath", "recurse", "preserve"},
    "Service": {"service", "action", "output", "since"},
}
SERVICE_ACTIONS = ("start", "stop", "status", "journal")
# where a {{ name }} may stay until run time (a Deferred rendered with the captured variables)
DEFERRABLE_KEYS = ("command", "commands", "args", "script_body")
FORMATTERS = {name: getattr(formatters, name) for name in
              ("RawFormatter", "ColonFormatter", "TimeColonFormatter", "HostFormatter", "TimeHostFormatter")}


class YamlLoader:
    """Loads a YAML scenario into an asynciojobs Scheduler.

    Args:
        filename: the scenario; ``*.yaml.j2`` files always go through Jinja2.

    After loading, ``nodes_map``, ``jobs_map``, ``services_map`` (by id) and ``variables``
    (the Variables that captures fill) describe the scenario.
    """

    def __init__(self, filename: str | os.PathLike):
        self.filename = Path(filename)
        self._reset()

    def _reset(self) -> None:
        """Each load builds new objects: a loader can load its file again."""
        self.nodes_map: dict[str, Any] = {}
        self.jobs_map: dict[str, Any] = {}
        self.services_map: dict[str, Service] = {}
        self.variables = Variables()
        #: the ScenarioWarning messages of the last load (missing scripts...)
        self.warnings: list[str] = []
        self._captures: set[str] = set()
        self._deferred: list[tuple[int, str]] = []

    # -- public API
    def load(self, env: dict | None = None, *, save_intermediate=None) -> Scheduler:
        """The scenario's Scheduler.

        Args:
            env: variables for the Jinja2 pass (done when env is given or the file ends in .j2).
            save_intermediate: True (next to the file, ``.j2`` dropped or ``.rendered.yaml``
                added) or a path: where to write the YAML after the Jinja2 pass.

        Raises:
            ScenarioError naming the file, the line and the offending value.
        """
        return self.load_with_maps(env, save_intermediate=save_intermediate)[2]

    def load_with_maps(self, env: dict | None = None, *, save_intermediate=None):
        """``(nodes_map, jobs_map, scheduler)``: like :meth:`load`, with the maps by id."""
        self._reset()
        text = source = self._read()
        if env is not None or self.filename.suffix == ".j2":
            text = self._render(text, env or {})
            if save_intermediate:
                self._save(text, save_intermediate)
        try:
            data = self._parse(text)
            self._check_templates(data)
            scheduler = self._build(data)
            self._check_deferred()
        except ScenarioError as exc:
            raise self._source_error(exc, source, text) from None
        return self.nodes_map, self.jobs_map, scheduler

    # -- stages
    def _error(self, line: int | None, message: str) -> ScenarioError:
        return ScenarioError(self.filename, line, message)

    def _source_error(self, exc: ScenarioError, source: str, rendered: str) -> ScenarioError:
        """``exc`` names a line of the rendered text: move it to the source line it comes from."""
        if exc.line is None or source.count("\n") == rendered.count("\n"):
            return exc
        wanted = _source_line(rendered, exc.line)
        matches = [number for number, line in enumerate(source.splitlines(), 1) if wanted and line.strip() == wanted]
        if len(matches) == 1:
            return ScenarioError(self.filename, matches[0], exc.message)
        return ScenarioError(self.filename, exc.line, f"{exc.message} (line {exc.line} of the YAML rendered by "
                                                      f"Jinja2: see it with save_intermediate)")

    def _read(self) -> str:
        try:
            return self.filename.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self._error(None, f"no such scenario file (from {os.getcwd()})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(None, f"cannot read the scenario: {exc}") from None

    def _render(self, text: str, env: dict) -> str:
        environment = jinja2.Environment(undefined=_KeepUnknown, keep_trailing_newline=True,
                                         loader=jinja2.FileSystemLoader(str(self.filename.parent)))
        environment.filters["quote"] = _load_time_quote
        try:
            return environment.from_string(_keep_run_time_expressions(environment, text, env)).render(**env)
        except jinja2.TemplateSyntaxError as exc:
            raise self._error(exc.lineno, f"Jinja2 syntax error: {exc.message} in "
                                          f"{_source_line(text, exc.lineno)!r}") from None
        except jinja2.UndefinedError as exc:
            raise self._error(_jinja_line(exc), f"Jinja2: {exc.message}; give it with -D name=value "
                                                f"(given: {', '.join(sorted(env)) or 'none'})") from None
        except jinja2.TemplateError as exc:
            raise self._error(_jinja_line(exc), f"Jinja2 error: {exc}") from None
        except Exception as exc:  # e.g. TypeError or ZeroDivisionError in a template expression
            line = _jinja_line(exc)
            raise self._error(line, f"Jinja2 error: {type(exc).__name__}: {exc} in "
                                    f"{_source_line(text, line)!r}") from None

    def _save(self, text: str, save_intermediate) -> None:
        if save_intermediate is True:
            name = str(self.filename)
            target = Path(name[:-3]) if name.endswith(".j2") else Path(name + ".rendered.yaml")
        else:
            target = Path(save_intermediate)
        target.write_text(text, encoding="utf-8")

    def _parse(self, text: str) -> _Mapping:
        try:
            data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            # the problem may be at the end of the stream: then the context names the culprit
            marks = [mark for mark in (exc.problem_mark, exc.context_mark) if mark is not None]
            marks = [mark for mark in marks if _source_line(text, mark.line + 1)] or marks
            line = marks[0].line + 1 if marks else None
            source = _source_line(text, line)
            hint = (" (a value starting with {{ must be quoted; or is a variable undefined? "
                    "give it with -D name=value)") if "{{" in source else ""
            raise self._error(line, f"YAML syntax error: {exc.problem or exc.context} in {source!r}{hint}") from None
        except yaml.YAMLError as exc:
            raise self._error(None, f"YAML error: {exc}") from None
        if not isinstance(data, _Mapping):
            raise self._error(1, "a scenario is a mapping with 'nodes:' and 'jobs:'")
        self._check_keys(data, TOP_KEYS, "the scenario")
        if not data.get("jobs"):
            raise self._error(data.line_of("jobs"), "the scenario has no 'jobs:' (nothing to run)")
        return data

    def _check_keys(self, entry: _Mapping, allowed: set, what: str) -> None:
        for key in entry:
            if key not in allowed:
                raise self._error(entry.line_of(key), f"{what}: unknown key {key!r} "
                                                      f"(known: {', '.join(sorted(allowed))})")

    def _entries(self, data: _Mapping, key: str) -> list[_Mapping]:
        value = data.get(key) or []
        if not isinstance(value, list):
            raise self._error(data.line_of(key), f"'{key}:' must be a list of entries (lines starting with '- ')")
        for entry in value:
            if not isinstance(entry, _Mapping):
                raise self._error(data.line_of(key), f"'{key}:' entries must be mappings, got {entry!r}")
        return value

    def _identify(self, entry: _Mapping, what: str, seen: dict) -> str:
        ident = entry.get("id")
        if not isinstance(ident, (str, int)) or isinstance(ident, bool) or ident == "":
            raise self._error(entry.line, f"{what} without a valid 'id:' (got {ident!r})")
        ident = str(ident)
        if ident in seen:
            raise self._error(entry.line_of("id"), f"duplicate {what} id {ident!r}")
        return ident

    # -- typed values
    def _value(self, entry: _Mapping, key: str, kinds, what: str, default=None):
        if key not in entry or entry[key] is None:
            return default
        value = entry[key]
        if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            raise self._error(entry.line_of(key), f"{what}: {key} must be {_kind_name(kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise self._error(entry.line_of(key), f"{what}: {key} must be {_kind_name(kinds)}, got {value!r}")
        return value

    def _strings(self, entry: _Mapping, key: str, what: str, default=None) -> list | None:
        """A scalar or a list of scalars, as a list of strings (a scalar is ONE item)."""
        if key not in entry or entry[key] is None:
            return default
        value = entry[key]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, (dict, list)) or item is None:
                raise self._error(entry.line_of(key), f"{what}: {key} must be a string or a list of strings, "
                                                      f"got {item!r}")
        return [self._text(str(item), entry.line_of(key)) for item in items]

    def _text(self, text, line: int):
        """A string, or a Deferred when it refers to captured variables with {{ }}."""
        if isinstance(text, str) and "{{" in text:
            self._deferred.append((line, text))
            return Deferred(text, self.variables)
        return text

    def _candidates(self, path: str) -> list[Path]:
        """Where a local file is looked for: as given when absolute, else the current directory
        (as apssh 0.27), then beside the YAML file."""
        given = Path(path).expanduser()
        if given.is_absolute():
            return [given]
        candidates = [Path.cwd() / given, self.filename.parent.resolve() / given]
        return list(dict.fromkeys(candidates))

    def _local_file(self, path: str, entry: _Mapping, key: str, what: str) -> str:
        candidates = self._candidates(path)
        for candidate in candidates:
            if candidate.exists():
                return str(candidate)
        raise self._error(entry.line_of(key), f"{what}: {key} {path!r}: no such local file "
                                              f"(looked for {', '.join(map(str, candidates))})")

    def _script_files(self, paths: list[str], entry: _Mapping, key: str, what: str,
                      missing: list[str]) -> list[str]:
        """Scripts and includes: found as _local_file does; a missing one is a warning (the
        load goes on, its message is appended to ``missing``) and stays as given."""
        found = []
        for path in paths:
            candidates = self._candidates(path)
            existing = [candidate for candidate in candidates if candidate.is_file()]
            if existing:
                found.append(str(existing[0]))
                continue
            message = (f"{self.filename}:{entry.line_of(key)}: {what}: {key} {path!r}: no such local file "
                       f"(looked for {', '.join(map(str, candidates))})")
            self.warnings.append(message)
            warnings.warn(message, ScenarioWarning, stacklevel=2)
            missing.append(message)
            found.append(path)
        return found

    # -- building
    def _build(self, data: _Mapping) -> Scheduler:
        options = data.get("scheduler") or _Mapping()
        if not isinstance(options, _Mapping):
            raise self._error(data.line_of("scheduler"), "'scheduler:' must be a mapping (jobs_window, timeout...)")
        self._check_keys(options, SCHEDULER_KEYS, "scheduler")
        for entry in self._entries(data, "nodes"):
            self._check_keys(entry, NODE_KEYS, f"node {entry.get('id')!r}")
            self.nodes_map[self._identify(entry, "node", self.nodes_map)] = entry
        for ident in list(self.nodes_map):
            self._node(ident)
        for entry in self._entries(data, "services"):
            self._check_keys(entry, SERVICE_KEYS, f"service {entry.get('id')!r}")
            ident = self._identify(entry, "service", self.services_map)
            self.services_map[ident] = self._service(ident, entry)
        scheduler = self._scheduler(options, "scenario")
        self._add_jobs(scheduler, self._entries(data, "jobs"))
        return scheduler

    def _scheduler(self, options: _Mapping, what: str) -> Scheduler:
        window = self._value(options, "jobs_window", int, what)
        timeout = self._value(options, "timeout", (int, float), what)
        critical = self._value(options, "critical", bool, what, True)
        verbose = self._value(options, "verbose", bool, what, False)
        label = self._value(options, "label", str, what)
        return Scheduler(jobs_window=window, timeout=timeout, critical=critical, verbose=verbose, label=label)

    def _node(self, ident: str, trail: tuple = ()):
        entry = self.nodes_map[ident]
        if not isinstance(entry, _Mapping):
            return entry  # already built
        what = f"node {ident!r}"
        if ident in trail:
            raise self._error(entry.line_of("gateway"), f"gateways loop: {' -> '.join(trail + (ident,))}")
        formatter = self._formatter(entry, what)
        verbose = self._value(entry, "verbose", bool, what)
        if self._value(entry, "localnode", bool, what, False):
            node = LocalNode(formatter=formatter, verbose=verbose)
        else:
            hostname = self._value(entry, "hostname", str, what)
            if not hostname:
                raise self._error(entry.line, f"{what}: 'hostname:' is missing (or say 'localnode: true')")
            gateway = None
            gateway_id = entry.get("gateway")
            if gateway_id is not None:
                if str(gateway_id) not in self.nodes_map:
                    raise self._error(entry.line_of("gateway"), f"{what}: gateway {gateway_id!r} is not a node id "
                                                                f"(known: {', '.join(self.nodes_map)})")
                gateway = self._node(str(gateway_id), trail + (ident,))
                if isinstance(gateway, LocalNode):
                    raise self._error(entry.line_of("gateway"), f"{what}: a localnode cannot be a gateway")
            keys = self._strings(entry, "keys", what)
            policy = self._value(entry, "host_key_policy", str, what, "accept-new")
            if policy not in HOST_KEY_POLICIES:
                raise self._error(entry.line_of("host_key_policy"), f"{what}: host_key_policy must be one of "
                                                                    f"{', '.join(HOST_KEY_POLICIES)}, got {policy!r}")
            options = dict(username=self._value(entry, "username", str, what), gateway=gateway,
                           keys=[self._local_file(key, entry, "keys", what) for key in keys] if keys else None,
                           port=self._value(entry, "port", int, what, 22), formatter=formatter, verbose=verbose,
                           timeout=self._value(entry, "timeout", (int, float), what, 30),
                           host_key_policy=policy,
                           known_hosts=self._value(entry, "known_hosts", str, what))
            try:
                node = SshNode(hostname, **options)
            except (ValueError, TypeError) as exc:
                raise self._error(entry.line, f"{what}: {exc}") from None
        self.nodes_map[ident] = node
        return node

    def _formatter(self, entry: _Mapping, what: str):
        name = self._value(entry, "formatter", str, what)
        if name is None:
            return None
        if name not in FORMATTERS:
            raise self._error(entry.line_of("formatter"), f"{what}: unknown formatter {name!r} "
                                                          f"(known: {', '.join(FORMATTERS)})")
        return FORMATTERS[name]()

    def _service(self, ident: str, entry: _Mapping) -> Service:
        what = f"service {ident!r}"
        command = self._value(entry, "command", str, what)
        if command is None:
            raise self._error(entry.line, f"{what}: 'command:' is missing")
        environ = self._value(entry, "environ", dict, what, {})
        try:
            return Service(self._text(command, entry.line_of("command")),
                           service_id=str(self._value(entry, "service_id", (str, int), what, ident)),
                           tty=self._value(entry, "tty", bool, what, False),
                           systemd_type=self._value(entry, "systemd_type", str, what, "simple"),
                           environ={str(k): str(v) for k, v in environ.items()},
                           stop_if_running=self._value(entry, "stop_if_running", bool, what, True),
                           backend=self._value(entry, "backend", str, what, "auto"),
                           verbose=self._value(entry, "verbose", bool, what, False))
        except (ValueError, TypeError) as exc:
            raise self._error(entry.line, f"{what}: {exc}") from None

    def _add_jobs(self, scheduler: Scheduler, entries: list[_Mapping]) -> None:
        """Build the jobs of one scheduler block, then wire their requirements."""
        block: dict[str, Any] = {}
        for entry in entries:
            nested = "scheduler" in entry
            what = f"job {entry.get('id')!r}"
            self._check_keys(entry, NESTED_JOB_KEYS if nested else JOB_KEYS, what)
            ident = self._identify(entry, "job", self.jobs_map)
            job = self._nested(ident, entry) if nested else self._job(ident, entry)
            self.jobs_map[ident] = job
            block[ident] = (job, entry)
            scheduler.add(job)
        for ident, (job, entry) in block.items():
            for required in self._strings(entry, "required", f"job {ident!r}", []):
                if required not in block:
                    where = "in another scheduler block" if required in self.jobs_map else "unknown"
                    raise self._error(entry.line_of("required"), f"job {ident!r} requires {where} job "
                                                                 f"{required!r} (jobs here: {', '.join(block)})")
                job.requires(block[required][0])
        self._check_cycles(block)

    def _check_cycles(self, block: dict) -> None:
        state: dict[str, int] = {}
        def visit(ident, path):
            state[ident] = 1
            job, entry = block[ident]
            for required in self._strings(entry, "required", "", []):
                if state.get(required) == 1:
                    cycle = path[path.index(required):] + [required]
                    raise self._error(entry.line_of("required"), f"jobs {' -> '.join(cycle)} require each "
                                                                 f"other in a cycle")
                if required not in state:
                    visit(required, path + [required])
            state[ident] = 2
        for ident in block:
            if ident not in state:
                visit(ident, [ident])

    def _nested(self, ident: str, entry: _Mapping) -> Scheduler:
        what = f"job {ident!r}"
        options = entry["scheduler"]
        if not isinstance(options, _Mapping):
            raise self._error(entry.line_of("scheduler"), f"{what}: 'scheduler:' must be a mapping with 'jobs:'")
        self._check_keys(options, SCHEDULER_KEYS | {"jobs"}, f"{what} scheduler")
        nested = self._scheduler(options, what)
        nested.critical = self._value(entry, "critical", bool, what, True)
        nested.forever = self._value(entry, "forever", bool, what, False)
        nested.label = self._value(entry, "label", str, what, ident)
        jobs = self._entries(options, "jobs")
        if not jobs:
            raise self._error(entry.line_of("scheduler"), f"{what}: the nested scheduler has no jobs")
        self._add_jobs(nested, jobs)
        return nested

    def _job(self, ident: str, entry: _Mapping) -> SshJob:
        what = f"job {ident!r}"
        node_id = entry.get("node")
        if node_id is None or str(node_id) not in self.nodes_map:
            raise self._error(entry.line_of("node"), f"{what}: node {node_id!r} is not a node id "
                                                     f"(known: {', '.join(self.nodes_map) or 'none'})")
        if "commands" in entry and "command" in entry:
            raise self._error(entry.line_of("command"), f"{what}: give 'commands:' or 'command:', not both")
        key = "commands" if "commands" in entry else "command"
        raw = entry.get(key)
        if raw is None:
            raise self._error(entry.line, f"{what}: 'commands:' is missing")
        items = raw if isinstance(raw, list) else [raw]
        commands = [self._command(item, entry.line_of(key), what) for item in items]
        if not commands:
            raise self._error(entry.line_of(key), f"{what}: 'commands:' is empty")
        try:
            return SshJob(self.nodes_map[str(node_id)], commands=commands,
                          critical=self._value(entry, "critical", bool, what, True),
                          forever=self._value(entry, "forever", bool, what, False),
                          verbose=self._value(entry, "verbose", bool, what),
                          keep_connection=self._value(entry, "keep_connection", bool, what, False),
                          label=self._value(entry, "label", str, what, ident))
        except TypeError as exc:
            raise self._error(entry.line, f"{what}: {exc}") from None

    def _command(self, item, line: int, what: str) -> AbstractCommand:
        if isinstance(item, str):
            return Run(self._text(item, line))
        if not isinstance(item, _Mapping):
            raise self._error(line, f"{what}: a command is a mapping with 'type:' or a string, got {item!r}")
        kind = item.get("type", "Run")
        if kind not in COMMAND_KEYS:
            raise self._error(item.line_of("type"), f"{what}: unknown command type {kind!r} "
                                                    f"(known: {', '.join(COMMAND_KEYS)})")
        what = f"{what}, {kind} command"
        self._check_keys(item, COMMON_COMMAND_KEYS | COMMAND_KEYS[kind], what)
        common = dict(label=self._value(item, "label", str, what))
        if "allowed_exits" in item:
            common["allowed_exits"] = item["allowed_exits"]
        try:
            return getattr(self, f"_command_{kind}")(item, what, common)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ScenarioError):
                raise
            raise self._error(item.line, f"{what}: {exc}") from None

    def _run_options(self, item: _Mapping, what: str, common: dict) -> dict:
        options = dict(common, x11=self._value(item, "x11", bool, what, False),
                       verbose=self._value(item, "verbose", bool, what, False))
        capture = self._value(item, "capture", str, what)
        if capture is not None:
            self._captures.add(capture)
            options["capture"] = Capture(capture, self.variables)
        return options

    def _command_Run(self, item, what, common):
        command = self._value(item, "command", (str, int, float), what)
        if command is None:
            raise self._error(item.line, f"{what}: 'command:' is missing")
        args = self._strings(item, "args", what, [])
        options = self._run_options(item, what, common)
        options["ignore_outputs"] = self._value(item, "ignore_outputs", bool, what, False)
        return Run(self._text(str(command), item.line_of("command")), *args, **options)

    def _command_RunScript(self, item, what, common):
        script = self._value(item, "local_script", str, what)
        args = self._strings(item, "args", what, [])
        if script is None:
            command = self._value(item, "command", str, what)
            if command is None:
                raise self._error(item.line, f"{what}: 'local_script:' is missing")
            script, *extra = command.split(maxsplit=1)
            args = [self._text(word, item.line_of("command")) for word in extra] + args
        key = "local_script" if "local_script" in item else "command"
        missing: list[str] = []
        (path,) = self._script_files([script], item, key, what, missing)
        includes = self._script_files(self._strings(item, "includes", what, []), item, "includes", what, missing)
        command = RunScript(path, *args, includes=includes, **self._run_options(item, what, common))
        command.missing_files = "; ".join(missing) or None
        return command

    def _command_RunString(self, item, what, common):
        body = self._value(item, "script_body", str, what)
        if body is None:
            raise self._error(item.line, f"{what}: 'script_body:' is missing")
        args = self._strings(item, "args", what, [])
        missing: list[str] = []
        includes = self._script_files(self._strings(item, "includes", what, []), item, "includes", what, missing)
        command = RunString(self._text(body, item.line_of("script_body")), *args, includes=includes,
                            remote_name=self._value(item, "remote_name", str, what),
                            **self._run_options(item, what, common))
        command.missing_files = "; ".join(missing) or None
        return command

    def _sftp_options(self, item, what) -> dict:
        return {key: self._value(item, key, bool, what) for key in ("recurse", "preserve") if key in item}

    def _command_Push(self, item, what, common):
        localpaths = self._strings(item, "localpaths", what)
        remotepath = self._value(item, "remotepath", str, what)
        if not localpaths or remotepath is None:
            raise self._error(item.line, f"{what}: needs 'localpaths:' and 'remotepath:'")
        paths = [self._local_file(path, item, "localpaths", what) for path in localpaths]
        common.pop("allowed_exits", None)
        return Push(paths, remotepath, verbose=self._value(item, "verbose", bool, what, False),
                    **common, **self._sftp_options(item, what))

    def _command_Pull(self, item, what, common):
        remotepaths = self._strings(item, "remotepaths", what)
        localpath = self._value(item, "localpath", str, what)
        if not remotepaths or localpath is None:
            raise self._error(item.line, f"{what}: needs 'remotepaths:' and 'localpath:'")
        common.pop("allowed_exits", None)
        return Pull(remotepaths, localpath, verbose=self._value(item, "verbose", bool, what, False),
                    **common, **self._sftp_options(item, what))

    def _command_Service(self, item, what, common):
        ident = item.get("service")
        if ident is None or str(ident) not in self.services_map:
            raise self._error(item.line_of("service"), f"{what}: service {ident!r} is not declared in "
                                                       f"'services:' (known: {', '.join(self.services_map) or 'none'})")
        service = self.services_map[str(ident)]
        action = self._value(item, "action", str, what, "start")
        if action not in SERVICE_ACTIONS:
            raise self._error(item.line_of("action"), f"{what}: action must be one of "
                                                      f"{', '.join(SERVICE_ACTIONS)}, got {action!r}")
        common.pop("allowed_exits", None)
        if "verbose" in item:
            common["verbose"] = self._value(item, "verbose", bool, what)
        if action == "status":
            return service.status_command(output=self._value(item, "output", str, what), **common)
        if action == "journal":
            return service.journal_command(since=self._value(item, "since", str, what), **common)
        return getattr(service, f"{action}_command")(**common)

    def _check_templates(self, data, key: str | None = None, line: int | None = None) -> None:
        """A {{ }} left outside commands is an undefined variable: nothing would ever render it."""
        if isinstance(data, _Mapping):
            for name, value in data.items():
                self._check_templates(value, name, data.line_of(name))
        elif isinstance(data, list):
            for item in data:
                self._check_templates(item, key, line)
        elif isinstance(data, str) and "{{" in data and key not in DEFERRABLE_KEYS:
            try:
                environment = jinja2.Environment()
                environment.filters.update(TEMPLATE_FILTERS)
                names = sorted(jinja2.meta.find_undeclared_variables(environment.parse(data)))
            except jinja2.TemplateSyntaxError as exc:
                raise self._error(line, f"{key}: bad template {data!r}: {exc.message}") from None
            raise self._error(line, f"{key}: {data!r} uses {', '.join(names) or 'a variable'}, which is not "
                                    f"defined; give it with -D {names[0] if names else 'name'}=value "
                                    f"({{{{ }}}} is left for run time only in {', '.join(DEFERRABLE_KEYS)})")

    def _check_deferred(self) -> None:
        """Every {{ name }} left in a command must be a variable some command captures."""
        environment = jinja2.Environment()
        environment.filters.update(TEMPLATE_FILTERS)
        for line, text in self._deferred:
            try:
                names = jinja2.meta.find_undeclared_variables(environment.parse(text))
            except jinja2.TemplateSyntaxError as exc:
                raise self._error(line, f"bad template {text!r}: {exc.message}") from None
            unknown = sorted(names - self._captures)
            if unknown:
                raise self._error(line, f"{text!r} uses {', '.join(unknown)}, which no command captures "
                                        f"(captured: {', '.join(sorted(self._captures)) or 'none'}); "
                                        f"give it with -D {unknown[0]}=value or add 'capture: {unknown[0]}'")


_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_CAPTURE = re.compile(r"""\bcapture:\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?\s*(?:#.*)?$""", re.MULTILINE)


def _keep_run_time_expressions(environment: jinja2.Environment, text: str, env: dict) -> str:
    """Protect the ``{{ }}`` expressions that use values captured at run time (``capture: host``
    in the file, and not given in ``env``): the load-time pass leaves them whole, filters
    included (``{{ host | upper }}``), for the Deferred that renders them when the command runs.
    Other expressions render now, and an undefined name in them is an error naming it."""
    captured = set(_CAPTURE.findall(text)) - set(env)
    if not captured:
        return text

    def protect(match: re.Match) -> str:
        expression = match.group(0)
        try:
            names = jinja2.meta.find_undeclared_variables(environment.parse(expression))
        except jinja2.TemplateSyntaxError:
            return expression  # rendering reports it, with its line
        if names & captured and not names - captured - set(env):
            return "{% raw %}" + expression + "{% endraw %}"
        return expression

    return _EXPRESSION.sub(protect, text)


def _kind_name(kinds) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "a mapping", list: "a list"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(names.get(kind, kind.__name__) for kind in kinds)


def _source_line(text: str, line: int | None) -> str:
    """Line number ``line`` (from 1) of ``text``, stripped; "" when there is none."""
    lines = text.splitlines()
    return lines[line - 1].strip() if line and 0 < line <= len(lines) else ""


def _jinja_line(exc: Exception) -> int | None:
    """The template line where a Jinja2 runtime error happened, from its traceback."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line




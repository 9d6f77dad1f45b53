"""YAML scenarios with ``services:`` and ``type: Service`` commands, RUN on the testbed's sshd servers.

Those hosts have no systemd, so the services run with the fallback backend (``backend: auto``, the
default, or ``backend: process``): the tests check what really ran on the machine (status files
written by the scenario, the journal printed, ``testbed.remote_processes``), not the command lines.
"""

from __future__ import annotations

import textwrap
import uuid

import pytest
from asynciojobs import Scheduler
from helpers import make_node
from test_yaml_loader import jinja_env

from apssh import Run, ScenarioError, Service, SshJob, YamlLoader
from apssh.service import PROCESS_DIR

SCENARIO = """
nodes:
  - id: n
    hostname: "{{ node1_addr }}"
    port: {{ node1_port }}
    username: "{{ user }}"
    formatter: RawFormatter
services:
  - id: web
    command: "echo greeting=$GREETING port={{ '{{ port }}' }}; exec sleep 4501"
    service_id: "{{ sid }}"
    environ: {GREETING: "hello 'yaml' world"}
  - id: forced
    command: exec sleep 4502
    service_id: "{{ sid }}-forced"
    backend: process
jobs:
  - id: pick
    node: n
    commands:
      - {type: Run, command: echo 8123, capture: port}
  - id: up
    node: n
    required: pick
    commands:
      - {type: Service, service: web}
      - {type: Service, service: forced, action: start}
      - {type: Service, service: web, action: status, output: "{{ tmp }}/web up.txt"}
      - {type: Service, service: forced, action: status, output: "{{ tmp }}/forced up.txt"}
  - id: down
    node: n
    required: up
    commands:
      - {type: Run, command: "sleep 0.2"}
      - {type: Service, service: web, action: journal, since: 1 hour ago}
      - {type: Service, service: web, action: stop}
      - {type: Service, service: forced, action: stop}
      - {type: Service, service: web, action: status, output: "{{ tmp }}/web down.txt"}
"""


@pytest.fixture
def sid(testbed):
    """A fresh service id; its daemons are stopped and its files removed at the end."""
    sid = f"apssh-yaml-{uuid.uuid4().hex[:10]}"
    yield sid
    stops = [Service("true", service_id=name).stop_command() for name in (sid, f"{sid}-forced")]
    remove = Run(f"rm -f ~/{PROCESS_DIR}/{sid}.* ~/{PROCESS_DIR}/{sid}-forced.*")
    assert Scheduler(SshJob(make_node(testbed, "node1"), commands=[*stops, remove]), timeout=30).run() is True


def load(testbed, tmp_path, sid: str, text: str = SCENARIO):
    path = tmp_path / "services.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    loader = YamlLoader(path)
    return loader, loader.load(jinja_env(testbed, tmp_path, sid=sid))


def test_scenario_starts_inspects_and_stops_services(testbed, tmp_path, sid, capsys):
    """A scenario starts two services (auto and process backends), writes their status while they run,
    prints the journal (environment and captured value rendered), stops them, and nothing is left."""
    _, scheduler = load(testbed, tmp_path, sid)

    assert scheduler.run() is True

    assert (tmp_path / "web up.txt").read_text().startswith(f"{sid}: active, process group ")
    assert (tmp_path / "forced up.txt").read_text().startswith(f"{sid}-forced: active, process group ")
    assert (tmp_path / "web down.txt").read_text() == f"{sid}: inactive\n"
    assert "greeting=hello 'yaml' world port=8123\n" in capsys.readouterr().out
    assert testbed.remote_processes("sleep 4501") == []
    assert testbed.remote_processes("sleep 4502") == []


def test_replayed_scenario_restarts_its_service(testbed, tmp_path, sid):
    """A scenario that only starts a service can be run again: stop_if_running leaves one daemon, the new one."""
    text = SCENARIO.split("jobs:")[0] + textwrap.dedent("""
        jobs:
          - id: pick
            node: n
            commands:
              - {type: Run, command: echo 8124, capture: port}
          - id: up
            node: n
            required: pick
            commands:
              - {type: Service, service: web}
    """)
    pids = []
    for _ in range(2):
        _, scheduler = load(testbed, tmp_path, sid, text)
        assert scheduler.run() is True
        pids.append([proc.pid for proc in testbed.remote_processes("sleep 4501")])
    assert len(pids[0]) == 1 and len(pids[1]) == 1 and pids[0] != pids[1]


def test_unknown_backend_is_a_scenario_error(testbed, tmp_path, sid):
    """'backend:' must be auto, systemd or process: anything else is a ScenarioError naming the service."""
    text = SCENARIO.replace("backend: process", "backend: docker")
    with pytest.raises(ScenarioError, match="backend must be one of auto, systemd, process"):
        load(testbed, tmp_path, sid, text)

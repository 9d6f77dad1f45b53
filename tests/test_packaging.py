"""The distribution that ships apssh/ satisfies packages that require apssh (r2lab), and keeps its commands.

Slow: it builds the project into a fresh virtual environment and installs r2lab from PyPI
(``-m packaging`` selects it, ``-m "not packaging"`` leaves it out; ``make test`` runs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import apssh

PROJECT = Path(__file__).resolve().parent.parent
COMMANDS = ("apssh-tui", "apssh", "appush", "appull")


def pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args], capture_output=True, text=True,
                          env=env, timeout=900, cwd=venv)


@pytest.mark.packaging
def test_installing_r2lab_keeps_this_apssh(tmp_path):
    """Fresh venv: install the project, then r2lab (which requires apssh): apssh is still this project,
    pip check is clean, and the four commands are installed (apssh, appush and appull run)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = pip(venv, "install", "-q", str(PROJECT))
    assert installed.returncode == 0, installed.stderr

    with_r2lab = pip(venv, "install", "-q", "r2lab")
    assert with_r2lab.returncode == 0, with_r2lab.stderr

    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import json, apssh, apssh.scenario, r2lab; "
                            "print(json.dumps([apssh.__version__, apssh.__file__]))"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    version, location = json.loads(probe.stdout.splitlines()[-1])  # r2lab prints a warning first
    assert version == apssh.__version__
    assert Path(location).is_relative_to(venv)
    check = pip(venv, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    listed = pip(venv, "list", "--format", "json")
    versions = {entry["name"].lower(): entry["version"] for entry in json.loads(listed.stdout)}
    assert versions["apssh"] == apssh.__version__ and "apssh-tui" not in versions
    for command in COMMANDS:
        assert (venv / "bin" / command).is_file(), command
    # the commands start from apssh_tui.commands: it is installed, and it runs
    for command in ("apssh", "appush", "appull"):
        version = subprocess.run([str(venv / "bin" / command), "--version"], capture_output=True, text=True,
                                 timeout=120, cwd=tmp_path)
        assert version.returncode == 0 and apssh.__version__ in version.stdout + version.stderr, version.stderr


def test_version_is_above_027():
    """The distribution is apssh, versioned above the 0.27 it replaces (so '>= 0.27' requirements hold)."""
    major, minor, *_ = (int(part) for part in apssh.__version__.split("."))
    assert (major, minor) > (0, 27)

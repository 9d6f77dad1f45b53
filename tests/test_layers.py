"""The shape of the code: layers that must not mix.

* the library (apssh/) and the TUI's core (apssh_tui/core/) never import Textual or Rich, at
  import time or lazily inside a function;
* asynciojobs' private fields are touched in apssh_tui/core/jobs_bridge.py only.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import asynciojobs

ROOT = Path(__file__).resolve().parent.parent
SCREEN_FREE = [ROOT / "apssh", ROOT / "apssh_tui" / "core"]
SCREEN_PACKAGES = ("textual", "rich")
BRIDGE = ROOT / "apssh_tui" / "core" / "jobs_bridge.py"


def python_files(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def test_library_and_core_load_neither_textual_nor_rich():
    """Importing every module of apssh and apssh_tui.core loads no Textual and no Rich module."""
    code = ("import importlib, pkgutil, sys\n"
            "import apssh, apssh_tui.core\n"
            "for package in (apssh, apssh_tui.core):\n"
            "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
            "        importlib.import_module(module.name)\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in ('textual', 'rich')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)

    assert result.stdout.strip() == "[]"


def test_library_and_core_have_no_textual_or_rich_import_anywhere():
    """No import statement of Textual or Rich in apssh/ and apssh_tui/core/, even inside a function."""
    offending = []
    for path in python_files(*SCREEN_FREE):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offending += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in names
                          if name.split(".")[0] in SCREEN_PACKAGES]

    assert offending == []


def asynciojobs_private_fields() -> set[str]:
    """``_name`` attributes and methods defined by asynciojobs' own classes (read from its source)."""
    names = set()
    for path in Path(asynciojobs.__file__).parent.glob("*.py"):
        names.update(re.findall(r"self\.(_[a-z][a-z0-9_]*)", path.read_text(encoding="utf-8")))
    return names


def test_asynciojobs_internals_are_touched_in_the_bridge_only():
    """Outside jobs_bridge.py, no code reads or writes an asynciojobs private field (``job._task``...)."""
    private = asynciojobs_private_fields()
    assert {"_task", "_running", "_did_shutdown"} <= private  # the scan sees them
    offending = []
    for path in python_files(ROOT / "apssh", ROOT / "apssh_tui"):
        if path == BRIDGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private and not (
                    isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                offending.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")

    assert offending == []

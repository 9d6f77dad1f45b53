"""What the apssh command loads at start-up (paid once per run, on every run)."""

from __future__ import annotations

import json
import subprocess
import sys

from apssh import _startup


def test_the_apssh_command_loads_no_yaml_nor_graphviz():
    """Importing the command line loads neither YAML scenarios, graphviz, Jinja2 (templates),
    ClusterShell (node sets), asynciojobs (schedulers) nor Textual/Rich: start-up cost and memory
    paid on every run."""
    code = ("import sys, apssh.cli; "
            "print(sorted(m for m in ('yaml', 'graphviz', 'apssh.yaml_loader', 'jinja2', 'ClusterShell', "
            "'textual', 'rich', 'asynciojobs') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_names_still_importable_from_apssh():
    """Scenario, YamlLoader, Service and the topology helpers are importable from apssh."""
    import apssh
    from apssh import Scenario, Service, YamlLoader, topology_dot  # noqa: F401

    assert set(apssh.__all__) <= set(dir(apssh))
    for name in apssh.__all__:
        assert getattr(apssh, name) is not None


def test_deferred_and_node_sets_still_work_when_loaded_on_demand():
    """Jinja2 and ClusterShell, loaded at first use, still render templates and expand node sets."""
    code = ("import sys, apssh.cli\n"
            "from apssh import Deferred, Variables\n"
            "from apssh.targets import expand_words, fold\n"
            "assert 'jinja2' not in sys.modules and 'ClusterShell' not in sys.modules\n"
            "print(Deferred('echo {{ x | quote }}', Variables(x='a b')).render())\n"
            "print(expand_words('fit[01-02]'), fold(['fit01', 'fit02']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["echo 'a b'", "['fit01', 'fit02'] fit[01-02]"]


def test_asyncssh_is_imported_without_a_compiler():
    """Importing apssh starts no compiler nor linker (find_library's gcc and ld for the optional
    libraries that are absent, e.g. liboqs), at most ldconfig for those installed, and leaves
    ctypes.util.find_library as it was."""
    code = ("import ctypes.util, json, subprocess\n"
            "real = ctypes.util.find_library\n"
            "calls = []\n"
            "popen_init = subprocess.Popen.__init__\n"
            "def spy(self, *a, **k):\n"
            "    calls.append(str(a[0] if a else k.get('args')))\n"
            "    popen_init(self, *a, **k)\n"
            "subprocess.Popen.__init__ = spy\n"
            "import apssh.cli\n"
            "print(json.dumps([calls, ctypes.util.find_library is real]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    calls, restored = json.loads(out)
    assert restored
    assert all("ldconfig" in call for call in calls), calls


def test_a_library_is_absent_only_when_no_place_has_it(tmp_path, monkeypatch):
    """A library in the linker cache or in an LD_LIBRARY_PATH directory may be present; one that
    is nowhere is absent."""
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    assert _startup.library_may_be_present("oqs", b"...liboqs.so.5\x00...")
    assert not _startup.library_may_be_present("apssh-no-such-lib", b"libc.so.6")
    (tmp_path / "libapssh-no-such-lib.so.1").write_bytes(b"")
    assert _startup.library_may_be_present("apssh-no-such-lib", b"libc.so.6")

"""Issue 11.5: an empty or blank target is a usage error, never the current directory.

What the user sees: exit status 2, one line naming the option and the value, nothing runs
(even in a directory whose files are named after real hosts, such as an earlier -o directory).
"""

from __future__ import annotations

import pytest

from apssh.apssh import Appull, Appush, Apssh

from .support import hp


@pytest.mark.parametrize("option", ["-t", "-x"])
@pytest.mark.parametrize("value", ["", " ", "\t\n", " , ,"])
def test_blank_target_is_a_usage_error(testbed, tmp_path, monkeypatch, capsys, option, value):
    """-t '' (or blank, or only separators) in a directory of host-named files: exit 2, nothing runs."""
    (tmp_path / hp(testbed, "node1")).write_text("0\n")  # as an earlier -o run leaves it
    mark = tmp_path / "touched"
    monkeypatch.chdir(tmp_path)
    extra = ["-t", hp(testbed, "node2")] if option == "-x" else []
    assert Apssh().main(*extra, option, value, f"touch {mark}") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"apssh: {option} {value!r}: empty target")
    assert "Traceback" not in err
    assert not mark.exists()


@pytest.mark.parametrize("tool, paths", [(Appush, ["a", "@:b"]), (Appull, ["@:a", "b"])])
def test_blank_target_is_a_usage_error_for_copies(tool, paths, tmp_path, monkeypatch, capsys):
    """appush and appull reject -t '' the same way."""
    monkeypatch.chdir(tmp_path)
    assert tool().main("-t", "", *paths) == 2
    assert "-t '': empty target" in capsys.readouterr().err

"""Issue 11.8: copies left behind by runs cut short are removed by the next run on that host.

What the user sees: ~/.apssh-remote/ does not fill up with the copies of scripts whose run was
cut short (a connection lost during ``apssh -s``): those older than a day go away with the
next RunScript/RunString on that host, in the same remote command (no extra round trip);
younger ones, and whatever else lives there (services), stay.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import time
from pathlib import Path

import pytest

from apssh.apssh import Apssh

from .support import hp

DAY = 24 * 3600


@pytest.fixture
def copies(testbed):
    """Make copy directories in root's ~/.apssh-remote with a given age; removes what is left."""
    made: list[Path] = []

    def make(name: str | None, age: float) -> Path:
        path = Path(pwd.getpwnam("root").pw_dir) / ".apssh-remote" / (name or secrets.token_hex(12))
        path.mkdir(parents=True)
        (path / "script.sh").write_text("#!/bin/sh\n")
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def test_stale_copies_removed_by_next_script_run(testbed, copies, capsys):
    """apssh -s: a copy directory two days old is removed; one an hour old and a non-copy
    directory two days old stay; the script's output is untouched by the clean-up."""
    stale = copies(None, 2 * DAY)
    recent = copies(None, 3600)
    other = copies("not-a-copy", 2 * DAY)
    assert Apssh().main("-s", "-t", hp(testbed, "node1"), "#!/bin/sh\necho from-script\n") == 0
    assert capsys.readouterr().out == f"{hp(testbed, 'node1')}:from-script\n"
    assert not stale.exists()
    assert recent.exists()
    assert other.exists()

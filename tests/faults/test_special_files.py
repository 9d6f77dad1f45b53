"""appush of a local fifo (or socket, device) is refused up front: reading a fifo waits for a writer
for ever, which no --timeout could stop cleanly.

What the user sees: exit status 2 at once, one line naming the path, what it is and what appush
copies; nothing is copied to any host.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

import pytest

from .support import finish, hp
from .support import start_tool as start


@pytest.mark.parametrize("inside", [False, True], ids=["given", "inside a directory with -R"])
def test_appush_refuses_a_fifo(testbed, tmp_path, inside):
    """A fifo given as a source, or found in a directory pushed with -R: exit 2, the fifo named."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "fine.txt").write_text("fine\n")
    fifo = (folder if inside else tmp_path) / "pipe"
    os.mkfifo(fifo)
    remote = Path(pwd.getpwnam(testbed.user).pw_dir) / f"appush-special-{tmp_path.name}"
    remote.mkdir()
    try:
        sources = ["-R", str(folder)] if inside else [str(folder / "fine.txt"), str(fifo)]
        process = start(testbed, "appush", "-t", hp(testbed, "node1"), *sources, f"@:{remote.name}/",
                        cwd=tmp_path)
        out, err = finish(process)
        copied = sorted(path.name for path in remote.rglob("*"))
    finally:
        shutil.rmtree(remote)
    assert process.returncode == 2, err
    assert err.strip() == (f"appush: {fifo}: is a named pipe (fifo); appush copies regular files, and "
                           f"directories with -R (copy the data to a regular file first)")
    assert copied == []

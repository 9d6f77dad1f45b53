"""Issue 11.4: ``-o DIR`` keeps every byte as sent, one file per target, replaced on each run.

What the user sees: DIR/<target> (named as the -m marks name it) holds exactly the bytes the
remote command printed (binary, long lines, no trailing newline), DIR/<target>.err its stderr;
a second run replaces the files of the first.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apssh.apssh import Appull, Apssh

from .support import hp


def test_binary_output_kept_byte_for_byte(testbed, tmp_path, capsys):
    """1,000,000 random bytes (every byte value, invalid UTF-8) land in DIR/<target> unchanged."""
    payload = random.Random(11).randbytes(1_000_000)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    outdir = tmp_path / "out"
    target = hp(testbed, "node1")
    assert Apssh().main("-o", str(outdir), "-t", target, f"cat {source}; cat {source} >&2") == 0
    assert (outdir / target).read_bytes() == payload
    assert (outdir / f"{target}.err").read_bytes() == payload


def test_long_line_is_not_cut(testbed, tmp_path, capsys):
    """A 3 MiB line, then a last line without newline: no newline inserted, none added."""
    payload = b"x" * (3 << 20) + b"\nlast line without newline"
    source = tmp_path / "long.txt"
    source.write_bytes(payload)
    outdir = tmp_path / "out"
    target = hp(testbed, "node1")
    assert Apssh().main("-o", str(outdir), "-t", target, f"cat {source}") == 0
    assert (outdir / target).read_bytes() == payload


def test_two_users_on_one_address_get_their_own_files(testbed, tmp_path, capsys):
    """Two logins on one address: two files, named as the marks name them, each with its own output."""
    outdir = tmp_path / "out"
    first, second = f"root@{hp(testbed, 'node1')}", f"{testbed.second_user}@{hp(testbed, 'node1')}"
    assert Apssh().main("-m", "-o", str(outdir), "-t", first, "-t", second, "whoami") == 0
    assert (outdir / first).read_text() == "root\n"
    assert (outdir / second).read_text() == f"{testbed.second_user}\n"
    assert sorted(os.listdir(outdir / "0ok")) == sorted([first, second])


def test_second_run_replaces_the_files_of_the_first(testbed, tmp_path, capsys):
    """-o on the directory of an earlier run: files replaced, never appended; a target silent this
    time has no stale file and no stale mark."""
    outdir = tmp_path / "out"
    target = hp(testbed, "node1")
    assert Apssh().main("-m", "-o", str(outdir), "-t", target, "echo first; echo first-err >&2; exit 3") == 1
    assert Apssh().main("-m", "-o", str(outdir), "-t", target, "echo second") == 0
    assert (outdir / target).read_text() == "second\n"
    assert not (outdir / f"{target}.err").exists()
    assert not (outdir / "1failed" / target).exists()
    assert (outdir / "0ok" / target).read_text() == "0\n"


def test_appull_host_template_names_targets_like_the_marks(testbed, tmp_path, capsys):
    """appull @:file 'local/{host}.txt' from two logins on one address: two distinct files."""
    remote = "/etc/passwd"  # readable by both logins
    local = tmp_path / "local"
    first, second = f"root@{hp(testbed, 'node1')}", f"{testbed.second_user}@{hp(testbed, 'node1')}"
    assert Appull().main("-t", first, "-t", second, f"@:{remote}", f"{local}/{{host}}.txt") == 0
    assert sorted(os.listdir(local)) == sorted([f"{first}.txt", f"{second}.txt"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=4096) | st.lists(st.sampled_from([b"\n", b"\r", b"\xff", b"\xc3", b"\xa9",
                                                                      b"a", b"\x00"]), max_size=200).map(b"".join))
def test_any_bytes_come_back_identical_through_out_dir(testbed, tmp_path, payload):
    """Property: whatever bytes the remote command prints, DIR/<target> holds exactly them."""
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    outdir = tmp_path / "out"
    target = hp(testbed, "node2")
    assert Apssh().main("-o", str(outdir), "-t", target, f"cat {source}") == 0
    written = outdir / target
    assert (written.read_bytes() if written.exists() else b"") == payload

"""Formatters: how remote output and connection events are rendered, on real remote output."""

from __future__ import annotations

import io
import re
import sys
import time

import pytest
from asynciojobs import Scheduler
from helpers import known_node, run_jobs
from hypothesis import given
from hypothesis import strategies as st

from apssh import (
    CaptureFormatter,
    ColonFormatter,
    Formatter,
    HostFormatter,
    RawFormatter,
    SshJob,
    SubdirFormatter,
    TerminalFormatter,
    TimeColonFormatter,
    TimeHostFormatter,
)
from apssh._lines import LineSplitter, block_lines
from apssh.formatters import STDERR, STDOUT

OUT_AND_ERR = "echo out-1; echo err-1 >&2; echo out-2"


def run_on(testbed, formatter, command: str = OUT_AND_ERR, name: str = "node1"):
    """Run ``command`` on testbed host ``name`` with ``formatter``; returns the node."""
    node = known_node(testbed, name, formatter=formatter)
    assert run_jobs(SshJob(node, commands=command))
    return node


# ---------------------------------------------------------------- terminal formatters
def test_raw_formatter(testbed, capsys):
    """RawFormatter prints remote lines as they are, stdout on stdout and stderr on stderr."""
    run_on(testbed, RawFormatter())
    out, err = capsys.readouterr()
    assert out == "out-1\nout-2\n"
    assert err == "err-1\n"


def test_colon_formatter(testbed, capsys):
    """ColonFormatter prefixes each line with the hostname and a colon."""
    node = run_on(testbed, ColonFormatter())
    out, err = capsys.readouterr()
    assert out == f"{node.hostname}:out-1\n{node.hostname}:out-2\n"
    assert err == f"{node.hostname}:err-1\n"


def test_time_colon_formatter(testbed, capsys):
    """TimeColonFormatter prefixes each line with HH-MM-SS and the hostname."""
    node = run_on(testbed, TimeColonFormatter())
    out, err = capsys.readouterr()
    host = re.escape(node.hostname)
    assert re.fullmatch(rf"\d\d-\d\d-\d\d:{host}:out-1\n\d\d-\d\d-\d\d:{host}:out-2\n", out), out
    assert re.fullmatch(rf"\d\d-\d\d-\d\d:{host}:err-1\n", err), err


def test_terminal_formatter_custom_format(testbed, capsys):
    """TerminalFormatter expands @host@ @user@ @line@ and {host} {fqdn} {user} {line} {nl} on real output."""
    node = run_on(testbed, TerminalFormatter("[@host@|@user@] @line@"), command="echo hello")
    out, _ = capsys.readouterr()
    assert out == f"[{node.hostname}|{testbed.user}] hello\n"
    run_on(testbed, TerminalFormatter("{fqdn}/{host}/{user}:{line}{nl}"), command="echo again")
    out, _ = capsys.readouterr()
    assert out == f"{node.hostname}/{node.hostname}/{testbed.user}:again\n"


def test_terminal_formatter_time_placeholders(testbed, capsys):
    """@time@ {time} and strftime codes (%H) are replaced by the local reception time."""
    before = time.strftime("%H")
    run_on(testbed, TerminalFormatter("@time@ {time} %H %%literal @line@"), command="echo timed")
    after = time.strftime("%H")
    out, _ = capsys.readouterr()
    match = re.fullmatch(r"(\d\d)-\d\d-\d\d (\d\d)-\d\d-\d\d (\d\d) %literal timed\n", out)
    assert match, out
    assert {match.group(1), match.group(2), match.group(3)} <= {before, after}


def test_verbose_formatter_reports_connection_events(testbed, capsys):
    """A verbose formatter reports connection events on stderr; a quiet one does not."""
    node = run_on(testbed, ColonFormatter(verbose=True), command="echo x")
    _, err = capsys.readouterr()
    assert f"{node.hostname}: connected" in err
    assert f"{node.hostname}: authenticated as {testbed.user}" in err
    assert f"{node.hostname}: connection closed" in err
    run_on(testbed, ColonFormatter(), command="echo x")
    _, err = capsys.readouterr()
    assert err == ""


def test_sshnode_verbose_sets_formatter_verbose(testbed, capsys):
    """SshNode(verbose=True) turns on its formatter's connection events."""
    node = known_node(testbed, "node1", formatter=RawFormatter(), verbose=True)
    assert run_jobs(SshJob(node, commands="true"))
    _, err = capsys.readouterr()
    assert "connected" in err


# ---------------------------------------------------------------- format_lines
def test_format_lines_at_placeholders():
    """format_lines expands @line@ @host@ @user@ and ends every line with exactly one newline."""
    formatter = Formatter("@host@ @user@ @line@")
    assert formatter.format_lines(["a\n", "b"], "fit01.example.org", "bob") \
        == "fit01.example.org bob a\nfit01.example.org bob b\n"


def test_format_lines_brace_placeholders():
    """{linenl} {line} {nl} {host} {fqdn} {user} are the apssh 0.27 placeholders."""
    formatter = Formatter("{host}|{fqdn}|{user}|{line}|{nl}>{linenl}")
    assert formatter.format_lines(["x\n"], "fit01.example.org", "bob") \
        == "fit01|fit01.example.org|bob|x|\n>x\n"
    assert Formatter("{host}:{line}").format_lines(["y\n"], "192.168.3.4") == "192.168.3.4:y\n"


def test_format_lines_strftime_codes():
    """%H-style codes and @time@ are expanded with the local time."""
    before = time.strftime("%Y")
    text = Formatter("%Y @time@ @line@").format_lines(["z\n"], "h")
    assert re.fullmatch(r"(\d{4}) \d\d-\d\d-\d\d z\n", text)
    assert text[:4] in {before, time.strftime("%Y")}


def test_format_lines_keeps_braces_and_at_signs_in_lines():
    """Placeholders inside the remote line itself are not expanded."""
    assert Formatter("@host@:@line@").format_lines(["@host@ {host} %H\n"], "h") == "h:@host@ {host} %H\n"


# ---------------------------------------------------------------- format_lines on any input
_PIECES = st.sampled_from(["@line@", "{line}", "{linenl}", "@host@", "{host}", "@user@", "{nl}", ":", " ", "x",
                           "\n", "{", "@"])
_LINES = st.lists(st.lists(st.sampled_from(["a", "b", "\n", "\r", "{line}", "@host@", "é"]), max_size=6).map("".join),
                  max_size=6)


def _rendered(custom_format: str, line: str, host: str, user: str) -> str:
    """The documented meaning of a format, for one line (placeholders replaced in one pass)."""
    with_nl = line if line.endswith("\n") else line + "\n"
    values = {"@line@": with_nl, "{linenl}": with_nl, "{line}": with_nl[:-1], "@host@": host, "{fqdn}": host,
              "{host}": host.split(".")[0], "@user@": user, "{user}": user, "{nl}": "\n"}
    text = re.sub("|".join(map(re.escape, values)), lambda match: values[match.group()], custom_format)
    return text if text.endswith("\n") else text + "\n"


@given(lines=_LINES, pieces=st.lists(_PIECES, max_size=6))
def test_format_lines_renders_each_line_as_documented(lines, pieces):
    """A batch renders as each of its lines rendered alone by the placeholders' definition."""
    custom_format = "".join(pieces)
    expected = "".join(_rendered(custom_format, line, "fit01.example.org", "bob") for line in lines)
    assert Formatter(custom_format).format_lines(lines, "fit01.example.org", "bob") == expected


@given(lines=_LINES, prefix=st.text(alphabet="ab:{}% ", max_size=4))
def test_format_lines_prefix_then_line(lines, prefix):
    """With the line placeholder last, each line is the prefix then the line with its newline."""
    formatter = Formatter(prefix.replace("%", "") + "@host@:@line@")
    expected = "".join(prefix.replace("%", "") + "h:" + (line if line.endswith("\n") else line + "\n")
                       for line in lines)
    assert formatter.format_lines(lines, "h") == expected


def _terminal_output(write) -> bytes:
    """What ``write()`` sends to sys.stdout, as bytes (a UTF-8 stream with a binary buffer)."""
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
    saved, sys.stdout = sys.stdout, stream
    try:
        write()
    finally:
        sys.stdout = saved
    stream.flush()
    return buffer.getvalue()


@given(data=st.lists(st.binary(max_size=40), max_size=8), fmt=st.sampled_from(
    ["@line@", "@host@:@line@", "[{host}] {linenl}", "%H:@host@:@line@", "@user@@@host@ {linenl}"]))
def test_block_prefixing_writes_the_bytes_of_the_line_by_line_formatter(data, fmt):
    """TerminalFormatter.write_block (one bytes.replace and one write per chunk) writes exactly what
    lines() writes for the same lines: same prefixes, same U+FFFD, a newline added to a last line."""
    splitter = LineSplitter()
    blocks = [block for block in [*map(splitter.feed_block, data), splitter.flush_block()] if block]
    lines = [line for block in blocks for line in block_lines(block)]
    formatter = TerminalFormatter(fmt)
    # within one second, so that a time placeholder renders the same in both
    for _ in range(3):
        second = int(time.time())
        handled: list[bool] = []
        by_block = _terminal_output(lambda out=handled: out.extend(
            formatter.write_block(block, STDOUT, "h\u00e9.x", "bob") for block in blocks))
        by_line = _terminal_output(lambda: lines and formatter.lines(lines, STDOUT, "h\u00e9.x", "bob"))
        if int(time.time()) == second:
            break
    assert all(handled)
    assert by_block == by_line


def test_block_path_declined_where_lines_are_needed():
    """A format with text after the line, a subclass overriding lines(), and a stream without a
    binary buffer get lines, not blocks."""
    class Shouting(TerminalFormatter):
        def lines(self, lines, datatype, hostname, username=None):
            super().lines([line.upper() for line in lines], datatype, hostname, username)

    assert not TerminalFormatter("{line} <- @host@").write_block(b"a\n", STDOUT, "h")
    assert not Shouting("@line@").write_block(b"a\n", STDOUT, "h")
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        assert not TerminalFormatter("@line@").write_block(b"a\n", STDOUT, "h")
    finally:
        sys.stdout = saved


def test_block_path_on_real_output_matches_the_lines(testbed, capsys):
    """Through a real sshd: invalid UTF-8, multi-byte characters, long output and a last line
    without newline come out prefixed as the line-by-line rendering does."""
    command = r"printf 'a\377b\n\303\251t\303\251\n'; seq 30000; printf 'tail'"
    run_on(testbed, ColonFormatter(), command)
    out = capsys.readouterr().out
    expected = ["a\ufffdb", "\u00e9t\u00e9", *map(str, range(1, 30001)), "tail"]
    host = known_node(testbed, "node1").hostname
    assert out.split("\n") == [f"{host}:{line}" for line in expected] + [""]


# ---------------------------------------------------------------- aliases
def test_apssh_027_aliases():
    """HostFormatter is ColonFormatter and TimeHostFormatter is TimeColonFormatter."""
    assert HostFormatter is ColonFormatter
    assert TimeHostFormatter is TimeColonFormatter
    assert HostFormatter().custom_format == "@host@:@line@"
    assert TimeHostFormatter().custom_format == "%H-%M-%S:@host@:@line@"


# ---------------------------------------------------------------- SubdirFormatter
def test_subdir_formatter_writes_one_file_per_host(testbed, tmp_path, monkeypatch, capsys):
    """SubdirFormatter(run_name) creates run_name/ and writes run_name/<hostname>, stdout and stderr merged."""
    monkeypatch.chdir(tmp_path)
    formatter = SubdirFormatter("probing", verbose=False)
    nodes = [known_node(testbed, name, formatter=formatter) for name in ("node1", "node2")]
    assert Scheduler(*(SshJob(node, commands=OUT_AND_ERR) for node in nodes), timeout=30).run()
    assert sorted(path.name for path in (tmp_path / "probing").iterdir()) == sorted(n.hostname for n in nodes)
    for node in nodes:
        lines = (tmp_path / "probing" / node.hostname).read_text().splitlines()
        # stdout and stderr are separate flows: their relative order is not fixed
        assert sorted(lines) == ["err-1", "out-1", "out-2"]
        assert lines.index("out-1") < lines.index("out-2")
    assert capsys.readouterr() == ("", "")


def test_subdir_formatter_verbose_records_events(testbed, tmp_path):
    """SubdirFormatter is verbose by default: connection events go in the host's file too."""
    formatter = SubdirFormatter(str(tmp_path / "run"))
    node = run_on(testbed, formatter, command="echo payload")
    lines = (tmp_path / "run" / node.hostname).read_text().splitlines()
    assert "payload" in lines
    assert any("connected" in line for line in lines)


# ---------------------------------------------------------------- CaptureFormatter
def test_capture_formatter_as_in_the_spec(testbed, tmp_path):
    """CaptureFormatter: start_capture() then a run, get_capture() gives the remote stdout."""
    notes = tmp_path / "release-notes"
    notes.write_text("line one\nline two\n")
    s = Scheduler()
    f = CaptureFormatter()
    n = known_node(testbed, "node1", formatter=f)
    s.add(SshJob(node=n, command=f"cat {notes}"))
    f.start_capture()
    s.run()
    assert f.get_capture() == "line one\nline two\n"


def test_capture_formatter_start_capture_forgets(testbed, capsys):
    """start_capture() empties the capture; stderr is not captured but printed."""
    formatter = CaptureFormatter()
    node = known_node(testbed, "node1", formatter=formatter)
    assert run_jobs(SshJob(node, commands="echo first"))
    assert formatter.get_capture() == "first\n"
    formatter.start_capture()
    assert formatter.get_capture() == ""
    assert run_jobs(SshJob(node, commands="echo second; echo problem >&2"))
    assert formatter.get_capture() == "second\n"
    assert "problem" in capsys.readouterr().err


# ---------------------------------------------------------------- custom subclass
def test_formatter_subclass_line_hook(testbed):
    """A Formatter subclass overriding only line() gets every line with its datatype."""
    seen = []

    class LineFormatter(Formatter):
        def line(self, line, datatype, hostname):
            seen.append((datatype, line, hostname))

    node = run_on(testbed, LineFormatter())
    # order is kept within each stream (stdout and stderr are separate flows)
    assert [(line, host) for datatype, line, host in seen if datatype == STDOUT] \
        == [("out-1\n", node.hostname), ("out-2\n", node.hostname)]
    assert [(line, host) for datatype, line, host in seen if datatype == STDERR] == [("err-1\n", node.hostname)]
    assert len(seen) == 3


@pytest.mark.parametrize("cls", [RawFormatter, ColonFormatter, TimeColonFormatter])
def test_predefined_formatters_are_terminal_formatters(cls):
    """The predefined terminal formatters are TerminalFormatter subclasses and quiet by default."""
    formatter = cls()
    assert isinstance(formatter, TerminalFormatter)
    assert formatter.verbose is False

"""Property: the line splitter loses nothing, however the bytes are cut into chunks.

What the user sees on screen: every received byte shows up, decoded (undecodable bytes as
U+FFFD, as one decode of the whole stream would give), in whole lines; the -o files hold
the bytes themselves (tests/faults/test_output_files.py).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apssh.sshproxy import LineSplitter

BYTES = st.binary(max_size=2000) | st.lists(
    st.sampled_from([b"\n", b"\r\n", b"\xff", b"\xe2\x82", b"\xac", b"a", b"\xc3\xa9", b""]),
    max_size=300).map(b"".join)


@given(data=BYTES, cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_any_chunking_gives_the_whole_stream_in_whole_lines(data, cuts):
    """Fed in any chunks, the lines joined are the whole stream decoded at once; each line but
    the last ends with its newline and holds no other newline."""
    splitter = LineSplitter()
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    lines = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        lines += splitter.feed(data[start:end])
    lines += splitter.flush()
    assert "".join(lines) == data.decode("utf-8", "replace")
    assert all(line.endswith("\n") and "\n" not in line[:-1] for line in lines[:-1])
    assert all(line for line in lines)

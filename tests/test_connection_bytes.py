"""Raw bytes to formatters that ask for them (``receives_bytes``), besides the usual lines."""

from __future__ import annotations

from helpers import RecordingFormatter, make_node

from apssh.formatters import STDERR, STDOUT


class BytesRecorder(RecordingFormatter):
    receives_bytes = True

    def __init__(self):
        super().__init__()
        self.chunks: dict = {STDOUT: b"", STDERR: b""}

    def bytes_received(self, data, datatype, hostname, username=None):
        self.chunks[datatype] += data


def test_formatter_receiving_bytes_gets_them_as_sent_and_lines_still(testbed, arun):
    """Bytes that are not UTF-8 reach bytes_received unchanged, per stream; lines() still gets lines."""
    formatter = BytesRecorder()
    node = make_node(testbed, "node3", formatter=formatter, known_hosts=testbed.all_known_hosts)

    async def main():
        status = await node.run(r"printf 'a\377b\nno newline'; printf 'err\n' >&2")
        await node.close()
        return status

    assert arun(main()) == 0
    assert formatter.chunks == {STDOUT: b"a\xffb\nno newline", STDERR: b"err\n"}
    assert formatter.stdout() == ["a\ufffdb\n", "no newline"]
    assert formatter.stderr() == ["err\n"]

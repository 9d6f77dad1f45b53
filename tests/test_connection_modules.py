"""Unit tests of the modules behind SshProxy: _lines, _hostkeys, _sshconfig, _options, _hops, _runs.

No server here: each module on its own (the real-sshd tests are in test_connection_*.py).
"""

from __future__ import annotations

import asyncio

import asyncssh
import pytest
from asynciojobs import Scheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from apssh import _hops, _runs, _sshconfig
from apssh._hostkeys import KnownHostsFile, known_hosts_pattern, unlisted_key_verdict
from apssh._lines import MAX_PENDING_CHARS, LineSplitter
from apssh._options import key_identity
from apssh.sshproxy import SshProxy


# ---------------------------------------------------------------- _lines
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_line_splitter_gives_back_the_text_cut_anywhere(chunks):
    """Whatever the cuts, the lines joined are the UTF-8 decoding (with replacement) of the bytes."""
    splitter = LineSplitter()
    lines = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.flush()
    assert "".join(lines) == b"".join(chunks).decode("utf-8", "replace")
    assert all(line.endswith("\n") for line in lines[:-1])


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_line_splitter_blocks_are_the_stream_as_valid_utf8_cut_after_newlines(chunks):
    """Whatever the cuts, the blocks joined are the UTF-8 decoding (with replacement) of the bytes,
    encoded again; every block but the flushed rest ends with a newline and decodes strictly."""
    splitter = LineSplitter()
    blocks = [splitter.feed_block(chunk) for chunk in chunks]
    rest = splitter.flush_block()
    assert b"".join([*blocks, rest]) == b"".join(chunks).decode("utf-8", "replace").encode()
    assert all(block.endswith(b"\n") for block in blocks if block)
    assert b"\n" not in rest
    assert all(block.decode("utf-8") is not None for block in [*blocks, rest])


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet="a\u00e9\u20ac\U0001f600", min_size=1, max_size=8), st.integers(3, 9))
def test_line_splitter_cuts_an_overlong_line_between_characters(unit, cut):
    """A line longer than MAX_PENDING_CHARS bytes comes in pieces that never split a character."""
    unit = unit.encode()
    data = unit * (2 * MAX_PENDING_CHARS // len(unit) + 1)
    splitter = LineSplitter()
    step = max(1, len(data) // cut)
    pieces = [splitter.feed(data[start:start + step]) for start in range(0, len(data), step)]
    lines = [line for piece in pieces for line in piece] + splitter.flush()
    assert len(lines) > 1
    assert "".join(lines) == data.decode()
    assert "\ufffd" not in "".join(lines)


def test_line_splitter_bounds_a_line_without_newline():
    """A line longer than MAX_PENDING_CHARS is handed over in pieces, not kept whole in memory."""
    splitter = LineSplitter()
    pieces = []
    for _ in range(3):
        pieces += splitter.feed(b"x" * (MAX_PENDING_CHARS // 2 + 1))
    assert pieces and all(len(piece) <= MAX_PENDING_CHARS + MAX_PENDING_CHARS // 2 + 1 for piece in pieces)


# ---------------------------------------------------------------- _hostkeys
def a_key():
    return asyncssh.generate_private_key("ssh-ed25519")


def test_known_hosts_pattern_brackets_ports_other_than_22():
    assert (known_hosts_pattern("h", 22), known_hosts_pattern("h", None), known_hosts_pattern("h", 2222)) == \
        ("h", "h", "[h]:2222")


def test_key_for_port_22_says_nothing_about_another_port(tmp_path):
    """An entry for ``host`` is not used for ``[host]:2222`` (asyncssh's own lookup falls back)."""
    key = a_key()
    path = tmp_path / "known_hosts"
    public = key.export_public_key("openssh").decode().split()
    path.write_text(f"127.0.0.1 {public[0]} {public[1]}\n")
    store = KnownHostsFile(path)
    assert [k.public_data for k in store.recorded_keys("127.0.0.1", 22)] == [key.public_data]
    assert store.recorded_keys("127.0.0.1", 2222) == []


def test_accept_new_records_per_port_and_keeps_memory_in_step(tmp_path):
    """accept-new appends ``[host]:port key``; the copy in memory knows it without re-reading the file."""
    path = tmp_path / "sub" / "known_hosts"
    store = KnownHostsFile(path)
    first, second = a_key(), a_key()
    assert unlisted_key_verdict(store, "accept-new", "10.0.0.1", 22, first)[0] is True
    assert unlisted_key_verdict(store, "accept-new", "10.0.0.1", 2222, second)[0] is True
    loads = store.loads
    assert [k.public_data for k in store.recorded_keys("10.0.0.1", 2222)] == [second.public_data]
    assert [k.public_data for k in store.recorded_keys("10.0.0.1", 22)] == [first.public_data]
    assert store.loads == loads
    assert path.read_text().splitlines()[1].startswith("[10.0.0.1]:2222 ssh-ed25519 ")


def test_changed_key_is_refused_with_the_remedy(tmp_path):
    store = KnownHostsFile(tmp_path / "known_hosts")
    unlisted_key_verdict(store, "accept-new", "h", 2200, a_key())
    accepted, trouble = unlisted_key_verdict(store, "accept-new", "h", 2200, a_key())
    assert accepted is False
    assert "CHANGED" in trouble and "ssh-keygen -R '[h]:2200'" in trouble


def test_strict_policy_refuses_an_unknown_host_and_says_how_to_add_it(tmp_path):
    accepted, trouble = unlisted_key_verdict(KnownHostsFile(tmp_path / "kh"), "strict", "h", 22, a_key())
    assert accepted is False and "ssh-keyscan -p 22 h" in trouble


def test_known_hosts_changed_by_another_program_is_read_again(tmp_path):
    path = tmp_path / "known_hosts"
    store = KnownHostsFile(path)
    key = a_key()
    public = key.export_public_key("openssh").decode().split()
    path.write_text(f"[h]:23 {public[0]} {public[1]}\n")
    assert [k.public_data for k in store.recorded_keys("h", 23)] == [key.public_data]


# ---------------------------------------------------------------- _sshconfig
@pytest.mark.parametrize(("text", "expected"), [
    ("gw", [(None, "gw", 22)]),
    ("u@gw:2200", [("u", "gw", 2200)]),
    ("a@one,two:23", [("a", "one", 22), (None, "two", 23)]),
    ("[::1]:2222", [(None, "::1", 2222)]),
])
def test_parse_jump(text, expected):
    assert _sshconfig.parse_jump(text) == expected


def test_parse_jump_rejects_a_port_that_is_not_a_number():
    with pytest.raises(ValueError, match="'x2'"):
        _sshconfig.parse_jump("gw:x2")


def test_host_config_is_parsed_once_per_host(tmp_path):
    """Many lookups of one host parse the config files once; a changed file is parsed again."""
    config = tmp_path / "config"
    config.write_text("Host alias\n    HostName 127.0.0.9\n    User someone\n")
    before = _sshconfig.parses
    for _ in range(5):
        found = _sshconfig.host_config([config], "me", "alias", None, 22)
    assert found.get("User") == "someone"
    assert _sshconfig.parses - before == 1
    config.write_text("Host alias\n    HostName 127.0.0.9\n    User other\n    Port 2\n")
    assert _sshconfig.host_config([config], "me", "alias", None, 22).get("User") == "other"


# ---------------------------------------------------------------- _options / identity
def test_key_identity_is_stable_for_files_and_keys(tmp_path):
    key = a_key()
    assert key_identity(key) == key_identity(asyncssh.import_private_key(key.export_private_key()))
    assert key_identity(tmp_path / "k") == str(tmp_path / "k")


def test_hop_identity_is_the_whole_chain():
    """The same private address behind two different gateways is two hops; same gateway, one."""
    site_a, site_b = SshProxy("gw-a", ssh_config=None), SshProxy("gw-b", ssh_config=None)
    behind_a = SshProxy("10.0.0.5", username="u", gateway=site_a, ssh_config=None)
    behind_b = SshProxy("10.0.0.5", username="u", gateway=site_b, ssh_config=None)
    again_a = SshProxy("10.0.0.5", username="u", gateway=SshProxy("gw-a", ssh_config=None), ssh_config=None)
    assert behind_a.hop_key() != behind_b.hop_key()
    assert behind_a.hop_key() == again_a.hop_key()
    assert behind_a.hop_keys()[1] == site_a.hop_key()


def test_options_that_differ_make_different_connections():
    plain = SshProxy("h", username="u", ssh_config=None)
    assert plain.hop_key() != SshProxy("h", username="u", ssh_config=None, timeout=5).hop_key()
    assert plain.hop_key() != SshProxy("h", username="u", ssh_config=None, keys=["/k"]).hop_key()
    assert plain.hop_key() != SshProxy("h", username="u", ssh_config=None, max_sessions=3).hop_key()


def test_an_option_changed_after_use_changes_the_connection_identity():
    """hop_key is remembered between calls, but not past a change of an option of the proxy or
    of its gateway."""
    gateway = SshProxy("gw", username="u", ssh_config=None)
    node = SshProxy("h", username="u", ssh_config=None, gateway=gateway)
    first = node.hop_key()
    assert node.hop_key() == first
    node.timeout = 5
    assert node.hop_key() != first
    second = node.hop_key()
    gateway.keys = ["/k"]
    assert node.hop_key() != second
    node.keys = [asyncssh.generate_private_key("ssh-ed25519")]
    third = node.hop_key()
    node.keys = [asyncssh.generate_private_key("ssh-ed25519")]
    assert node.hop_key() != third


@pytest.mark.parametrize(("kwds", "match"), [
    ({"max_sessions": 0}, "max_sessions"), ({"abort_marker": "yes"}, "abort_marker"),
])
def test_bad_settings_are_refused_with_their_name(kwds, match):
    with pytest.raises(ValueError, match=match):
        SshProxy("h", ssh_config=None, **kwds)


# ---------------------------------------------------------------- _hops
def test_concurrent_connects_share_one_attempt_and_its_failure():
    """Waiters share the attempt; a gateway's failure is given again to hops behind it, without retry."""
    proxy = SshProxy("h", ssh_config=None, timeout=30)
    attempts = []

    async def opener(hop):
        attempts.append(hop)
        await asyncio.sleep(0.01)
        raise ConnectionRefusedError("refused")

    async def main():
        hop = _hops.hop_for(proxy)
        behind = _hops.Hop(("x",), proxy, 10)
        results = await asyncio.gather(*(hop.connect(opener) for _ in range(5)), return_exceptions=True)
        again = await asyncio.gather(hop.connect(opener, behind=behind), return_exceptions=True)
        return results, again

    results, again = asyncio.run(main())
    assert len(attempts) == 1
    assert all(isinstance(r, ConnectionRefusedError) for r in results + again)


def test_sessions_leave_two_slots_for_sftp_and_kill():
    async def main():
        return _hops.Hop(("k",), SshProxy("h", ssh_config=None), 10).sessions._value

    assert asyncio.run(main()) == 10 - _hops.RESERVED_SESSIONS


# ---------------------------------------------------------------- _runs
def test_outermost_run_is_found_from_a_nested_job():
    """From inside a job of a nested scheduler, its outermost running scheduler is found."""
    from asynciojobs import Job

    found = {}

    async def probe():
        found["run"] = _runs.outermost_run(job)

    top = Scheduler()
    inner = Scheduler(scheduler=top)
    job = Job(probe(), scheduler=inner)
    assert top.run() is True
    assert found["run"] == (top, False)

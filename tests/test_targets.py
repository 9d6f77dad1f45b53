"""apssh.targets: parsing -t/-x arguments (hosts, logins, gateways, node sets, files, directories)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from apssh.apssh import Apssh
from apssh.targets import (
    Target,
    TargetError,
    analyze_target,
    expand_words,
    fold,
    parse_login,
    parse_target,
    resolve_targets,
    split_target_words,
)


@pytest.fixture
def apssh_dir() -> Path:
    """``$HOME/.apssh`` created for the test (it must not exist before) and removed afterwards."""
    directory = Path("~/.apssh").expanduser()
    assert not directory.exists(), f"{directory} exists already; the test would clobber it"
    directory.mkdir()
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def names(targets) -> list[str]:
    """The targets as the strings -L prints."""
    return [str(target) for target in targets]


# ------------------------------------------------------------- one target
def test_parse_host_alone():
    """A bare host name gives a Target without user, port nor gateway."""
    assert parse_target("fit01") == Target("fit01")


def test_parse_user_at_host():
    """user@host sets the username."""
    assert parse_target("alice@fit01") == Target("fit01", username="alice")


def test_parse_host_colon_port():
    """host:port sets the port as an int."""
    assert parse_target("fit01:2222") == Target("fit01", port=2222)


def test_parse_user_host_port():
    """user@host:port sets both."""
    assert parse_target("alice@fit01:2222") == Target("fit01", username="alice", port=2222)


def test_parse_ipv6_with_port():
    """[v6addr]:port is an IPv6 address and a port, and prints back the same way."""
    target = parse_target("bob@[::1]:2200")
    assert target == Target("::1", username="bob", port=2200)
    assert str(target) == "bob@[::1]:2200"


def test_parse_gateway_arrow():
    """gw->host gives the host with the gateway as another Target."""
    assert parse_target("root@gw:2022->fit01") == Target("fit01", gateway=Target("gw", "root", 2022))


def test_parse_gateway_unicode_arrow():
    """gw→host means the same as gw->host."""
    assert parse_target("gw→fit01") == parse_target("gw->fit01")


def test_parse_gateway_chain():
    """gw1->gw2->host chains gateways, the first one nearest to us."""
    target = parse_target("gw1->gw2->fit01")
    assert target.gateway == Target("gw2", gateway=Target("gw1"))
    assert str(target) == "gw1->gw2->fit01"


def test_parse_none_arrow_is_direct():
    """None->host has no gateway and is marked direct."""
    target = parse_target("None->fit01")
    assert target == Target("fit01", direct=True)
    assert str(target) == "None->fit01"


@pytest.mark.parametrize("text, named, problem", [
    ("gw->", "gw->", "empty name"),
    ("->fit01", "->fit01", "empty name"),
    ("fit01:notaport", "fit01:notaport", "'notaport' is not a number"),
    ("fit01:70000", "fit01:70000", "between 1 and 65535"),
    ("@fit01", "@fit01", "expected [user@]host[:port]"),
    ("None->a->b", "None->a->b", "exactly one host"),
])
def test_parse_bad_target_names_it(text, named, problem):
    """A malformed target raises TargetError whose message names the target and the problem."""
    with pytest.raises(TargetError) as info:
        parse_target(text)
    assert named in str(info.value)
    assert problem in str(info.value)


def test_parse_login_strips_and_keeps_port():
    """parse_login (used for -g) strips blanks and keeps user and port."""
    assert parse_login(" root@gw1:2201 ") == Target("gw1", "root", 2201)


# ------------------------------------------------------------ lists, node sets
def test_split_on_spaces_tabs_newlines_commas():
    """A target string is split on spaces, tabs, newlines and commas."""
    assert split_target_words("a b\tc\nd,e ,, f\n") == ["a", "b", "c", "d", "e", "f"]


def test_split_keeps_commas_inside_node_set_brackets():
    """Commas inside [...] belong to the node set, not to the list."""
    assert split_target_words("fit[01-03,07],other") == ["fit[01-03,07]", "other"]


def test_node_set_expanded():
    """A node set such as fit[01-03,07] is expanded with ClusterShell."""
    assert expand_words("fit[01-03,07]") == ["fit01", "fit02", "fit03", "fit07"]


def test_node_set_of_addresses_expanded():
    """127.0.1.[1-3] expands to three addresses."""
    assert expand_words("127.0.1.[1-3]") == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]


def test_node_set_keeps_user_port_and_gateway():
    """In gw->user@fit[1-2]:22 only the host part is a node set."""
    assert expand_words("gw->u@fit[1-2]:22") == ["gw->u@fit1:22", "gw->u@fit2:22"]


def test_bad_node_set_raises_target_error():
    """An unbalanced node set is a TargetError naming the word."""
    with pytest.raises(TargetError, match=r"fit\[1-"):
        expand_words("fit[1-")


# ------------------------------------------------------------ analyze_target
def test_analyze_inline_string():
    """A string that is neither a file nor a directory is a list of host names."""
    assert analyze_target("fit01 fit02,fit03") == (True, ["fit01", "fit02", "fit03"])


def test_analyze_file_with_comments(tmp_path):
    """A file lists targets, several per line allowed; # comments and blank lines are ignored."""
    path = tmp_path / "hosts"
    path.write_text("# my nodes\nfit01  # the first\n\nfit02 fit03\nfit[04-05]\n")
    assert analyze_target(str(path)) == (True, ["fit01", "fit02", "fit03", "fit04", "fit05"])


def test_analyze_directory_lists_plain_file_names(tmp_path):
    """A directory gives the sorted names of the files immediately under it; subdirectories are ignored."""
    for name in ("fit02", "fit01", "root@fit03"):
        (tmp_path / name).write_text("0\n")
    (tmp_path / "subdir").mkdir()
    (tmp_path / "subdir" / "fit09").write_text("")
    assert analyze_target(str(tmp_path)) == (True, ["fit01", "fit02", "root@fit03"])


def test_analyze_file_found_in_apssh_dir(apssh_dir, tmp_path, monkeypatch):
    """A relative file name that does not exist here is looked up in ~/.apssh."""
    (apssh_dir / "mynodes").write_text("fit01\nfit02\n")
    monkeypatch.chdir(tmp_path)
    assert analyze_target("mynodes") == (True, ["fit01", "fit02"])


def test_analyze_directory_found_in_apssh_dir(apssh_dir, tmp_path, monkeypatch):
    """A relative directory name that does not exist here is looked up in ~/.apssh."""
    (apssh_dir / "alive").mkdir()
    (apssh_dir / "alive" / "fit07").write_text("0\n")
    monkeypatch.chdir(tmp_path)
    assert analyze_target("alive") == (True, ["fit07"])


def test_analyze_local_file_wins_over_apssh_dir(apssh_dir, tmp_path, monkeypatch):
    """A file in the current directory is used before one of the same name in ~/.apssh."""
    (apssh_dir / "nodes").write_text("from-apssh-dir\n")
    (tmp_path / "nodes").write_text("from-here\n")
    monkeypatch.chdir(tmp_path)
    assert analyze_target("nodes") == (True, ["from-here"])


def test_analyze_binary_file_is_false_empty(tmp_path):
    """A file that cannot be read as text is probably not a host list: (False, [])."""
    path = tmp_path / "image.bin"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    assert analyze_target(str(path)) == (False, [])


def test_analyze_bad_node_set_is_false_empty():
    """A string with a bad node set gives (False, [])."""
    assert analyze_target("fit[01-") == (False, [])


def test_analyze_long_list_is_not_an_oserror():
    """A 5000-character list of hosts is a list, not an OSError about a too long file name."""
    text = " ".join(f"host{i:04d}" for i in range(600))
    assert len(text) > 5000
    ok, found = analyze_target(text)
    assert ok
    assert len(found) == 600
    assert found[0] == "host0000" and found[-1] == "host0599"


def test_analyze_long_single_name_is_not_an_oserror():
    """A single 5000-character word is taken as a name, without OSError."""
    assert analyze_target("x" * 5000) == (True, ["x" * 5000])


def test_apssh_analyze_target_is_the_same():
    """Apssh().analyze_target, the API name of the spec, gives the same result."""
    assert Apssh().analyze_target("fit[01-02] fit09") == (True, ["fit01", "fit02", "fit09"])


# ------------------------------------------------------------ resolve_targets
def test_resolve_removes_duplicates_keeping_order():
    """The same target given twice (here or across -t options) is kept once, first position."""
    assert names(resolve_targets(["b a", "a,b", "c b"])) == ["b", "a", "c"]


def test_resolve_exclude_host_excludes_every_login():
    """-x host excludes host, user@host and host:port alike."""
    targets = resolve_targets(["fit01 root@fit01 bob@fit01:2222 fit02"], ["fit01"])
    assert names(targets) == ["fit02"]


def test_resolve_exclude_login_excludes_only_that_user():
    """-x user@host keeps the other logins on that host."""
    targets = resolve_targets(["root@fit01 bob@fit01 fit02"], ["bob@fit01"])
    assert names(targets) == ["root@fit01", "fit02"]


def test_resolve_exclude_node_set_and_file(tmp_path):
    """-x accepts node sets and files, as -t does."""
    dead = tmp_path / "dead"
    dead.write_text("fit03\n")
    targets = resolve_targets(["fit[01-05]"], ["fit[01-02]", str(dead)])
    assert names(targets) == ["fit04", "fit05"]


def test_resolve_error_names_the_argument():
    """An argument that cannot be understood raises TargetError naming the option and the argument."""
    with pytest.raises(TargetError) as info:
        resolve_targets(["good", "bad[1-"])
    assert "-t 'bad[1-'" in str(info.value)
    assert "bad node set" in str(info.value)


def test_resolve_error_names_an_unreadable_file(tmp_path):
    """A binary target file gives an error that names the file."""
    path = tmp_path / "blob"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TargetError, match="blob"):
        resolve_targets([str(path)])


# ------------------------------------------------------------ fold
def test_fold_as_node_set():
    """Host names fold into a ClusterShell node set."""
    assert fold(["fit03", "fit01", "fit02", "fit07"]) == "fit[01-03,07]"


def test_fold_empty():
    """No names fold to an empty string."""
    assert fold([]) == ""


def test_analyze_ipv6_with_port_is_not_a_node_set():
    """[v6addr]:port is one target, not a (bad) node set."""
    assert analyze_target("root@[::1]:2222 fit01") == (True, ["root@[::1]:2222", "fit01"])


# ---------------------------------------------------------------- properties (hypothesis)
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
HOSTNAME = st.one_of(
    st.lists(LABEL, min_size=1, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
USERNAME = st.none() | st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True)
PORT = st.none() | st.integers(1, 65535)


@st.composite
def targets(draw, depth: int = 2) -> Target:
    """Any Target: a login, behind 0 to ``depth`` gateways, or reached directly (None->)."""
    gateway = draw(targets(depth - 1)) if depth and draw(st.booleans()) else None
    host, user, port = draw(HOSTNAME), draw(USERNAME), draw(PORT)
    gateway = None if gateway is None else Target(gateway.hostname, gateway.username, gateway.port, gateway.gateway)
    direct = gateway is None and draw(st.booleans())
    return Target(host, user, port, gateway=gateway, direct=direct)


@given(targets())
def test_property_target_text_parses_back(target):
    """Any target printed as -L prints it parses back to the same target."""
    assert parse_target(str(target)) == target


@given(st.lists(targets(), min_size=1, max_size=6), st.lists(st.sampled_from([" ", "\t", "\n", ",", " , "]),
                                                            min_size=6, max_size=6))
def test_property_separators_do_not_matter(items, separators):
    """Targets joined by any mix of spaces, tabs, newlines and commas are read back in order."""
    text = "".join(str(t) + sep for t, sep in zip(items, separators, strict=False))
    assert [parse_target(word) for word in expand_words(text)] == items


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_property_any_text_is_targets_or_a_target_error(tmp_path, monkeypatch, text):
    """Whatever -t holds, resolve_targets returns targets or raises TargetError naming -t
    (run in an empty directory: a file of that name would be read as a target list)."""
    monkeypatch.chdir(tmp_path)
    try:
        resolved = resolve_targets([text])
    except TargetError as exc:
        assert str(exc).startswith("-t ")
    else:
        assert all(isinstance(target, Target) for target in resolved)
        # no target at all only from an (empty) directory or file of targets, such as ~
        assert resolved or Path(os.path.expanduser(text.strip())).exists()


NODE_NAMES = st.lists(
    st.tuples(st.sampled_from(["fit", "node", "n-", "rack1-", ""]), st.integers(0, 300), st.sampled_from([1, 2, 3]))
    .map(lambda t: f"{t[0]}{t[1]:0{t[2]}d}" if t[0] else f"h{t[1]}"),
    min_size=1, max_size=40)


@given(NODE_NAMES)
def test_property_fold_expands_back_to_the_same_names(names_list):
    """A node set folded for the summary expands back (as a -t) to exactly the names folded."""
    assert sorted(set(expand_words(fold(names_list)))) == sorted(set(names_list))


@given(st.lists(targets(depth=0), min_size=1, max_size=10))
def test_property_fold_of_logins_expands_back(items):
    """Logins with user@ and :port, folded as the summary does, expand back to the same logins."""
    logins = [target.login() for target in items]
    assume(all(":" not in target.hostname for target in items))  # IPv6 addresses are listed apart
    assert sorted(set(expand_words(fold(logins)))) == sorted(set(logins))


def test_tilde_of_unknown_user_is_a_host_name(tmp_path, monkeypatch):
    """-t ~nosuchuser (found by the property above): a name, never a RuntimeError from expanduser."""
    monkeypatch.chdir(tmp_path)
    assert names(resolve_targets(["~nosuchuser0"])) == ["~nosuchuser0"]

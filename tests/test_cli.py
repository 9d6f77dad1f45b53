"""The apssh, appush and appull commands, run in-process (and once as console scripts) against the testbed."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import asyncssh
import psutil
import pytest
from testbed import Testbed

from apssh import cli
from apssh.apssh import Appull, Appush, Apssh

VENV_BIN = Path(sys.executable).parent
STAMP = re.compile(r"^\d{4}-\d\d-\d\d@\d\d-\d\d-\d\d(-\d+)?$")
# exits 3 on node2 only (SSH_CONNECTION is "client port server port")
FAIL_ON_NODE2 = 'case "$SSH_CONNECTION" in *" 127.0.0.12 "*) exit 3;; esac; echo fine'


# ------------------------------------------------------------------ helpers
def hp(testbed: Testbed, name: str) -> str:
    """``address:port`` of testbed host ``name``, as a -t target."""
    host = testbed.host(name)
    return f"{host.address}:{host.port}"


def free_port(address: str = "127.0.0.1") -> int:
    """A port on ``address`` where nothing listens."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def tunnelled(testbed: Testbed, gateway: str, node: str) -> int:
    """How many forwarded connections ``gateway``'s sshd has opened to ``node`` (from its DEBUG log)."""
    host = testbed.host(node)
    # "debug1: server_request_direct_tcpip: originator ... target 127.0.0.11 port 20123"
    return testbed.count_log(testbed.host(gateway), f"target {host.address} port {host.port}")


def out_lines(text: str) -> list[str]:
    """The lines of captured output."""
    return text.splitlines()


@pytest.fixture
def key_moved_away(testbed: Testbed, tmp_path: Path):
    """``~/.ssh/id_ed25519`` moved out of ``~/.ssh`` for the test, put back afterwards; yields its new path."""
    key = Path("~/.ssh/id_ed25519").expanduser()
    moved = tmp_path / "moved_id_ed25519"
    shutil.move(key, moved)
    try:
        yield moved
    finally:
        shutil.move(moved, key)


@pytest.fixture
def ssh_config_file(testbed: Testbed):
    """Path of ``~/.ssh/config`` (absent before), removed after the test."""
    path = Path("~/.ssh/config").expanduser()
    assert not path.exists()
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture
def fresh_home(testbed: Testbed, tmp_path: Path, monkeypatch) -> Path:
    """A private $HOME with the client key and an EMPTY known_hosts, for host-key tests."""
    home = tmp_path / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    shutil.copy(testbed.client_key, ssh_dir / "id_ed25519")
    (ssh_dir / "id_ed25519").chmod(0o600)
    (ssh_dir / "known_hosts").touch()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def apssh_dir(testbed: Testbed):
    """``$HOME/.apssh`` created for the test and removed afterwards."""
    directory = Path("~/.apssh").expanduser()
    assert not directory.exists()
    directory.mkdir()
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture
def wrong_key(tmp_path: Path) -> Path:
    """A valid private key file that no testbed server accepts."""
    path = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
    path.chmod(0o600)
    return path


class ConnectionSampler(threading.Thread):
    """Counts, over and over, the connections this process holds open to some testbed hosts.

    Each sample is one snapshot of the system's TCP table (a per-host call to
    testbed.established_connections would add up counts taken at different times).
    """

    def __init__(self, testbed: Testbed, names: list[str]):
        super().__init__(daemon=True)
        self.endpoints = {testbed.host(name).endpoint for name in names}
        self.samples: list[int] = []
        self.done = threading.Event()

    def run(self):
        me = os.getpid()
        while not self.done.is_set():
            self.samples.append(sum(1 for conn in psutil.net_connections(kind="tcp")
                                    if conn.status == psutil.CONN_ESTABLISHED and conn.pid == me
                                    and conn.raddr and (conn.raddr.ip, conn.raddr.port) in self.endpoints))
            self.done.wait(0.02)  # leave the CPU to the command under test

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.join()


# ================================================================== targets
def test_host_port_target_runs_and_prefixes_lines(testbed, capsys):
    """-t host:port runs the command there; lines are prefixed with host:port by default (port not 22)."""
    assert Apssh().main("-t", hp(testbed, "node1"), "echo hello; echo oops >&2") == 0
    captured = capsys.readouterr()
    assert f"{hp(testbed, 'node1')}:hello" in out_lines(captured.out)
    assert f"{hp(testbed, 'node1')}:oops" in out_lines(captured.err)


def test_host_alone_with_port_option(testbed, capsys):
    """-t host uses the port given by -p."""
    node1 = testbed.host("node1")
    assert Apssh().main("-p", str(node1.port), "-t", node1.address, "echo via-p") == 0
    assert f"{hp(testbed, 'node1')}:via-p" in out_lines(capsys.readouterr().out)


def test_target_port_wins_over_port_option(testbed, capsys):
    """host:port in the target wins over -p (here a port where nothing listens)."""
    assert Apssh().main("-p", str(free_port("127.0.0.11")), "-t", hp(testbed, "node1"), "echo own-port") == 0
    assert f"{hp(testbed, 'node1')}:own-port" in out_lines(capsys.readouterr().out)


def test_user_at_host_target(testbed, capsys):
    """-t user@host:port logs in as that user."""
    assert testbed.second_user, "the CLI tests run as root, with a second user"
    assert Apssh().main("-t", f"{testbed.second_user}@{hp(testbed, 'node1')}", "whoami") == 0
    assert f"{hp(testbed, 'node1')}:{testbed.second_user}" in out_lines(capsys.readouterr().out)


def test_login_option(testbed, capsys):
    """-l sets the login of targets that name no user."""
    assert Apssh().main("-l", testbed.second_user, "-t", hp(testbed, "node1"), "whoami") == 0
    assert f"{hp(testbed, 'node1')}:{testbed.second_user}" in out_lines(capsys.readouterr().out)


def test_user_in_target_wins_over_login_option(testbed, capsys):
    """user@host in the target wins over -l."""
    assert Apssh().main("-l", testbed.second_user, "-t", f"root@{hp(testbed, 'node2')}", "whoami") == 0
    assert f"{hp(testbed, 'node2')}:root" in out_lines(capsys.readouterr().out)


def test_default_login_is_root(testbed, capsys):
    """Without -l nor user@, the login is root."""
    assert Apssh().main("-t", hp(testbed, "node1"), "whoami") == 0
    assert f"{hp(testbed, 'node1')}:root" in out_lines(capsys.readouterr().out)


def test_gateway_arrow_target_goes_through_gateway(testbed, capsys):
    """gw->host reaches host through gw (the gateway's sshd forwards a connection to the node)."""
    before = tunnelled(testbed, "gw1", "node3")
    target = f"root@{hp(testbed, 'gw1')}->{hp(testbed, 'node3')}"
    assert Apssh().main("-t", target, "echo behind-gw") == 0
    assert f"{hp(testbed, 'node3')}:behind-gw" in out_lines(capsys.readouterr().out)
    assert tunnelled(testbed, "gw1", "node3") == before + 1


def test_gateway_unicode_arrow_target_goes_through_gateway(testbed, capsys):
    """gw→host (unicode arrow) reaches host through gw too."""
    before = tunnelled(testbed, "gw2", "node3")
    assert Apssh().main("-t", f"{hp(testbed, 'gw2')}→{hp(testbed, 'node3')}", "echo arrow") == 0
    assert f"{hp(testbed, 'node3')}:arrow" in out_lines(capsys.readouterr().out)
    assert tunnelled(testbed, "gw2", "node3") == before + 1


def test_gateway_chain_target(testbed, capsys):
    """gw1->gw2->host goes through both gateways, in that order."""
    gw2_before, node_before = tunnelled(testbed, "gw1", "gw2"), tunnelled(testbed, "gw2", "node4")
    target = f"{hp(testbed, 'gw1')}->{hp(testbed, 'gw2')}->{hp(testbed, 'node4')}"
    assert Apssh().main("-t", target, "echo two-hops") == 0
    assert f"{hp(testbed, 'node4')}:two-hops" in out_lines(capsys.readouterr().out)
    assert tunnelled(testbed, "gw1", "gw2") == gw2_before + 1
    assert tunnelled(testbed, "gw2", "node4") == node_before + 1


def test_gateway_option(testbed, capsys):
    """-g [user@]gw:port is the gateway of every target that names none; it is opened once."""
    before3, before4 = tunnelled(testbed, "gw1", "node3"), tunnelled(testbed, "gw1", "node4")
    gw_logins = testbed.count_log(testbed.host("gw1"), "Accepted publickey")
    assert Apssh().main("-g", f"root@{hp(testbed, 'gw1')}", "-t", hp(testbed, "node3"),
                        "-t", hp(testbed, "node4"), "echo via-g") == 0
    assert {f"{hp(testbed, 'node3')}:via-g", f"{hp(testbed, 'node4')}:via-g"} <= set(out_lines(capsys.readouterr().out))
    assert tunnelled(testbed, "gw1", "node3") == before3 + 1
    assert tunnelled(testbed, "gw1", "node4") == before4 + 1
    assert testbed.count_log(testbed.host("gw1"), "Accepted publickey") == gw_logins + 1


def test_unreachable_gateway_makes_its_targets_unreachable(testbed, capsys):
    """-g to a dead gateway: every target behind it is unreachable, the message names the gateway."""
    port = free_port("127.0.0.21")
    assert Apssh().main("-g", f"127.0.0.21:{port}", "-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"),
                        "true") == 1
    err = capsys.readouterr().err
    assert "gateway 127.0.0.21 failed" in err
    assert "2 unreachable" in err


def test_none_arrow_is_direct_despite_gateway_option(testbed, capsys):
    """None->host is reached directly even when -g names a gateway."""
    before = tunnelled(testbed, "gw3", "node2")
    assert Apssh().main("-v", "-g", hp(testbed, "gw3"), "-t", f"None->{hp(testbed, 'node2')}", "echo direct") == 0
    captured = capsys.readouterr()
    assert f"{hp(testbed, 'node2')}:direct" in out_lines(captured.out)
    assert f"{hp(testbed, 'node2')}: connected (direct) as root" in captured.err
    assert tunnelled(testbed, "gw3", "node2") == before


def test_list_split_on_spaces_tabs_newlines_commas(capsys):
    """-L: one -t holding hosts separated by spaces, tabs, newlines and commas names them all."""
    assert Apssh().main("-L", "-t", "h1 h2\th3\nh4,h5") == 0
    assert out_lines(capsys.readouterr().out) == ["h1", "h2", "h3", "h4", "h5"]


def test_list_targets_does_not_connect(capsys):
    """-L lists the targets and exits 0 without a command and without connecting (no such hosts here)."""
    assert Apssh().main("-L", "-t", "nosuchhost.invalid", "-t", "root@other.invalid:2222") == 0
    captured = capsys.readouterr()
    assert out_lines(captured.out) == ["nosuchhost.invalid", "root@other.invalid:2222"]
    assert "unreachable" not in captured.err


def test_node_set_listed(capsys):
    """-L: a node set such as 127.0.0.1[1-2] expands to each host."""
    assert Apssh().main("-L", "-t", "127.0.0.1[1-2]") == 0
    assert out_lines(capsys.readouterr().out) == ["127.0.0.11", "127.0.0.12"]


def test_node_set_with_user_port_and_gateway_listed(capsys):
    """-L: gw->user@fit[01-02]:port expands the host part only."""
    assert Apssh().main("-L", "-t", "gw→bob@fit[01-02]:2222") == 0
    assert out_lines(capsys.readouterr().out) == ["gw->bob@fit01:2222", "gw->bob@fit02:2222"]


def test_node_set_dry_run(capsys):
    """-n: a node set shows the command for each host, nothing runs."""
    assert Apssh().main("-n", "-t", "root@127.0.0.1[1-3]:22", "hostname") == 0
    assert out_lines(capsys.readouterr().out) == [
        "root@127.0.0.11:22: hostname", "root@127.0.0.12:22: hostname", "root@127.0.0.13:22: hostname"]


def test_node_set_of_unreachable_hosts_folded_in_summary(testbed, capsys):
    """A node set really runs on each host; unreachable ones are folded back in the summary."""
    assert Apssh().main("-p", str(free_port()), "-c", "5", "-t", "127.0.0.[31-33]", "true") == 1
    err = capsys.readouterr().err
    assert "apssh: 3 targets, 0 ok, 3 unreachable (connection refused): 127.0.0.[31-33]" in err


def test_dry_run_does_not_run(testbed, tmp_path, capsys):
    """-n shows what would run where, exits 0 and runs nothing."""
    marker = tmp_path / "marker"
    assert Apssh().main("-n", "-t", hp(testbed, "node1"), "touch", str(marker)) == 0
    assert out_lines(capsys.readouterr().out) == [f"{hp(testbed, 'node1')}: touch {marker}"]
    assert not marker.exists()


def test_target_file_with_comments(testbed, tmp_path, capsys):
    """-t FILE runs on the targets the file lists, # comments and blank lines ignored."""
    hosts = tmp_path / "hosts"
    hosts.write_text(f"# my nodes\n{hp(testbed, 'node1')}   # first\n\n{hp(testbed, 'node2')}\n")
    assert Apssh().main("-t", str(hosts), "echo from-file") == 0
    assert sorted(line for line in out_lines(capsys.readouterr().out) if "from-file" in line) == [
        f"{hp(testbed, 'node1')}:from-file", f"{hp(testbed, 'node2')}:from-file"]


def test_target_directory(testbed, tmp_path, capsys):
    """-t DIR runs on the targets named by the files in DIR."""
    directory = tmp_path / "alive"
    directory.mkdir()
    for name in ("node1", "node3"):
        (directory / hp(testbed, name)).write_text("0\n")
    assert Apssh().main("-t", str(directory), "echo from-dir") == 0
    assert sorted(line for line in out_lines(capsys.readouterr().out) if "from-dir" in line) == [
        f"{hp(testbed, 'node1')}:from-dir", f"{hp(testbed, 'node3')}:from-dir"]


def test_target_file_looked_up_in_apssh_dir(testbed, apssh_dir, tmp_path, monkeypatch, capsys):
    """-t NAME finds the file ~/.apssh/NAME when there is no NAME here."""
    (apssh_dir / "mynodes").write_text(f"{hp(testbed, 'node2')}\n")
    monkeypatch.chdir(tmp_path)
    assert Apssh().main("-t", "mynodes", "echo from-apssh-dir") == 0
    assert f"{hp(testbed, 'node2')}:from-apssh-dir" in out_lines(capsys.readouterr().out)


def test_target_directory_looked_up_in_apssh_dir(testbed, apssh_dir, tmp_path, monkeypatch, capsys):
    """-t NAME finds the directory ~/.apssh/NAME, whose file names are targets."""
    (apssh_dir / "alive").mkdir()
    (apssh_dir / "alive" / hp(testbed, "node4")).write_text("0\n")
    monkeypatch.chdir(tmp_path)
    assert Apssh().main("-t", "alive", "echo from-apssh-subdir") == 0
    assert f"{hp(testbed, 'node4')}:from-apssh-subdir" in out_lines(capsys.readouterr().out)


def test_long_target_string_is_a_list(capsys):
    """A 5000-character -t is a list of hosts, never an OSError."""
    text = ",".join(f"node{i:04d}.example.org" for i in range(250))
    assert len(text) >= 5000
    assert Apssh().main("-L", "-t", text) == 0
    listed = out_lines(capsys.readouterr().out)
    assert len(listed) == 250
    assert listed[0] == "node0000.example.org"


def test_duplicates_removed(testbed, capsys):
    """A target given several times runs once."""
    target = hp(testbed, "node1")
    assert Apssh().main("-t", target, "-t", f"{target} {target}", "echo once") == 0
    captured = capsys.readouterr()
    assert out_lines(captured.out).count(f"{hp(testbed, 'node1')}:once") == 1
    assert "apssh: 1 targets, 1 ok" in captured.err


def test_exclude_host_alone_excludes_all_its_logins(capsys):
    """-x host removes host, user@host and host:port alike."""
    assert Apssh().main("-L", "-t", "fit01 root@fit01 bob@fit01:2222 fit02", "-x", "fit01") == 0
    assert out_lines(capsys.readouterr().out) == ["fit02"]


def test_exclude_user_at_host_keeps_other_logins(capsys):
    """-x user@host removes that login only."""
    assert Apssh().main("-L", "-t", "root@fit01 bob@fit01", "-x", "bob@fit01") == 0
    assert out_lines(capsys.readouterr().out) == ["root@fit01"]


def test_exclude_when_running(testbed, capsys):
    """-x host keeps the excluded host out of a real run."""
    assert Apssh().main("-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"), "-x", "127.0.0.12",
                        "echo kept") == 0
    captured = capsys.readouterr()
    assert [line for line in out_lines(captured.out) if "kept" in line] == [f"{hp(testbed, 'node1')}:kept"]
    assert "apssh: 1 targets, 1 ok" in captured.err


def test_everything_excluded_is_not_an_error(testbed, capsys):
    """When -x removes every target, nothing runs and the exit code is 0."""
    assert Apssh().main("-t", hp(testbed, "node1"), "-x", "127.0.0.11", "echo never") == 0
    captured = capsys.readouterr()
    assert "never" not in captured.out
    assert "every target is excluded" in captured.err


def test_ipv6_target_listed(capsys):
    """-L: [v6addr]:port is one target, printed back the same way."""
    assert Apssh().main("-L", "-t", "root@[::1]:2222,[fe80::1]:22") == 0
    assert out_lines(capsys.readouterr().out) == ["root@[::1]:2222", "[fe80::1]:22"]


def test_double_dash_before_command(testbed, capsys):
    """apssh -t host -- cmd -opt: the -- only ends the options, it is not part of the command."""
    assert Apssh().main("-t", hp(testbed, "node1"), "--", "ls", "-d", "/") == 0
    assert f"{hp(testbed, 'node1')}:/" in out_lines(capsys.readouterr().out)


def test_options_after_command_belong_to_it(testbed, capsys):
    """Everything after the command (here -t and -l) is passed to the remote command."""
    assert Apssh().main("-t", hp(testbed, "node1"), "echo", "-t", "x", "-l") == 0
    assert f"{hp(testbed, 'node1')}:-t x -l" in out_lines(capsys.readouterr().out)


# ================================================================== connection options
def test_key_option_uses_only_given_keys(testbed, wrong_key, capsys):
    """-k KEY uses that key only: a key the server refuses fails although ~/.ssh has a good one."""
    assert Apssh().main("-k", str(wrong_key), "-t", hp(testbed, "node1"), "true") == 1
    err = capsys.readouterr().err
    assert "permission denied for user root" in err
    assert str(wrong_key) in err


def test_key_option_repeatable(testbed, wrong_key, capsys):
    """-k is repeatable: with a refused key and a good one, the good one gets in."""
    assert Apssh().main("-k", str(wrong_key), "-k", str(testbed.client_key), "-t", hp(testbed, "node1"),
                        "echo keyed") == 0
    assert f"{hp(testbed, 'node1')}:keyed" in out_lines(capsys.readouterr().out)


def test_key_option_missing_file_clear_message(testbed, capsys):
    """-k with a path that does not exist: a usage error (exit 2) naming it, no traceback."""
    assert Apssh().main("-k", "/nonexistent/key", "-t", hp(testbed, "node1"), "true") == 2
    err = capsys.readouterr().err
    assert "apssh: -k/--key: key file not found: /nonexistent/key" in err
    assert "Traceback" not in err


def test_no_key_found_clear_message(testbed, key_moved_away, capsys):
    """With no key in ~/.ssh nor agent, and no -K: a clear message, exit 1, no traceback, no connection."""
    logins = testbed.count_log(testbed.host("node1"), "Connection from")
    assert Apssh().main("-t", hp(testbed, "node1"), "true") == 1
    err = capsys.readouterr().err
    assert "no private key found" in err
    assert "-K" in err
    assert "Traceback" not in err
    assert testbed.count_log(testbed.host("node1"), "Connection from") == logins


def test_ok_if_no_key_tries_anyway(testbed, key_moved_away, capsys):
    """-K connects even with no key found (here the server refuses: unreachable, exit 1)."""
    assert Apssh().main("-K", "-t", hp(testbed, "node1"), "true") == 1
    err = capsys.readouterr().err
    assert "no private key found" not in err
    assert "permission denied" in err
    assert "1 unreachable" in err


def test_ok_if_no_key_lets_ssh_config_supply_the_key(testbed, key_moved_away, ssh_config_file, capsys):
    """-K: a key that only ~/.ssh/config names (IdentityFile) is used, and the command runs."""
    ssh_config_file.write_text(f"Host *\n    IdentityFile {key_moved_away}\n")
    assert Apssh().main("-K", "-t", hp(testbed, "node1"), "echo config-key") == 0
    assert f"{hp(testbed, 'node1')}:config-key" in out_lines(capsys.readouterr().out)


def test_connect_timeout_on_silent_server(capsys):
    """-c: a server that accepts TCP but never speaks is given up after that many seconds."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        assert Apssh().main("-c", "0.3", "-t", f"127.0.0.1:{port}", "true") == 1
    err = capsys.readouterr().err
    assert "no answer within 0.3s" in err
    assert f"1 unreachable (no answer): 127.0.0.1:{port}" in err


def test_window_bounds_open_connections(testbed, capsys):
    """-w 2 with 4 targets: never more than 2 connections open at once (and 2 do run together)."""
    names = ["node1", "node2", "node3", "node4"]
    argv = ["-w", "2", *(arg for name in names for arg in ("-t", hp(testbed, name))), "sleep 0.25; echo slept"]
    with ConnectionSampler(testbed, names) as sampler:
        assert Apssh().main(*argv) == 0
    assert "apssh: 4 targets, 4 ok" in capsys.readouterr().err
    assert max(sampler.samples) == 2


def test_window_must_not_be_negative(testbed, capsys):
    """-w -1 is a usage error (exit 2)."""
    assert Apssh().main("-w", "-1", "-t", hp(testbed, "node1"), "true") == 2
    assert "window" in capsys.readouterr().err


def test_window_zero_means_no_limit(testbed, tmp_path, capsys):
    """-w 0 (apssh 0.27's default): every target runs at once.

    Each target checks in, then waits until all 4 have: with any limit below 4 the command
    would give up (exit 1) instead of seeing the others.
    """
    names = ["node1", "node2", "node3", "node4"]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    wait_all = (f'touch {barrier}/"$(echo $SSH_CONNECTION | tr " " _)"; n=0; '
                f'while [ "$(ls {barrier} | wc -l)" -lt 4 ]; do n=$((n+1)); [ $n -gt 600 ] && exit 1; '
                f'sleep 0.05; done; echo all-in')
    argv = ["-w", "0", *(arg for name in names for arg in ("-t", hp(testbed, name))), wait_all]
    assert Apssh().main(*argv) == 0
    assert "apssh: 4 targets, 4 ok" in capsys.readouterr().err


def test_host_key_policy_default_records_new_hosts(testbed, fresh_home, capsys):
    """Without --host-key-policy (accept-new) an unknown host is accepted and recorded in known_hosts."""
    assert Apssh().main("-t", hp(testbed, "node1"), "echo recorded") == 0
    known = (fresh_home / ".ssh" / "known_hosts").read_text()
    assert f"[127.0.0.11]:{testbed.host('node1').port} {testbed.host('node1').host_key_line}" in known


def test_host_key_policy_strict_refuses_unknown_host(testbed, fresh_home, capsys):
    """--host-key-policy strict: a host missing from known_hosts is refused and not recorded."""
    assert Apssh().main("--host-key-policy", "strict", "-t", hp(testbed, "node1"), "echo no") == 1
    captured = capsys.readouterr()
    assert "strict" in captured.err
    assert "1 unreachable" in captured.err
    assert f"{hp(testbed, 'node1')}:no" not in captured.out
    assert (fresh_home / ".ssh" / "known_hosts").read_text() == ""


def test_host_key_policy_strict_accepts_known_host(testbed, fresh_home, capsys):
    """--host-key-policy strict: a host listed in known_hosts is reached."""
    testbed.write_known_hosts(fresh_home / ".ssh" / "known_hosts")
    assert Apssh().main("--host-key-policy", "strict", "-t", hp(testbed, "node1"), "echo known") == 0
    assert f"{hp(testbed, 'node1')}:known" in out_lines(capsys.readouterr().out)


def test_host_key_policy_accept_new_refuses_changed_key(testbed, fresh_home, capsys):
    """--host-key-policy accept-new: a host whose recorded key differs is refused."""
    node1, node2 = testbed.host("node1"), testbed.host("node2")
    (fresh_home / ".ssh" / "known_hosts").write_text(f"[{node1.address}]:{node1.port} {node2.host_key_line}\n")
    assert Apssh().main("--host-key-policy", "accept-new", "-t", hp(testbed, "node1"), "true") == 1
    assert "CHANGED" in capsys.readouterr().err


def test_host_key_policy_ignore_accepts_changed_key(testbed, fresh_home, capsys):
    """--host-key-policy ignore: even a host whose recorded key differs is reached."""
    node1, node2 = testbed.host("node1"), testbed.host("node2")
    (fresh_home / ".ssh" / "known_hosts").write_text(f"[{node1.address}]:{node1.port} {node2.host_key_line}\n")
    assert Apssh().main("--host-key-policy", "ignore", "-t", hp(testbed, "node1"), "echo ignored") == 0
    assert f"{hp(testbed, 'node1')}:ignored" in out_lines(capsys.readouterr().out)


def test_host_key_policy_unknown_value_is_usage_error(testbed, capsys):
    """--host-key-policy with another value is a usage error (exit 2)."""
    assert Apssh().main("--host-key-policy", "trusting", "-t", hp(testbed, "node1"), "true") == 2
    assert "host-key-policy" in capsys.readouterr().err


# ================================================================== output
def test_raw_format(testbed, capsys):
    """-r prints lines as they are."""
    assert Apssh().main("-r", "-t", hp(testbed, "node1"), "echo raw-line") == 0
    assert "raw-line" in out_lines(capsys.readouterr().out)


def test_time_colon_format(testbed, capsys):
    """-tc prefixes lines with the time and the host."""
    assert Apssh().main("-tc", "-t", hp(testbed, "node1"), "echo timed") == 0
    assert any(re.fullmatch(rf"\d\d-\d\d-\d\d:{re.escape(hp(testbed, 'node1'))}:timed", line)
               for line in out_lines(capsys.readouterr().out))


def test_custom_format(testbed, capsys):
    """-f FORMAT renders lines with {user}, {host}, {line} and @host@ placeholders."""
    assert Apssh().main("-f", "{user} on {host} (@host@) said {line}", "-t", hp(testbed, "node1"), "echo hi") == 0
    assert "root on 127.0.0.11 (127.0.0.11) said hi" in out_lines(capsys.readouterr().out)


def test_out_dir_one_file_per_host(testbed, tmp_path, capsys):
    """-o DIR writes each target's stdout in DIR/<target> and its stderr in DIR/<target>.err."""
    outdir = tmp_path / "out"
    assert Apssh().main("-o", str(outdir), "-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"),
                        "echo to-out; echo to-err >&2") == 0
    for target in (hp(testbed, "node1"), hp(testbed, "node2")):
        assert (outdir / target).read_text() == "to-out\n"
        assert (outdir / f"{target}.err").read_text() == "to-err\n"
    captured = capsys.readouterr()
    assert "to-out" not in captured.out
    assert f"apssh: output in {outdir}" in captured.err


def test_date_time_dir(testbed, tmp_path, monkeypatch, capsys):
    """-d writes the files in a new directory named after the date and time, to the second."""
    monkeypatch.chdir(tmp_path)
    assert Apssh().main("-d", "-t", hp(testbed, "node1"), "echo dated; echo dated-err >&2") == 0
    (directory,) = list(tmp_path.iterdir())
    assert STAMP.match(directory.name)
    assert (directory / hp(testbed, "node1")).read_text() == "dated\n"
    assert (directory / f"{hp(testbed, 'node1')}.err").read_text() == "dated-err\n"


def test_date_time_dirs_of_the_same_second_do_not_collide(testbed, tmp_path, monkeypatch, capsys):
    """Two -d runs in the same second (clock frozen) write to two different directories."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "time", SimpleNamespace(strftime=lambda fmt: "2030-01-02@03-04-05"))
    assert Apssh().main("-d", "-t", hp(testbed, "node1"), "echo first") == 0
    assert Apssh().main("-d", "-t", hp(testbed, "node1"), "echo second") == 0
    assert (tmp_path / "2030-01-02@03-04-05" / hp(testbed, "node1")).read_text() == "first\n"
    assert (tmp_path / "2030-01-02@03-04-05-2" / hp(testbed, "node1")).read_text() == "second\n"


def test_date_time_dirs_of_concurrent_runs_do_not_collide(testbed, tmp_path, monkeypatch, capsys):
    """Two -d runs started together in the same second each get their own directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "time", SimpleNamespace(strftime=lambda fmt: "2030-01-02@03-04-05"))
    codes = {}

    def run(word):
        codes[word] = Apssh().main("-d", "-t", hp(testbed, "node1"), f"echo {word}")

    threads = [threading.Thread(target=run, args=(word,)) for word in ("alpha", "beta")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == {"alpha": 0, "beta": 0}
    contents = sorted((directory / hp(testbed, "node1")).read_text() for directory in tmp_path.iterdir())
    assert contents == ["alpha\n", "beta\n"]


def test_mark_ok_and_failed(testbed, tmp_path, capsys):
    """-m writes DIR/0ok/<target> holding 0 and DIR/1failed/<target> holding the exit code."""
    outdir = tmp_path / "marks"
    node1, node2 = hp(testbed, "node1"), hp(testbed, "node2")
    assert Apssh().main("-m", "-o", str(outdir), "-t", node1, "-t", node2, FAIL_ON_NODE2) == 1
    assert os.listdir(outdir / "0ok") == [node1]
    assert os.listdir(outdir / "1failed") == [node2]
    assert (outdir / "0ok" / node1).read_text().strip() == "0"
    assert (outdir / "1failed" / node2).read_text().strip() == "3"


def test_mark_unreachable_holds_the_cause(testbed, tmp_path, capsys):
    """-m: an unreachable target gets DIR/1failed/<target> saying why (not None)."""
    outdir = tmp_path / "marks"
    dead = f"127.0.0.31:{free_port('127.0.0.31')}"
    assert Apssh().main("-m", "-o", str(outdir), "-t", dead, "true") == 1
    assert (outdir / "1failed" / dead).read_text() == "unreachable: connection refused\n"


def test_mark_with_date_time_dir(testbed, tmp_path, monkeypatch, capsys):
    """-m works with -d too."""
    monkeypatch.chdir(tmp_path)
    assert Apssh().main("-m", "-d", "-t", hp(testbed, "node1"), "true") == 0
    (directory,) = list(tmp_path.iterdir())
    assert (directory / "0ok" / hp(testbed, "node1")).read_text().strip() == "0"


def test_mark_dir_reused_as_targets(testbed, tmp_path, capsys):
    """The DIR/0ok directory written by -m selects the targets that succeeded, as a -t DIR."""
    outdir = tmp_path / "marks"
    Apssh().main("-m", "-o", str(outdir), "-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"), FAIL_ON_NODE2)
    capsys.readouterr()
    assert Apssh().main("-t", str(outdir / "0ok"), "echo again") == 0
    assert [line for line in out_lines(capsys.readouterr().out) if "again" in line] == [f"{hp(testbed, 'node1')}:again"]


def test_mark_without_out_dir_is_usage_error(testbed, capsys):
    """-m without -o or -d is a usage error (exit 2)."""
    assert Apssh().main("-m", "-t", hp(testbed, "node1"), "true") == 2
    assert "-m/--mark needs -o DIR or -d" in capsys.readouterr().err


def test_verbose_shows_connection_events(testbed, capsys):
    """-v shows connection events (connected, authenticated, session) on stderr, the host named as the
    line prefixes name it (with its port, not 22 here)."""
    assert Apssh().main("-v", "-t", hp(testbed, "node1"), "echo out") == 0
    captured = capsys.readouterr()
    host = hp(testbed, "node1")
    assert out_lines(captured.out) == [f"{host}:out"]
    assert f" {host}: connected (direct) as root" in captured.err
    assert f" {host}: authenticated as root" in captured.err
    assert f" {host}: session started for echo out" in captured.err


def test_not_verbose_hides_connection_events(testbed, capsys):
    """Without -v no connection event is shown."""
    assert Apssh().main("-t", hp(testbed, "node1"), "true") == 0
    err = capsys.readouterr().err
    assert "connected" not in err
    assert "authenticated" not in err


# ================================================================== script mode
def test_script_file_with_includes(testbed, tmp_path, capsys):
    """-s runs a local script file remotely with its arguments; -i copies files beside it."""
    script = tmp_path / "probe.sh"
    script.write_text('#!/bin/sh\necho "args=$1,$2"\ncat "$(dirname "$0")/data.txt"\n')
    data = tmp_path / "data.txt"
    data.write_text("included-line\n")
    assert Apssh().main("-s", "-i", str(data), "-t", hp(testbed, "node1"), str(script), "A", "B") == 0
    lines = out_lines(capsys.readouterr().out)
    assert f"{hp(testbed, 'node1')}:args=A,B" in lines
    assert f"{hp(testbed, 'node1')}:included-line" in lines


def test_script_inline_body(testbed, capsys):
    """-s with a command that is not a file runs it as an inline script body, with arguments."""
    body = '#!/bin/sh\necho "inline-$1"\necho "second line"\n'
    assert Apssh().main("-s", "-t", hp(testbed, "node2"), body, "ARG") == 0
    lines = out_lines(capsys.readouterr().out)
    assert f"{hp(testbed, 'node2')}:inline-ARG" in lines
    assert f"{hp(testbed, 'node2')}:second line" in lines


def test_script_exit_code_counts(testbed, tmp_path, capsys):
    """-s: the script's exit code decides the command's exit code."""
    script = tmp_path / "fails.sh"
    script.write_text("#!/bin/sh\nexit 5\n")
    assert Apssh().main("-s", "-t", hp(testbed, "node1"), str(script)) == 1
    assert "1 failed: " in capsys.readouterr().err


def test_includes_is_an_alias_of_include(testbed, tmp_path, capsys):
    """--includes (apssh 0.27's spelling) copies the file beside the script, like -i/--include."""
    data = tmp_path / "data.txt"
    data.write_text("included\n")
    script = tmp_path / "show.sh"
    script.write_text('#!/bin/sh\ncat "$(dirname "$0")/data.txt"\n')
    script.chmod(0o755)
    assert Apssh().main("-s", "--includes", str(data), "-t", hp(testbed, "node1"), str(script)) == 0
    assert "included" in capsys.readouterr().out


def test_include_without_script_is_usage_error(testbed, tmp_path, capsys):
    """-i without -s is a usage error (exit 2)."""
    data = tmp_path / "data.txt"
    data.write_text("x\n")
    assert Apssh().main("-i", str(data), "-t", hp(testbed, "node1"), "true") == 2
    assert "-i/--include" in capsys.readouterr().err


# ================================================================== exit codes and summary
def test_exit_zero_when_every_target_succeeds(testbed, capsys):
    """Exit code 0 when the command returns 0 everywhere."""
    assert Apssh().main("-t", hp(testbed, "node1"), "-t", hp(testbed, "node3"), "true") == 0
    assert "apssh: 2 targets, 2 ok" in capsys.readouterr().err


def test_exit_one_when_one_target_fails(testbed, capsys):
    """Exit code 1 when the command fails on one target; the summary names it."""
    assert Apssh().main("-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"), FAIL_ON_NODE2) == 1
    assert f"apssh: 2 targets, 1 ok, 1 failed: {hp(testbed, 'node2')}" in capsys.readouterr().err


def test_summary_names_failed_and_unreachable(testbed, capsys):
    """The stderr summary names failed targets and unreachable ones, folded as a node set."""
    port = free_port()
    assert Apssh().main("-t", hp(testbed, "node2"), "-t", f"127.0.0.[31-33]:{port}", FAIL_ON_NODE2) == 1
    err = capsys.readouterr().err
    assert (f"apssh: 4 targets, 0 ok, 1 failed: {hp(testbed, 'node2')}, "
            f"3 unreachable (connection refused): 127.0.0.[31-33]:{port}") in err


@pytest.mark.parametrize("argv, message", [
    (["--no-such-option", "-t", "h", "true"], "unrecognized arguments"),
    (["-t", "fit[01-", "true"], "bad node set"),
    (["-m", "-t", "h", "true"], "-m/--mark needs -o DIR or -d"),
    (["-t", "h"], "no command given"),
    (["true"], "no target given"),
    (["-t", "h:99999", "true"], "between 1 and 65535"),
    (["-g", "@gw", "-t", "h", "true"], "expected [user@]host[:port]"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    """Usage errors exit with 2 and a one-line message, no traceback."""
    assert Apssh().main(*argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("apssh: ")
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["--version", "-V"])
def test_version_exits_0(capsys, option):
    """--version and -V (apssh 0.27) print the version and exit 0."""
    assert Apssh().main(option) == 0
    assert capsys.readouterr().out.startswith("apssh ")


def test_proxies_hold_the_nodes_after_main(testbed, capsys):
    """As with apssh 0.27, Apssh().main(...) leaves the target nodes in .proxies."""
    command = Apssh()
    assert command.main("-n", "-l", "guest", "-t", "gw->fit01 fit02", "true") == 0
    (fit01, fit02) = command.proxies
    assert (fit01.hostname, fit01.username, fit01.gateway.hostname) == ("fit01", "guest", "gw")
    assert (fit02.hostname, fit02.gateway) == ("fit02", None)
    command = Apssh()
    assert command.main("-t", hp(testbed, "node1"), "true") == 0
    assert [node.hostname for node in command.proxies] == [testbed.host("node1").address]


def test_debug_lists_nodes_and_results(testbed, capsys):
    """-D/--debug (apssh 0.27) names each target's node before the run and its result after."""
    assert Apssh().main("-D", "-t", hp(testbed, "node1"), "true") == 0
    err = capsys.readouterr().err
    assert f"using target {testbed.user}@{testbed.host('node1').address}" in err
    assert f"{hp(testbed, 'node1')}: exit 0" in err


# ================================================================== console scripts
def test_console_script_apssh(testbed, tmp_path):
    """The installed apssh script runs a command on the testbed and exits 0."""
    env = {**os.environ, "HOME": str(testbed.home)}
    result = subprocess.run([str(VENV_BIN / "apssh"), "-t", hp(testbed, "node1"), "echo", "from-script"],
                            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{hp(testbed, 'node1')}:from-script" in out_lines(result.stdout)
    assert "apssh: 1 targets, 1 ok" in result.stderr


def test_console_script_apssh_exit_codes(testbed, tmp_path):
    """The installed apssh script exits 1 when a target fails and 2 on a usage error."""
    env = {**os.environ, "HOME": str(testbed.home)}
    failing = subprocess.run([str(VENV_BIN / "apssh"), "-t", hp(testbed, "node1"), "exit 4"],
                             capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    usage = subprocess.run([str(VENV_BIN / "apssh"), "--bogus"],
                           capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert failing.returncode == 1
    assert f"1 failed: {hp(testbed, 'node1')}" in failing.stderr
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr


def test_console_script_appull(testbed, tmp_path):
    """The installed appull script pulls a file and exits 0."""
    remote = tmp_path / "remote.txt"
    remote.write_text("pulled by script\n")
    env = {**os.environ, "HOME": str(testbed.home)}
    result = subprocess.run([str(VENV_BIN / "appull"), "-t", hp(testbed, "node1"), f"@:{remote}", "local/"],
                            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "local" / "remote.txt").read_text() == "pulled by script\n"


@pytest.mark.parametrize("command", ["apssh", "appush", "appull"])
def test_console_scripts_start_outside_the_apssh_package(command):
    """Each installed command starts from apssh_tui.commands, which runs before asyncio is
    imported (see the next test)."""
    script = (VENV_BIN / command).read_text()
    assert f"from apssh_tui.commands import {command}_main" in script


def test_a_command_runs_without_python_ssl(testbed, tmp_path):
    """Started from its entry point, apssh never loads Python's ssl module (nor the system's
    libssl): it runs a command on the testbed, and ssl is still absent when it exits."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('ssl loaded:', sys.modules.get('ssl') is not None, file=sys.stderr))\n"
             "from apssh_tui.commands import apssh_main\n"
             f"sys.argv = ['apssh', '-t', {hp(testbed, 'node1')!r}, 'echo', 'no-tls']\n"
             "apssh_main()\n")
    env = {**os.environ, "HOME": str(testbed.home)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{hp(testbed, 'node1')}:no-tls" in out_lines(result.stdout)
    assert "ssl loaded: False" in result.stderr


# ================================================================== appush
def test_appush_file_with_host_and_user_templates(testbed, tmp_path, capsys):
    """appush local @:remote fills {host} and {user} in the remote path, for each target."""
    local = tmp_path / "local.txt"
    local.write_text("pushed\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    assert Appush().main("-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"), str(local),
                         f"@:{remote}/{{host}}-{{user}}.txt") == 0
    assert (remote / "127.0.0.11-root.txt").read_text() == "pushed\n"
    assert (remote / "127.0.0.12-root.txt").read_text() == "pushed\n"
    assert "appush: 2 targets, 2 ok" in capsys.readouterr().err


def test_appush_several_files_into_directory(testbed, tmp_path, capsys):
    """appush a b @:dir/ copies both files into the remote directory."""
    remote = tmp_path / "remote"
    remote.mkdir()
    sources = []
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
        sources.append(str(tmp_path / name))
    assert Appush().main("-t", hp(testbed, "node1"), *sources, f"@:{remote}/") == 0
    assert sorted(os.listdir(remote)) == ["a.txt", "b.txt"]


def test_appush_recurse(testbed, tmp_path, capsys):
    """appush -R copies a directory tree."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "deep.txt").write_text("deep\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    assert Appush().main("-R", "-t", hp(testbed, "node1"), str(tree), f"@:{remote}/") == 0
    assert (remote / "tree" / "sub" / "deep.txt").read_text() == "deep\n"


def test_appush_directory_without_recurse_fails(testbed, tmp_path, capsys):
    """appush of a directory without -R fails on the target (exit 1), no traceback."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x")
    remote = tmp_path / "remote"
    remote.mkdir()
    assert Appush().main("-t", hp(testbed, "node1"), str(tree), f"@:{remote}/") == 1
    err = capsys.readouterr().err
    assert "1 failed" in err
    assert "Traceback" not in err


def test_appush_with_key_option(testbed, wrong_key, tmp_path, capsys):
    """appush takes -k like apssh: with a refused key only, the target is unreachable."""
    local = tmp_path / "local.txt"
    local.write_text("x")
    assert Appush().main("-k", str(wrong_key), "-t", hp(testbed, "node1"), str(local), f"@:{tmp_path}/copy") == 1
    assert "permission denied" in capsys.readouterr().err
    assert not (tmp_path / "copy").exists()


def test_appush_without_key_clear_message(testbed, key_moved_away, tmp_path, capsys):
    """appush with no key found and no -K: a clear message, exit 1, no traceback."""
    local = tmp_path / "local.txt"
    local.write_text("x")
    assert Appush().main("-t", hp(testbed, "node1"), str(local), f"@:{tmp_path}/copy") == 1
    err = capsys.readouterr().err
    assert "appush: no private key found" in err
    assert "Traceback" not in err


def test_appush_ok_if_no_key(testbed, key_moved_away, ssh_config_file, tmp_path, capsys):
    """appush -K goes on without a key found, here using the key named by ~/.ssh/config."""
    ssh_config_file.write_text(f"Host *\n    IdentityFile {key_moved_away}\n")
    local = tmp_path / "local.txt"
    local.write_text("with -K\n")
    assert Appush().main("-K", "-t", hp(testbed, "node1"), str(local), f"@:{tmp_path}/copy") == 0
    assert (tmp_path / "copy").read_text() == "with -K\n"


def test_appush_dry_run(testbed, tmp_path, capsys):
    """appush -n shows the copy for each target and copies nothing."""
    local = tmp_path / "local.txt"
    local.write_text("x")
    assert Appush().main("-n", "-t", "127.0.0.1[1-2]", str(local), f"@:{tmp_path}/copy") == 0
    assert out_lines(capsys.readouterr().out) == [
        f"127.0.0.11: push {local} -> {tmp_path}/copy", f"127.0.0.12: push {local} -> {tmp_path}/copy"]
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("command", [Appush, Appull])
def test_copy_commands_list_targets_without_paths(command, capsys):
    """appush -L and appull -L list the targets without needing paths."""
    assert command().main("-L", "-t", "fit[01-02]") == 0
    assert out_lines(capsys.readouterr().out) == ["fit01", "fit02"]


@pytest.mark.parametrize("paths, message", [
    (["a.txt", "/tmp/dest"], "the destination must be a remote path written @:path"),
    (["@:a", "@:/tmp/"], "only the last path is remote"),
    (["@:/tmp/"], "expected at least one source and a destination"),
])
def test_appush_usage_errors(paths, message, capsys):
    """appush path mistakes are usage errors (exit 2) with a clear message."""
    assert Appush().main("-t", "h", *paths) == 2
    assert message in capsys.readouterr().err


# ================================================================== appull
def test_appull_host_templates_create_local_dirs(testbed, tmp_path, capsys):
    """appull @:remote local fills {host} in both paths and creates the local directories; in the
    local path {host} names the target as -m does (with its :port here)."""
    remote = tmp_path / "remote"
    remote.mkdir()
    for address in ("127.0.0.11", "127.0.0.12"):
        (remote / f"{address}.log").write_text(f"log of {address}\n")
    local = tmp_path / "local"
    assert Appull().main("-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"),
                         f"@:{remote}/{{host}}.log", f"{local}/{{host}}/") == 0
    for name in ("node1", "node2"):
        address = testbed.host(name).address
        assert (local / hp(testbed, name) / f"{address}.log").read_text() == f"log of {address}\n"


def test_appull_fqdn_host_and_user_templates(testbed, fresh_home, tmp_path, capsys):
    """{fqdn} is the name as given, {host} its first label, {user} the login."""
    node1 = testbed.host("node1")
    (fresh_home / ".ssh" / "config").write_text(
        f"Host node1.testbed.example\n    HostName {node1.address}\n    Port {node1.port}\n")
    remote = tmp_path / "remote.txt"
    remote.write_text("named\n")
    local = tmp_path / "local"
    assert Appull().main("-t", "node1.testbed.example", f"@:{remote}", f"{local}/{{fqdn}}/{{host}}-{{user}}.txt") == 0
    assert (local / "node1.testbed.example" / "node1-root.txt").read_text() == "named\n"


def test_appull_several_hosts_into_one_dir_uses_subdirectories(testbed, tmp_path, capsys):
    """appull from several hosts into an untemplated directory puts each host in its own subdirectory."""
    remote = tmp_path / "shared.txt"
    remote.write_text("same name everywhere\n")
    local = tmp_path / "all"
    node1, node2 = hp(testbed, "node1"), hp(testbed, "node2")
    assert Appull().main("-t", node1, "-t", node2, f"@:{remote}", str(local)) == 0
    assert sorted(os.listdir(local)) == sorted([node1, node2])
    for login in (node1, node2):
        assert (local / login / "shared.txt").read_text() == "same name everywhere\n"


def test_appull_single_host_file_to_new_name(testbed, tmp_path, capsys):
    """appull from one host of one file to a new local name creates that file (and its directory)."""
    remote = tmp_path / "remote.txt"
    remote.write_text("single\n")
    local = tmp_path / "deep" / "er" / "copy.txt"
    assert Appull().main("-t", hp(testbed, "node1"), f"@:{remote}", str(local)) == 0
    assert local.read_text() == "single\n"


def test_appull_recurse(testbed, tmp_path, capsys):
    """appull -R copies a remote directory tree."""
    tree = tmp_path / "rtree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "deep.txt").write_text("deep\n")
    local = tmp_path / "local"
    assert Appull().main("-R", "-t", hp(testbed, "node1"), f"@:{tree}", f"{local}/") == 0
    assert (local / "rtree" / "sub" / "deep.txt").read_text() == "deep\n"


def test_appull_missing_remote_file_fails_cleanly(testbed, tmp_path, capsys):
    """appull of a missing remote file: that target fails (exit 1) with a message, the others still run."""
    remote = tmp_path / "{host}.txt"
    (tmp_path / "127.0.0.11.txt").write_text("present\n")
    local = tmp_path / "local"
    assert Appull().main("-t", hp(testbed, "node1"), "-t", hp(testbed, "node2"), f"@:{remote}",
                         f"{local}/{{host}}.txt") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{hp(testbed, 'node2')}: failed: No such file" in err
    assert f"1 ok, 1 failed: {hp(testbed, 'node2')}" in err
    assert (local / f"{hp(testbed, 'node1')}.txt").read_text() == "present\n"


@pytest.mark.parametrize("paths, message", [
    (["@:a", "@:dest"], "the destination must be a local path"),
    (["a", "dest"], "sources must be remote paths written @:path"),
])
def test_appull_usage_errors(paths, message, capsys):
    """appull path mistakes are usage errors (exit 2) with a clear message."""
    assert Appull().main("-t", "h", *paths) == 2
    assert message in capsys.readouterr().err

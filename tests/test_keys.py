"""apssh.keys with real key files, a real ssh-agent, and real logins on the testbed."""

from __future__ import annotations

import base64
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh
import pytest
from asynciojobs import Scheduler
from helpers import RecordingFormatter, make_node
from testbed import SSH_KEYGEN, wait_for

from apssh import SshConnectError, SshJob, import_private_key, load_agent_keys, load_private_keys

SSH_AGENT = shutil.which("ssh-agent") or "/usr/bin/ssh-agent"
SSH_ADD = shutil.which("ssh-add") or "/usr/bin/ssh-add"


def blob_of_pubfile(path: Path) -> str:
    """The base64 key blob of an OpenSSH .pub file."""
    return path.read_text().split()[1]


def blob_of(key) -> str:
    """The base64 public key blob of an asyncssh SSHKey or agent key."""
    return base64.b64encode(key.public_data).decode()


def keygen(path: Path, passphrase: str = "") -> Path:
    """A fresh ed25519 key pair at ``path`` (and ``path``.pub)."""
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", "apssh-test", "-f", str(path)],
                   check=True, capture_output=True)
    return path


class Agent:
    """A real ssh-agent in the foreground (-D) on a private socket; ``add(key)`` runs ssh-add."""

    def __init__(self):
        # short directory: a unix socket path is limited to ~108 bytes
        self.directory = Path(tempfile.mkdtemp(prefix="apssh-agent-"))
        self.socket = str(self.directory / "sock")
        self.process = subprocess.Popen([SSH_AGENT, "-D", "-a", self.socket],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: os.path.exists(self.socket), timeout=10):
            self.stop()
            raise RuntimeError("ssh-agent did not create its socket")

    def add(self, key: Path) -> None:
        subprocess.run([SSH_ADD, "-q", str(key)], check=True, capture_output=True,
                       env={**os.environ, "SSH_AUTH_SOCK": self.socket})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def agent():
    """A running, empty ssh-agent (killed at the end); SSH_AUTH_SOCK is NOT set by this fixture."""
    running = Agent()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def no_default_key(testbed):
    """~/.ssh/id_ed25519 (the testbed client key) moved away for the test, then put back.

    Yields where the private key now is.
    """
    hidden = Path(tempfile.mkdtemp(prefix="apssh-hidden-key-"))
    moved = []
    for path in (testbed.client_key, testbed.client_pubkey):
        target = hidden / path.name
        shutil.move(path, target)
        moved.append((target, path))
    try:
        yield moved[0][0]
    finally:
        for target, path in moved:
            shutil.move(target, path)
        shutil.rmtree(hidden, ignore_errors=True)


# ---------------------------------------------------------------- import_private_key
def test_import_private_key_of_the_client_key_returns_an_sshkey(testbed):
    """import_private_key() of a valid key file returns the asyncssh SSHKey of that key."""
    key = import_private_key(testbed.client_key)
    assert isinstance(key, asyncssh.SSHKey)
    assert blob_of(key) == blob_of_pubfile(testbed.client_pubkey)


def test_import_private_key_expands_tilde(testbed):
    """import_private_key('~/.ssh/id_ed25519') reads the key of the current $HOME."""
    key = import_private_key("~/.ssh/id_ed25519")
    assert key is not None
    assert blob_of(key) == blob_of_pubfile(testbed.client_pubkey)


def test_import_private_key_of_a_missing_file_returns_none(tmp_path, capsys):
    """import_private_key() of a missing file returns None and says why on stderr."""
    missing = tmp_path / "nope"
    assert import_private_key(missing) is None
    assert str(missing) in capsys.readouterr().err


def test_import_private_key_of_a_garbage_file_returns_none(tmp_path, capsys):
    """import_private_key() of a file that is not a key returns None."""
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64 at all !!\n\x00\xff\n")
    assert import_private_key(garbage) is None
    assert str(garbage) in capsys.readouterr().err


def test_import_private_key_with_passphrase_and_no_terminal_returns_none(tmp_path, capsys):
    """A passphrase-protected key without a terminal to ask on gives None and points at ssh-add."""
    key = keygen(tmp_path / "locked", passphrase="secret words")
    assert import_private_key(key) is None
    assert "ssh-add" in capsys.readouterr().err


def test_import_private_key_asks_for_the_passphrase_on_a_terminal(tmp_path):
    """On a terminal, import_private_key() prompts for the passphrase and returns the decrypted key."""
    key = keygen(tmp_path / "locked", passphrase="secret words")
    code = ("import base64, sys; from apssh.keys import import_private_key; "
            f"k = import_private_key({str(key)!r}); "
            "print('KEY', base64.b64encode(k.public_data).decode() if k else None)")
    pid, master = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal and its stdin
        os.execv(sys.executable, [sys.executable, "-c", code])
    output = b""
    try:
        output = _read_until(master, b"passphrase")
        os.write(master, b"secret words\n")
        output += _read_until(master, b"\n", after=b"KEY ")
    finally:
        os.close(master)
        os.waitpid(pid, 0)
    assert b"Enter passphrase" in output
    assert f"KEY {blob_of_pubfile(key.with_suffix('.pub'))}".encode() in output


def _read_until(fd: int, marker: bytes, after: bytes = b"", timeout: float = 20) -> bytes:
    """Read from ``fd`` until ``marker`` shows up (after ``after``, when given)."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            data += chunk
            tail = data.split(after, 1)[1] if after and after in data else (data if not after else b"")
            if marker in tail:
                break
    return data


# ---------------------------------------------------------------- load_agent_keys
def test_load_agent_keys_returns_the_keys_of_a_real_agent(testbed, agent):
    """load_agent_keys(socket) returns the key loaded into a real ssh-agent with ssh-add."""
    agent.add(testbed.client_key)
    keys = load_agent_keys(agent.socket)
    assert [blob_of(key) for key in keys] == [blob_of_pubfile(testbed.client_pubkey)]


def test_load_agent_keys_defaults_to_ssh_auth_sock(testbed, agent, monkeypatch):
    """load_agent_keys() without argument uses $SSH_AUTH_SOCK."""
    agent.add(testbed.client_key)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    assert [blob_of(key) for key in load_agent_keys()] == [blob_of_pubfile(testbed.client_pubkey)]


def test_load_agent_keys_without_agent_returns_empty_list(monkeypatch, tmp_path):
    """No $SSH_AUTH_SOCK, or a socket nobody listens on: load_agent_keys() returns []."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert load_agent_keys() == []
    assert load_agent_keys(str(tmp_path / "no-such-socket")) == []


def test_load_agent_keys_of_an_empty_agent_returns_empty_list(agent):
    """A running agent with no key gives []."""
    assert load_agent_keys(agent.socket) == []


def test_load_agent_keys_inside_a_running_loop(testbed, agent, arun):
    """load_agent_keys() also works when called from a coroutine (inside a running event loop)."""
    agent.add(testbed.client_key)

    async def main():
        return load_agent_keys(agent.socket)

    assert [blob_of(key) for key in arun(main())] == [blob_of_pubfile(testbed.client_pubkey)]


# ---------------------------------------------------------------- load_private_keys
def test_load_private_keys_uses_an_explicit_list_as_is(testbed, agent, monkeypatch, tmp_path):
    """Explicit key files are used exactly (missing ones skipped), even with an agent holding other keys."""
    agent.add(testbed.client_key)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    other = keygen(tmp_path / "other")
    keys = load_private_keys([str(other), str(tmp_path / "missing")])
    assert [blob_of(key) for key in keys] == [blob_of_pubfile(other.with_suffix(".pub"))]


def test_load_private_keys_prefers_agent_keys(testbed, agent, monkeypatch, tmp_path):
    """Without explicit keys, the agent's keys are used, not ~/.ssh/id_ed25519."""
    other = keygen(tmp_path / "other")
    agent.add(other)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    keys = load_private_keys()
    assert [blob_of(key) for key in keys] == [blob_of_pubfile(other.with_suffix(".pub"))]


@pytest.mark.parametrize("with_empty_agent", [False, True], ids=["no-agent", "empty-agent"])
def test_load_private_keys_falls_back_to_default_key_file(testbed, agent, monkeypatch, with_empty_agent):
    """With no agent (or an agent without keys), ~/.ssh/id_ed25519 is loaded."""
    if with_empty_agent:
        monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    else:
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    keys = load_private_keys()
    assert [blob_of(key) for key in keys] == [blob_of_pubfile(testbed.client_pubkey)]


def test_load_private_keys_with_nothing_available_returns_empty_list(no_default_key, monkeypatch):
    """No explicit key, no agent, no default key file: an empty list (the caller reports it)."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert load_private_keys() == []


# ---------------------------------------------------------------- SshNode keys=None, real logins
def run_echo(node) -> list[str]:
    assert Scheduler(SshJob(node, command="echo logged-in"), timeout=30).run() is True
    return node.formatter.stdout()


def test_sshnode_without_keys_logs_in_with_the_agent_only(testbed, agent, no_default_key, monkeypatch):
    """keys=None: with ~/.ssh/id_ed25519 moved away, the key held by a real ssh-agent is used to log in."""
    assert not testbed.client_key.exists()
    agent.add(no_default_key)  # ssh-add reads the key from its hiding place
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    node = make_node(testbed, "node1", formatter=RecordingFormatter())
    assert node.keys is None
    assert run_echo(node) == ["logged-in\n"]


def test_sshnode_without_keys_fails_with_neither_agent_nor_key_file(testbed, no_default_key, monkeypatch):
    """Control: keys=None, no agent and no default key file: the login is refused (SshConnectError)."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    node = make_node(testbed, "node1", formatter=RecordingFormatter(), timeout=10)
    with pytest.raises(SshConnectError) as info:
        run_echo(node)
    assert "permission denied" in str(info.value).lower()


def test_sshnode_without_keys_logs_in_with_the_default_key_file_only(testbed, monkeypatch):
    """keys=None without any agent: ~/.ssh/id_ed25519 is used to log in."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    node = make_node(testbed, "node1", formatter=RecordingFormatter())
    assert run_echo(node) == ["logged-in\n"]


def test_sshnode_with_explicit_key_files_uses_only_them(testbed, monkeypatch, tmp_path, agent):
    """keys=[file]: that key logs in; an unauthorized explicit key is refused even if the agent has a good one."""
    agent.add(testbed.client_key)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    good = make_node(testbed, "node1", formatter=RecordingFormatter(), keys=[str(testbed.client_key)])
    assert run_echo(good) == ["logged-in\n"]
    other = keygen(tmp_path / "unauthorized")
    bad = make_node(testbed, "node1", formatter=RecordingFormatter(), keys=[str(other)], timeout=10)
    with pytest.raises(SshConnectError):
        run_echo(bad)


def test_key_messages_go_to_a_listening_front_end_instead_of_stderr(tmp_path, capsys):
    """With a handler on the 'apssh' logger (a front-end such as apssh-tui), why a key cannot be used
    goes to that handler and not to stderr; a root handler alone leaves it on stderr."""
    import logging

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    missing = tmp_path / "nope"
    front_end, catch_all = Keep(), Keep()
    logging.getLogger().addHandler(catch_all)
    try:
        assert import_private_key(missing) is None
        assert str(missing) in capsys.readouterr().err
        logging.getLogger("apssh").addHandler(front_end)
        try:
            assert import_private_key(missing) is None
        finally:
            logging.getLogger("apssh").removeHandler(front_end)
    finally:
        logging.getLogger().removeHandler(catch_all)
    assert capsys.readouterr().err == ""
    assert len(front_end.messages) == 1 and front_end.messages[0].startswith(f"cannot use private key {missing}: ")


def test_no_passphrase_prompt_while_a_front_end_holds_the_screen(tmp_path):
    """With ask_on_terminal off (apssh-tui sets it while its screen is up), a passphrase-protected key
    on a terminal gives None and points at ssh-add instead of prompting under the screen."""
    key = keygen(tmp_path / "locked", passphrase="secret words")
    code = ("import apssh.keys as keys; keys.ask_on_terminal = False; "
            f"k = keys.import_private_key({str(key)!r}); print('KEY', k)")
    pid, master = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal and its stdin
        os.execv(sys.executable, [sys.executable, "-c", code])
    output = b""
    try:
        output = _read_until(master, b"\n", after=b"KEY ")
    finally:
        os.close(master)
        os.waitpid(pid, 0)
    assert b"Enter passphrase" not in output
    assert b"needs a passphrase, which cannot be asked while the screen is in use" in output
    assert b"ssh-add" in output and b"KEY None" in output

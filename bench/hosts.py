"""Many private OpenSSH hosts on loopback for the benchmarks: one sshd per 16 addresses.

Host ``i`` (0-based) is ``127.0.<1 + i // 250>.<1 + i % 250>`` on port 22, so that every tool
(apssh 0.27 has no port option) reaches it by its bare address. Each sshd serves 16
consecutive addresses with stock per-connection limits (``MaxSessions`` 10); only
``MaxStartups`` is 16 times the stock ``10:30:100``, since one sshd plays 16 hosts.

The remote account is a quiet one: a dedicated user (default ``apsshbench``) with ``/bin/sh``
and an empty home, so that a command costs no login-script time. Needs root (``useradd``, port
22, other users' logins). The client side gets a private HOME (``<base>/home``) with its key in
``.ssh/id_ed25519`` and every host in ``.ssh/known_hosts``, and an OpenSSH client config
(``<base>/ssh_config``, for ``ssh -F``).

The servers run with the hard open-file limit as their soft limit (1000 connections need more
than 1024 descriptors on the server side); clients keep whatever the caller gives them.

Run as a script (root), the module serves hosts for manual work, or compares checkouts:

    python bench/hosts.py serve 250           # 250 hosts until Ctrl-C (profile by hand against them)
    python bench/hosts.py compare --hosts 250 --code ../main [--repeat 3] [--fresh-home]
        # `apssh ... hostname` on 250 hosts, this checkout then each --code checkout, alternated:
        # wall, client CPU, peak RSS, answers (the connection layer's before/after by checkout)
"""

from __future__ import annotations

import argparse
import os
import pwd
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
HOSTS_PER_SSHD = 16
PORT = 22
BENCH_USER = "apsshbench"
DEFAULT_BASE = Path("/tmp/apssh-bench")


class BenchHostsError(RuntimeError):
    """The bench hosts could not be set up; the message says what to do."""


def address(index: int) -> str:
    """The loopback address of host ``index`` (0-based): 127.0.1.1, 127.0.1.2, ... 127.0.2.1 after 250."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


@dataclass
class Server:
    """One sshd serving up to 16 host addresses."""

    index: int
    addresses: list[str]
    directory: Path
    process: subprocess.Popen | None = field(default=None, repr=False)


class BenchHosts:
    """``count`` hosts served by ``ceil(count / 16)`` sshd; a context manager.

    Args:
        count: number of hosts (addresses), at most 250 * 254.
        base: working directory (default /tmp/apssh-bench); keys are kept there between runs.
        user: the quiet remote account, created when missing (default ``apsshbench``).
        start_timeout: seconds for every address to send its SSH banner (default 60).

    Attributes: ``hosts`` (addresses), ``user``, ``home`` (client HOME), ``key`` (client private
    key), ``known_hosts``, ``ssh_config``, ``remote_home`` (the account's home).
    """

    def __init__(self, count: int, base: str | os.PathLike = DEFAULT_BASE, *, user: str = BENCH_USER,
                 start_timeout: float = 60.0):
        if os.geteuid() != 0:
            raise BenchHostsError("the bench hosts need root (a quiet user, port 22 on 127.0.x.y): "
                                  "run make bench as root")
        self.count = count
        self.base = Path(base)
        self.user = user
        self.start_timeout = start_timeout
        self.hosts = [address(i) for i in range(count)]
        self.home = self.base / "home"
        self.key = self.home / ".ssh" / "id_ed25519"
        self.known_hosts = self.home / ".ssh" / "known_hosts"
        self.ssh_config = self.base / "ssh_config"
        self.keys_dir = self.base / "authorized"
        self.host_key = self.base / "host_key"
        self.servers = [Server(i, self.hosts[start:start + HOSTS_PER_SSHD], self.base / "sshd" / f"{i:03d}")
                        for i, start in enumerate(range(0, count, HOSTS_PER_SSHD))]
        self.remote_home: Path | None = None

    def __enter__(self) -> BenchHosts:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- set-up
    def start(self) -> BenchHosts:
        """Create keys, the account and the configs, start every sshd, wait for every banner."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o711)
        (self.home / ".ssh").mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in (self.key, self.host_key):
            if not path.exists():
                subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        self.remote_home = self._ensure_user()
        self.keys_dir.mkdir(exist_ok=True)
        self.keys_dir.chmod(0o711)
        authorized = self.keys_dir / self.user
        authorized.write_text(self.key.with_suffix(".pub").read_text())
        authorized.chmod(0o644)
        host_key_line = " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])
        self.known_hosts.write_text("".join(f"{host} {host_key_line}\n" for host in self.hosts))
        self.ssh_config.write_text(f"""\
Host *
    User {self.user}
    IdentityFile {self.key}
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile {self.known_hosts}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    BatchMode yes
    ConnectTimeout 30
    ControlMaster no
    ControlPath none
    LogLevel ERROR
""")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        busy = [host for host in self.hosts[:1] if _listening(host)]
        if busy:
            raise BenchHostsError(f"{busy[0]}:{PORT} is already in use: another bench still running? "
                                  f"stop it (its sshd listen on 127.0.1.x:22) and retry")
        try:
            for server in self.servers:
                self._launch(server)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _ensure_user(self) -> Path:
        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            home = Path("/home") / self.user
            result = subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/sh", self.user],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise BenchHostsError(f"useradd {self.user} failed: {result.stderr.strip()}") from None
            entry = pwd.getpwnam(self.user)
        home = Path(entry.pw_dir)
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        # with UsePAM no, sshd refuses a locked (!) account even for public keys
        subprocess.run(["usermod", "-p", "*", self.user], check=True, capture_output=True)
        return home

    def _launch(self, server: Server) -> None:
        server.directory.mkdir(parents=True, exist_ok=True)
        config = server.directory / "sshd_config"
        listen = "".join(f"ListenAddress {host}:{PORT}\n" for host in server.addresses)
        config.write_text(f"""\
{listen}HostKey {self.host_key}
PidFile {server.directory}/sshd.pid
AuthorizedKeysFile {self.keys_dir}/%u
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 160:30:1600
PrintMotd no
PrintLastLog no
UseDNS no
Subsystem sftp internal-sftp
LogLevel ERROR
""")
        with open(server.directory / "sshd.log", "wb") as log:
            server.process = subprocess.Popen(
                [SSHD, "-D", "-f", str(config), "-E", str(server.directory / "sshd.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True, preexec_fn=_raise_nofile)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        pending = list(self.hosts)
        while pending:
            for server in self.servers:
                if server.process.poll() is not None:
                    log = (server.directory / "sshd.log").read_text(errors="replace")[-2000:]
                    raise BenchHostsError(f"sshd {server.index} ({server.addresses[0]}...) exited: {log}")
            pending = [host for host in pending if not _banner(host)]
            if pending and time.monotonic() > deadline:
                raise BenchHostsError(f"{len(pending)} hosts not ready after {self.start_timeout}s "
                                      f"(first: {pending[0]})")
            if pending:
                time.sleep(0.05)

    # -- tear-down
    def stop(self) -> None:
        """Stop every sshd and every session they started (only our own processes)."""
        procs = []
        for server in self.servers:
            if server.process is None:
                continue
            try:
                procs += psutil.Process(server.process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            if server.process.poll() is None:
                server.process.terminate()
        for server in self.servers:
            if server.process is not None:
                try:
                    server.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    server.process.kill()
                    server.process.wait()
                server.process = None
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=5)

    # -- helpers for the scenarios
    def hosts_file(self, count: int | None = None) -> Path:
        """A file with the first ``count`` hosts (default all), one per line."""
        count = self.count if count is None else count
        path = self.base / f"hosts-{count}"
        path.write_text("".join(f"{host}\n" for host in self.hosts[:count]))
        return path

    def client_env(self) -> dict[str, str]:
        """The environment of a client tool: the private HOME, no ssh agent."""
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        env["HOME"] = str(self.home)
        return env

    def server_cpu(self) -> float:
        """CPU seconds used so far by every sshd of the bench and the sessions they reaped (a
        login's sshd processes are children of the listener: their time ends up in its
        children's times); the difference around a run is what the run cost the servers."""
        total = 0.0
        for server in self.servers:
            if server.process is None:
                continue
            try:
                times = psutil.Process(server.process.pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    def sshd_pids(self) -> set[int]:
        """Pids of every sshd of the bench and of their sessions."""
        pids = set()
        for server in self.servers:
            if server.process is None:
                continue
            try:
                listener = psutil.Process(server.process.pid)
                pids.add(listener.pid)
                pids.update(child.pid for child in listener.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return pids


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _listening(host: str) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, PORT)) == 0


def _banner(host: str) -> bool:
    try:
        with socket.create_connection((host, PORT), timeout=1.0) as sock:
            ok = sock.recv(64).startswith(b"SSH-")
            sock.sendall(b"SSH-2.0-bench-probe\r\n")
            return ok
    except OSError:
        return False


# -- command line: serve hosts, or compare checkouts on them
def _compare_once(bed: BenchHosts, count: int, command: str, code: str | None, fresh_home: bool) -> dict:
    """One ``apssh -t <count hosts> command`` of this checkout or of ``code``, measured as in make bench."""
    from tools import measure  # noqa: PLC0415 (tools imports nothing from here)

    env = bed.client_env()
    home = None
    if fresh_home:  # the realistic first run: empty known_hosts (accept-new), a usual unused RSA key
        home = Path(tempfile.mkdtemp(prefix="bench-home-"))
        (home / ".ssh").mkdir(mode=0o700)
        shutil.copy(bed.key, home / ".ssh" / "id_ed25519")
        subprocess.run([SSH_KEYGEN, "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f",
                        str(home / ".ssh" / "id_rsa")], check=True)
        env["HOME"] = str(home)
    if code:
        env["PYTHONPATH"] = str(Path(code).resolve())
    argv = [sys.executable, "-c", "import sys; from apssh.cli import apssh_main; sys.argv[0] = 'apssh'; "
            "apssh_main()", "-l", bed.user, "-t", str(bed.hosts_file(count)), command]
    out = bed.base / "compare.out"
    result = measure(argv, env=env, stdout=out, cwd=code or Path(__file__).resolve().parent.parent)
    result["answered"] = sum(1 for line in out.read_text(errors="replace").splitlines() if line.strip())
    if home:
        shutil.rmtree(home, ignore_errors=True)
    return result


def main(argv=None) -> int:
    cli = argparse.ArgumentParser(description="bench hosts: serve them, or compare checkouts on them")
    sub = cli.add_subparsers(dest="action", required=True)
    serve = sub.add_parser("serve", help="start COUNT hosts and keep them until Ctrl-C")
    serve.add_argument("count", type=int)
    compare = sub.add_parser("compare", help="apssh on N hosts: this checkout vs other checkouts")
    compare.add_argument("--hosts", type=int, default=250)
    compare.add_argument("--command", default="hostname")
    compare.add_argument("--code", action="append", default=[],
                         help="another checkout (its directory goes first on PYTHONPATH); repeatable")
    compare.add_argument("--repeat", type=int, default=1)
    compare.add_argument("--fresh-home", action="store_true",
                         help="empty known_hosts and an unused 3072-bit id_rsa in a new HOME per run")
    args = cli.parse_args(argv)
    if args.action == "serve":
        with BenchHosts(args.count) as bed:
            print(f"{args.count} hosts up: {bed.hosts[0]} ... {bed.hosts[-1]}, user {bed.user}, "
                  f"HOME={bed.home}; Ctrl-C to stop", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    codes = [("this checkout", None)] + [(path, path) for path in args.code]
    with BenchHosts(args.hosts) as bed:
        for _ in range(args.repeat):
            for label, code in codes:
                r = _compare_once(bed, args.hosts, args.command, code, args.fresh_home)
                print(f"{label}: {args.hosts} hosts, {r['answered']} answered, rc {r['rc']}: wall {r['wall']:.2f} s, "
                      f"client CPU {r['cpu']:.2f} s, peak RSS {r['maxrss_mb']:.0f} MB, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                if r["rc"] != 0:
                    print(r["stderr"])
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import signal

    def _terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds like Ctrl-C: the servers are stopped

    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())

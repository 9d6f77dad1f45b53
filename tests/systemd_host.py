"""A real systemd host for the Service tests: a Debian tree booted with systemd-nspawn.

Root only (see ../shared/TESTBED.md, section 3). Two steps:

* :func:`provision` builds ONCE a minimal Debian bookworm tree with systemd, dbus and
  openssh-server (``debootstrap --variant=minbase``), cached outside the repository in
  ``/var/cache/apssh-tests/bookworm-systemd`` (``$APSSH_SYSTEMD_ROOTFS`` overrides it).
  The tree is built in a temporary directory next to it, gets a marker file, and is
  renamed when complete: a cache without the right marker is never used, and is rebuilt.
  The packages ``debootstrap`` and ``systemd-container`` are installed with apt-get
  when missing.  About a minute (54 s measured), once per machine.
* :class:`SystemdHost` boots that tree for one test session:
  ``systemd-nspawn -D ROOTFS --boot --register=no --keep-unit --volatile=overlay``.
  ``--volatile=overlay`` puts a tmpfs over the tree, so the cache is never modified
  and several sessions may share it; the session files (root's authorized_keys, a host
  key and an sshd drop-in with ``Port <free port>`` / ``ListenAddress 127.0.0.1``) are
  bind-mounted read-only from a session directory. The container shares the host's
  network, so its sshd listens on a loopback port picked free. :meth:`SystemdHost.start`
  waits until that sshd sends its banner; :meth:`SystemdHost.stop` kills the
  systemd-nspawn process it started, by pid (SIGTERM = clean poweroff, then SIGKILL).

Command line::

    python tests/systemd_host.py provision     # build the cached tree (if not there yet)
    python tests/systemd_host.py boot          # boot it, print how to ssh in, Ctrl-C stops it

The module has no pytest dependency; ``tests/conftest.py`` wraps it in the
``systemd_host`` fixture.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("APSSH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
ROOTFS = Path(os.environ.get("APSSH_SYSTEMD_ROOTFS", "/var/cache/apssh-tests/bookworm-systemd"))
INCLUDE = ("systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "procps", "util-linux")
# the tree is complete (and usable) only once this file exists; its text says what it holds
MARKER = ".apssh-tests-complete"
# bump TREE_VERSION when provision() changes what it builds: older caches are then rebuilt
TREE_VERSION = 2
MARKER_TEXT = f"apssh-tests tree v{TREE_VERSION}: {SUITE} minbase {','.join(INCLUDE)}\n"
HOST_PACKAGES = ("debootstrap", "systemd-container")
# the container's sshd drop-in (read first: Include is at the top of Debian's sshd_config)
DROP_IN = "/etc/ssh/sshd_config.d/apssh-tests.conf"
HOST_KEY = "/etc/ssh/apssh_tests_host_key"
PORT_RANGE = (32100, 32700)  # below the default ephemeral range, away from the testbed's 20000-32000
BOOT_TIMEOUT = 60.0
DEBOOTSTRAP_TIMEOUT = 900.0
# units useless in a test container, masked in the cached tree to boot faster
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
                "systemd-networkd-wait-online.service")


class SystemdHostError(RuntimeError):
    """Provisioning or booting the systemd host failed."""


def _say(log: Callable[[str], None] | None, text: str) -> None:
    if log is not None:
        log(text)


def is_root() -> bool:
    return os.geteuid() == 0


def is_complete(rootfs: Path = ROOTFS) -> bool:
    """Whether ``rootfs`` holds a finished tree (its marker says so)."""
    marker = rootfs / MARKER
    try:
        return marker.read_text() == MARKER_TEXT and (rootfs / "usr/sbin/sshd").exists() \
            and (rootfs / "lib/systemd/systemd").exists()
    except OSError:
        return False


# debootstrap's lines about each single package: left out of the progress shown (kept for errors)
_NOISE = re.compile(r"I: (Retrieving|Validating|Extracting|Unpacking) (?!the )\S")


def _run(argv: list[str], log, timeout: float, what: str, env: dict | None = None) -> None:
    """Run ``argv``; its output goes to ``log`` line by line (progress), a failure raises."""
    _say(log, f"$ {' '.join(argv)}")
    start = time.monotonic()
    lines: list[str] = []
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                env={**os.environ, **(env or {})})
    except OSError as exc:
        raise SystemdHostError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, proc.kill)  # also when it hangs without a word
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if not _NOISE.match(line):
                _say(log, f"  [{time.monotonic() - start:3.0f}s] {line.rstrip()}")
        code = proc.wait()
    finally:
        watchdog.cancel()
    if code != 0:
        tail = "\n".join(lines[-20:])
        raise SystemdHostError(f"{what} failed (exit {code}, {time.monotonic() - start:.0f}s):\n{tail}")


def ensure_host_tools(log=print) -> None:
    """Install debootstrap and systemd-container with apt-get when missing."""
    if shutil.which("debootstrap") and shutil.which("systemd-nspawn"):
        return
    if not is_root():
        raise SystemdHostError(f"debootstrap/systemd-nspawn missing; run as root: apt-get install -y "
                               f"{' '.join(HOST_PACKAGES)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _say(log, f"[systemd-host] installing {' '.join(HOST_PACKAGES)}")
    _run(["apt-get", "update", "-qq"], log, 300, "apt-get update", env)
    _run(["apt-get", "install", "-y", "-qq", *HOST_PACKAGES], log, 300, "apt-get install", env)


def provision(rootfs: Path = ROOTFS, log=print) -> Path:
    """Build the cached tree once (nothing to do when complete); return its path.

    Sessions provisioning at the same time take turns (a lock file next to the tree): the
    second one finds the tree complete.
    """
    rootfs = Path(rootfs)
    if is_complete(rootfs):
        _say(log, f"[systemd-host] cached tree {rootfs} is complete: reused")
        return rootfs
    if not is_root():
        raise SystemdHostError("provisioning the systemd host needs root (debootstrap, systemd-nspawn)")
    ensure_host_tools(log)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    with open(rootfs.parent / f".{rootfs.name}.provisioning", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(rootfs):
            _say(log, f"[systemd-host] cached tree {rootfs} was built meanwhile: reused")
            return rootfs
        _build(rootfs, log)
    return rootfs


def _build(rootfs: Path, log) -> None:
    start = time.monotonic()
    # build next to the final place (same filesystem: the final rename is atomic)
    building = Path(tempfile.mkdtemp(prefix=f".{rootfs.name}.building-", dir=rootfs.parent))
    try:
        building.chmod(0o755)  # the container's "/": mkdtemp makes it 0700, no daemon user could enter it
        _say(log, f"[systemd-host] debootstrap {SUITE} into {building} (about a minute or two, once)")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE,
              str(building), MIRROR], log, DEBOOTSTRAP_TIMEOUT, "debootstrap")
        _customize(building)
        (building / MARKER).write_text(MARKER_TEXT)  # complete: the rename makes it visible at once
        if rootfs.exists():  # an incomplete or outdated tree: replaced
            shutil.rmtree(rootfs)
        building.rename(rootfs)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _say(log, f"[systemd-host] tree ready in {rootfs} ({time.monotonic() - start:.0f}s)")


def _customize(tree: Path) -> None:
    """Make the fresh tree a quick, quiet test host (baked in the cache)."""
    systemd_dir = tree / "etc/systemd/system"
    systemd_dir.mkdir(parents=True, exist_ok=True)
    for unit in MASKED_UNITS:
        link = systemd_dir / unit
        if not link.exists() and not link.is_symlink():
            link.symlink_to("/dev/null")
    # root's authorized_keys is bind-mounted there per session
    (tree / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    (tree / "etc/hostname").write_text("apssh-systemd\n")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(tries: int = 200) -> int:
    """A loopback port nobody listens on (the container shares the host's network)."""
    import random
    for _ in range(tries):
        port = random.randint(*PORT_RANGE)
        if _port_free(port):
            return port
    raise SystemdHostError(f"no free port in {PORT_RANGE}")


def banner(port: int, timeout: float = 1.0) -> bytes:
    """First line sent by the server on 127.0.0.1:``port``, or b"" when none yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
            return data
    except OSError as exc:
        if exc.errno not in (None, errno.ECONNREFUSED, errno.ECONNRESET):
            raise
        return b""


class SystemdHost:
    """One boot of the cached tree, reachable as root@127.0.0.1:``port`` with ``client_pubkey``'s key."""

    def __init__(self, base: str | os.PathLike, client_pubkey: str | os.PathLike, *,
                 rootfs: Path = ROOTFS, log=print):
        self.base = Path(base)
        self.client_pubkey = Path(client_pubkey)
        self.rootfs = Path(rootfs)
        self.log = log
        self.address = "127.0.0.1"
        self.port: int | None = None
        self.user = "root"
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.console_path = self.base / "console.log"
        self.host_key_path = self.base / "host_key"
        self.boot_seconds: float | None = None

    # -- what tests use
    @property
    def known_hosts_entry(self) -> str:
        kind, blob, *_ = (self.base / "host_key.pub").read_text().split()
        return f"[{self.address}]:{self.port} {kind} {blob}"

    def console_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.console_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- lifecycle
    def _prepare(self) -> list[str]:
        """Session files (bind-mounted read-only into the container); return the nspawn options."""
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.host_key_path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "apssh-systemd-host",
                            "-f", str(self.host_key_path)], check=True, stdin=subprocess.DEVNULL)
        keys = self.base / "authorized_keys"
        keys.write_text(self.client_pubkey.read_text())
        keys.chmod(0o600)
        drop_in = self.base / "sshd.conf"
        drop_in.write_text(f"""# written by tests/systemd_host.py for one test session
Port {self.port}
ListenAddress 127.0.0.1
HostKey {HOST_KEY}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxStartups 1000:30:2000
""")
        return [f"--bind-ro={self.host_key_path}:{HOST_KEY}",
                f"--bind-ro={keys}:/root/.ssh/authorized_keys",
                f"--bind-ro={drop_in}:{DROP_IN}"]

    def start(self, timeout: float = BOOT_TIMEOUT, attempts: int = 3) -> SystemdHost:
        """Boot the container and wait until its sshd answers; raise SystemdHostError if it does not."""
        if not is_complete(self.rootfs):
            raise SystemdHostError(f"{self.rootfs} is not a provisioned tree (run provision() first)")
        for attempt in range(1, attempts + 1):
            self.port = pick_port()
            self._launch()
            try:
                self._wait_ready(timeout)
                return self
            except SystemdHostError:
                console = self.console_tail()
                self.stop()
                if attempt == attempts or "Address already in use" not in console:
                    raise
                _say(self.log, f"[systemd-host] port {self.port} taken meanwhile, another one")
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        options = self._prepare()
        argv = [shutil.which("systemd-nspawn") or "systemd-nspawn", "--quiet", "-D", str(self.rootfs),
                "--boot", "--register=no", "--keep-unit", "--volatile=overlay",
                f"--machine=apssh-systemd-{os.getpid()}", "--console=pipe", *options]
        _say(self.log, f"[systemd-host] booting: {' '.join(argv)}")
        with open(self.console_path, "wb") as console:
            # own session: a Ctrl-C in the terminal reaches pytest, not the container
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.process.pid
        self._started_at = time.monotonic()

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None and self.port is not None
        deadline = self._started_at + timeout
        while True:
            if self.process.poll() is not None:
                raise SystemdHostError(f"systemd-nspawn exited with code {self.process.returncode} before "
                                       f"sshd answered; console tail:\n{self.console_tail()}")
            if banner(self.port).startswith(b"SSH-"):
                self.boot_seconds = time.monotonic() - self._started_at
                _say(self.log, f"[systemd-host] sshd answers on 127.0.0.1:{self.port} "
                               f"after {self.boot_seconds:.1f}s (nspawn pid {self.pid})")
                return
            if time.monotonic() > deadline:
                raise SystemdHostError(f"the container's sshd did not answer on port {self.port} within "
                                       f"{timeout:.0f}s; console tail:\n{self.console_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        """Kill the systemd-nspawn we started (SIGTERM: clean poweroff; SIGKILL after ``timeout``)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _say(self.log, f"[systemd-host] nspawn pid {proc.pid} still there after {timeout:.0f}s: SIGKILL")
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> SystemdHost:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("provision", "boot"))
    parser.add_argument("--rootfs", type=Path, default=ROOTFS, help=f"cached tree (default {ROOTFS})")
    parser.add_argument("--pubkey", type=Path, default=Path.home() / ".ssh/id_ed25519.pub",
                        help="public key allowed to log in as root (boot)")
    args = parser.parse_args(argv)
    try:
        provision(args.rootfs)
        if args.action == "boot":
            # Ctrl-C, or TERM from whoever started us, stops the container (even when run in the background)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            with tempfile.TemporaryDirectory(prefix="apssh-systemd-host-") as base:
                with SystemdHost(base, args.pubkey, rootfs=args.rootfs) as host:
                    print(f"ssh -p {host.port} -o StrictHostKeyChecking=no root@127.0.0.1   "
                          f"(Ctrl-C stops the container)")
                    try:
                        host.process.wait()
                    except KeyboardInterrupt:
                        pass
    except SystemdHostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

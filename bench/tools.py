"""The tools compared, how each is invoked, and how one run of a tool is measured.

A run is one process tree started with the soft open-file limit of a fresh login (1024) and
reaped with ``wait4``: wall time, client CPU (user + system of the tool and every descendant it
waited for, e.g. the ssh processes under xargs) and peak RSS (the largest single process of the
tree: "per process" for the tools that fork one ssh per host).

The peers live in their own venv, ``bench/.peers`` (apssh 0.27.0, parallel-ssh, ClusterShell),
installed by :func:`ensure_peers`; OpenSSH is the system's ``ssh``.
"""

from __future__ import annotations

import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECT_BIN = Path(sys.executable).parent  # the project's venv (make bench runs with it)
PEERS = BENCH / ".peers"
PEER_PACKAGES = ["apssh==0.27.0", "parallel-ssh", "ClusterShell"]
# a fresh login's soft limit: 1000 hosts must work with it
CLIENT_NOFILE = 1024
# parallelism of OpenSSH driven by xargs (parallel-ssh's default pool size)
XARGS_PARALLEL = 100

OURS = "apssh-tui"
APSSH027 = "apssh 0.27"
PSSH = "parallel-ssh"
OPENSSH = "ssh (xargs -P)"
CLUSH = "clush"
# this project with uvloop hidden (when it is installed): the before/after of the `fast` extra
OURS_ASYNCIO = "apssh-tui (asyncio loop)"
# this project with no connection window (-w 0, apssh 0.27's default), to choose the default
OURS_NO_WINDOW = "apssh-tui (-w 0)"
ALL_TOOLS = [OURS, APSSH027, PSSH, OPENSSH, CLUSH, OURS_ASYNCIO, OURS_NO_WINDOW]
DEFAULT_TOOLS = [OURS, APSSH027, PSSH, OPENSSH, CLUSH]


@dataclass
class Run:
    """One measured run of one tool."""

    scenario: str
    param: str
    tool: str
    round: int
    wall: float = 0.0
    cpu: float = 0.0
    maxrss_mb: float = 0.0
    rc: int = 0
    failures: int | None = None
    extra: dict = field(default_factory=dict)
    error: str = ""

    def __post_init__(self) -> None:
        # the machine's 1-minute load when the run ended (other work shares the cores)
        self.extra.setdefault("load", os.getloadavg()[0])

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_peers(quiet: bool = True) -> Path:
    """Create bench/.peers with the peer tools if missing; returns its bin directory."""
    marker = PEERS / ".installed"
    if not marker.exists():
        subprocess.run(["python3", "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEERS / "bin" / "pip"), "install", *(["-q"] if quiet else []), *PEER_PACKAGES],
                       check=True)
        marker.write_text(" ".join(PEER_PACKAGES) + "\n")
    return PEERS / "bin"


def versions() -> dict[str, str]:
    """Versions of every tool compared, and of the Python libraries that matter."""
    def pip_version(pip: Path, name: str) -> str:
        out = subprocess.run([str(pip), "show", name], capture_output=True, text=True).stdout
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Version:")), "?")

    ours_pip = PROJECT_BIN / "pip"
    peers_pip = PEERS / "bin" / "pip"
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    result = {
        "apssh-tui": subprocess.run([str(PROJECT_BIN / "apssh"), "--version"], capture_output=True,
                                    text=True).stdout.strip(),
        "asyncssh (apssh-tui)": pip_version(ours_pip, "asyncssh"),
        "uvloop (apssh-tui)": pip_version(ours_pip, "uvloop"),
        "apssh": pip_version(peers_pip, "apssh"),
        "asyncssh (apssh 0.27)": pip_version(peers_pip, "asyncssh"),
        "parallel-ssh": pip_version(peers_pip, "parallel-ssh"),
        "ssh2-python": pip_version(peers_pip, "ssh2-python"),
        "ClusterShell": pip_version(peers_pip, "ClusterShell"),
        "OpenSSH": ssh,
        "Python": sys.version.split()[0],
    }
    return result


def machine() -> dict[str, str]:
    """nproc, CPU model, kernel, memory, load at the time of the call."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"nproc": str(os.cpu_count()), "cpu": model, "kernel": os.uname().release,
            "memory": f"{int(mem) // 1024} MiB", "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def _limit_nofile(nofile: int):
    def apply() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
    return apply


def measure(argv: list[str], *, env: dict, stdout: str | os.PathLike | None = None, timeout: float = 900,
            nofile: int = CLIENT_NOFILE, cwd: str | os.PathLike | None = None) -> dict:
    """Run ``argv`` to completion; returns wall, cpu, maxrss_mb, rc and the tail of stderr.

    ``stdout`` is a file to write the tool's output to (default /dev/null). The process group
    is killed after ``timeout`` seconds (rc then -9).
    """
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
                                preexec_fn=_limit_nofile(nofile), start_new_session=True)
        timer = threading.Timer(timeout, lambda: _killpg(proc.pid))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if out is not subprocess.DEVNULL:
            out.close()
        err.seek(0)
        tail = err.read()[-3000:].decode(errors="replace")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024,
            "rc": proc.returncode, "stderr": tail}


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def fanout_argv(tool: str, bed, hosts_file: Path, command: str, out_dir: Path | None = None) -> list[str]:
    """The command line of ``tool`` running ``command`` on every host of ``hosts_file``.

    Each tool runs with its own defaults (window, fan-out), as a new user would; only the
    login, the key and (for OpenSSH) the client config are given.
    """
    peers = PEERS / "bin"
    if tool in (OURS, APSSH027, OURS_ASYNCIO, OURS_NO_WINDOW):
        apssh = [str(PROJECT_BIN / "apssh")] if tool in (OURS, OURS_NO_WINDOW) else [str(peers / "apssh")]
        if tool == OURS_NO_WINDOW:
            apssh += ["-w", "0"]
        if tool == OURS_ASYNCIO:
            apssh = [str(PROJECT_BIN / "python"), "-c", "import sys; sys.modules['uvloop'] = None; "
                     "sys.argv[0] = 'apssh'; from apssh_tui.commands import apssh_main; apssh_main()"]
        argv = [*apssh, "-l", bed.user, "-k", str(bed.key), "-t", str(hosts_file)]
        if out_dir is not None:
            argv += ["-o", str(out_dir)]
        return [*argv, *shlex.split(command)]
    if tool == PSSH:
        argv = [str(peers / "python"), str(BENCH / "peer_pssh.py"), "--hosts-file", str(hosts_file),
                "--user", bed.user, "--key", str(bed.key)]
        if out_dir is not None:
            argv += ["--out-dir", str(out_dir)]
        return [*argv, command]
    if tool == OPENSSH:
        # xargs stops at the first command exiting with 255 (what ssh returns when it cannot
        # connect): a tiny sh turns that into 1, so that one unreachable host stops nothing
        ssh = f"ssh -F {shlex.quote(str(bed.ssh_config))} \"$1\" {shlex.quote(command)}"
        redirect = f" > {shlex.quote(str(out_dir))}/\"$1\"" if out_dir is not None else ""
        script = f"{ssh}{redirect}; status=$?; [ $status = 255 ] && exit 1; exit $status"
        return ["xargs", "-P", str(XARGS_PARALLEL), "-a", str(hosts_file), "-I{}", "sh", "-c", script, "sh", "{}"]
    if tool == CLUSH:
        return [str(peers / "clush"), "--hostfile", str(hosts_file), "-l", bed.user,
                "-o", f"-F {bed.ssh_config}", command]
    raise ValueError(f"unknown tool {tool!r}")


def copy_argv(tool: str, bed, host: str, direction: str, local: Path, remote: str) -> list[str]:
    """Command line copying one file: ``direction`` "push" (local -> host:remote) or "pull"."""
    peers = PEERS / "bin"
    if tool in (OURS, APSSH027):
        bindir = PROJECT_BIN if tool == OURS else peers
        prog = "appush" if direction == "push" else "appull"
        argv = [str(bindir / prog), "-l", bed.user, "-k", str(bed.key), "-t", host]
        return argv + ([str(local), f"@:{remote}"] if direction == "push" else [f"@:{remote}", str(local)])
    if tool == "scp":
        argv = ["scp", "-q", "-F", str(bed.ssh_config)]
        spec = f"{bed.user}@{host}:{remote}"
        return argv + ([str(local), spec] if direction == "push" else [spec, str(local)])
    raise ValueError(f"unknown tool {tool!r}")

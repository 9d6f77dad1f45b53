"""LocalNode: Run, RunScript and RunString on this machine, with the same streaming of output."""

from __future__ import annotations

import asyncio
import os
import textwrap

import psutil
import pytest
from helpers import RecordingFormatter, run_jobs
from testbed import wait_for

from apssh import (
    Capture,
    ColonFormatter,
    CommandFailedError,
    LocalNode,
    Pull,
    Push,
    Run,
    RunScript,
    RunString,
    SshJob,
    Variables,
)
from apssh.formatters import STDERR, STDOUT

OUT_AND_ERR = "echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2"


def local_node() -> LocalNode:
    """A LocalNode whose formatter records everything."""
    return LocalNode(formatter=RecordingFormatter())


def test_local_run_streams_stdout_and_stderr_apart():
    """A local Run hands its lines to the formatter, stdout and stderr kept apart."""
    node = local_node()
    assert run_jobs(SshJob(node, commands=Run(OUT_AND_ERR)))
    assert node.formatter.stdout() == ["out-1\n", "out-2\n"]
    assert node.formatter.stderr() == ["err-1\n", "err-2\n"]
    assert {datatype for datatype, _ in node.formatter.records} == {STDOUT, STDERR}


def test_local_run_default_formatter_prints_localnode(capsys):
    """With the default ColonFormatter, local output is printed as LOCALNODE:line (apssh 0.27's
    host name), stderr on stderr."""
    node = LocalNode()
    assert isinstance(node.formatter, ColonFormatter)
    assert run_jobs(SshJob(node, commands=Run("echo", "hello")))
    assert run_jobs(SshJob(node, commands=Run("echo oops >&2")))
    out, err = capsys.readouterr()
    assert out == "LOCALNODE:hello\n"
    assert err == "LOCALNODE:oops\n"


def test_local_runscript(tmp_path):
    """RunScript runs a local script through a 0700 copy, with args and includes beside it."""
    script = tmp_path / "local.sh"
    script.write_text(textwrap.dedent("""\
        #!/bin/sh
        dir=$(dirname "$0")
        echo "mode=$(stat -c %a "$0") args=$*"
        cat "$dir/inc.txt"
        echo "to-stderr" >&2
        """))
    script.chmod(0o755)
    include = tmp_path / "inc.txt"
    include.write_text("included\n")
    node = local_node()
    assert run_jobs(SshJob(node, commands=RunScript(script, "a", 1, includes=[include])))
    assert node.formatter.stdout() == ["mode=700 args=a 1\n", "included\n"]
    assert node.formatter.stderr() == ["to-stderr\n"]


def test_local_runstring():
    """RunString runs its body locally with its args, under its remote_name."""
    node = local_node()
    body = '#!/bin/sh\necho "$(basename "$0")" "$@"\necho e >&2\n'
    assert run_jobs(SshJob(node, commands=RunString(body, "x", "y", remote_name="named.sh")))
    assert node.formatter.stdout() == ["named.sh x y\n"]
    assert node.formatter.stderr() == ["e\n"]


def test_local_capture():
    """capture works locally for Run and RunString (stdout only, without the final newline)."""
    env = Variables()
    node = local_node()
    job = SshJob(node, commands=[Run(OUT_AND_ERR, capture=Capture("run", env)),
                                 RunString("#!/bin/sh\necho one\necho two\n", capture=Capture("string", env))])
    assert run_jobs(job)
    assert env.run == "out-1\nout-2"
    assert env.string == "one\ntwo"


def test_local_exit_codes():
    """A local non-zero exit fails a critical job; a non-critical job returns the code; allowed_exits allows it."""
    with pytest.raises(CommandFailedError) as info:
        run_jobs(SshJob(local_node(), commands=Run("exit 3")))
    assert info.value.retcod == 3
    job = SshJob(local_node(), commands=Run("exit 3"), critical=False)
    run_jobs(job)
    assert job.result() == 3
    assert run_jobs(SshJob(local_node(), commands=Run("exit 3", allowed_exits=[3])))


def test_local_signal_exit():
    """A local command killed by TERM is a failure naming TERM, unless 'TERM' is allowed."""
    with pytest.raises(CommandFailedError, match="TERM"):
        run_jobs(SshJob(local_node(), commands=Run("kill -TERM $$")))
    assert run_jobs(SshJob(local_node(), commands=Run("kill -TERM $$", allowed_exits=["TERM"])))


def test_local_ignore_outputs(tmp_path):
    """ignore_outputs=True runs the command but hands no line to the formatter."""
    node = local_node()
    marker = tmp_path / "ran"
    assert run_jobs(SshJob(node, commands=Run(f"echo visible; echo err >&2; touch {marker}",
                                              ignore_outputs=True)))
    assert marker.exists()
    assert node.formatter.records == []


def _live(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes of ``procs`` still running (zombies count as gone)."""
    alive = []
    for proc in procs:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _find_sleeps(tags: tuple[str, ...]) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] and proc.info["cmdline"][0] == "sleep" and proc.info["cmdline"][-1] in tags:
            found.append(proc)
    return _live(found)


def test_cancel_local_run_kills_process_group(arun):
    """Cancelling a local Run kills its whole process group, a backgrounded grandchild included."""
    # unique to this process: other test sessions may run the same test at the same time
    tags = (f"37.{os.getpid()}1", f"37.{os.getpid()}2")

    async def scenario():
        job = SshJob(local_node(), commands=Run(f"(sleep {tags[1]} &); sleep {tags[0]}"))
        task = asyncio.create_task(job.co_run())
        for _ in range(500):
            if len(_find_sleeps(tags)) == 2:
                break
            await asyncio.sleep(0.01)
        procs = _find_sleeps(tags)
        assert len(procs) == 2, "both sleeps should be running"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return procs

    procs = arun(scenario())
    assert wait_for(lambda: not _live(procs)), _live(procs)


@pytest.mark.parametrize("command", [Push(["a"], "dir"), Pull(["a"], "dir")])
def test_file_transfers_rejected_on_localnode(command):
    """Push or Pull on a LocalNode raises TypeError when the SshJob is built."""
    with pytest.raises(TypeError, match="LocalNode"):
        SshJob(LocalNode(), commands=[Run("true"), command])


def test_localnode_verbose_sets_formatter():
    """LocalNode(verbose=True) makes its formatter verbose; distance is 0."""
    node = LocalNode(verbose=True)
    assert node.formatter.verbose is True
    assert node.distance() == 0

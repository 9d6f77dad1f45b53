"""Run, RunScript, RunString, Push and Pull against the real sshd of the testbed."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from asynciojobs import Scheduler
from helpers import CommandRecorder, RecordingFormatter, known_node, run_jobs

from apssh import (
    Capture,
    ColonFormatter,
    CommandFailedError,
    Deferred,
    Pull,
    Push,
    Run,
    RunScript,
    RunString,
    SshJob,
    SshNode,
    Variables,
)
from apssh.commands import REMOTE_DIR

# a copy directory: ~/.apssh-remote/<random hex>
COPY_DIR = re.compile(r"/\.apssh-remote/([0-9a-f]{16,})$")


def write_script(path: Path, body: str) -> Path:
    """``body`` (dedented) written to ``path`` as an executable script."""
    path.write_text(textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


def captured(testbed, *commands, node_name: str = "node1") -> Variables:
    """Run ``commands`` (each capturing into variable c0, c1...) in one job on ``node_name``."""
    env = Variables()
    node = known_node(testbed, node_name)
    for index, command in enumerate(commands):
        command.capture = Capture(f"c{index}", env)
    assert run_jobs(SshJob(node, commands=list(commands)))
    return env


def remote_listing(testbed, directory: str = "~/" + REMOTE_DIR) -> list[str]:
    """Names in a remote directory, as seen by a Run on node1."""
    env = captured(testbed, Run(f"ls -A {directory} 2>/dev/null; true"))
    return env.c0.split()


# ---------------------------------------------------------------- Run
def test_run_argv_forms_run_the_same_command(testbed):
    """Run('a b c'), Run('a', 'b', c) and Run('a b', c) run the same remote command line."""
    forms = [Run("printf '%s|' -n 1 /etc/hosts"),
             Run("printf", "'%s|'", "-n", 1, "/etc/hosts"),
             Run("printf '%s|' -n", 1, "/etc/hosts")]
    recorder = CommandRecorder()
    env = Variables()
    for index, command in enumerate(forms):
        command.capture = Capture(f"out{index}", env)
    assert run_jobs(SshJob(known_node(testbed, "node1", formatter=recorder), commands=forms))
    assert recorder.commands == ["printf '%s|' -n 1 /etc/hosts"] * 3
    assert env.out0 == env.out1 == env.out2 == "-n|1|/etc/hosts|"


def test_run_label_line():
    """label_line is the label when given, else the command line (Deferred parts as their template)."""
    env = Variables()
    assert Run("tail -n", 1, "/etc/hosts").label_line() == "tail -n 1 /etc/hosts"
    assert Run("tail -n", 1, "/etc/hosts", label="last host").label_line() == "last host"
    assert Run("ping", Deferred("{{peer}}", env)).label_line() == "ping {{peer}}"
    assert SshJob(SshNode("127.0.0.1", port=1), commands=Run("uname", "-a")).text_label() == "uname -a"


def test_run_verbose_announces_without_changing_the_command(testbed):
    """verbose=True announces the command line through the formatter; the command run is the same."""
    quiet, loud = CommandRecorder(), CommandRecorder()
    command = "echo hello 'big   world'"
    assert run_jobs(SshJob(known_node(testbed, "node1", formatter=quiet), commands=Run(command)))
    assert run_jobs(SshJob(known_node(testbed, "node1", formatter=loud), commands=Run(command, verbose=True)))
    assert quiet.announces == []
    assert len(loud.announces) == 1 and command in loud.announces[0]
    assert loud.commands == quiet.commands == [command]
    assert loud.stdout() == quiet.stdout() == ["hello big   world\n"]


def test_run_verbose_prints_on_terminal(testbed, capsys):
    """With a ColonFormatter, a verbose Run prints its command line on stderr."""
    node = known_node(testbed, "node1", formatter=ColonFormatter())
    assert run_jobs(SshJob(node, commands=Run("echo", "visible-output", verbose=True)))
    out, err = capsys.readouterr()
    assert "echo visible-output" in err
    assert out == f"{node.hostname}:visible-output\n"


def test_sshjob_verbose_overrides_commands(testbed):
    """SshJob(verbose=True) turns on the announce of every command."""
    recorder = CommandRecorder()
    job = SshJob(known_node(testbed, "node1", formatter=recorder), commands=[Run("true"), Run("echo x")],
                 verbose=True)
    assert run_jobs(job)
    assert [line.split(": ", 1)[1] for line in recorder.announces] == ["true", "echo x"]


def test_allowed_exits_code(testbed):
    """An exit code listed in allowed_exits counts as success; another one fails the job."""
    assert run_jobs(SshJob(known_node(testbed, "node1"), commands=Run("exit 4", allowed_exits=[4])))
    with pytest.raises(CommandFailedError) as info:
        run_jobs(SshJob(known_node(testbed, "node1"), commands=Run("exit 4", allowed_exits=[3])))
    assert info.value.retcod == 4


def test_allowed_exits_signal(testbed):
    """A command killed by TERM succeeds when 'TERM' is allowed, and fails naming the signal otherwise."""
    assert run_jobs(SshJob(known_node(testbed, "node1"), commands=Run("kill -TERM $$", allowed_exits=["TERM"])))
    with pytest.raises(CommandFailedError) as info:
        run_jobs(SshJob(known_node(testbed, "node1"), commands=Run("kill -TERM $$")))
    assert info.value.retcod.signal == "TERM"
    assert "TERM" in str(info.value)


def test_allowed_exits_signal_and_code_mixed(testbed):
    """allowed_exits=['TERM', 4] (the spec's example) allows both the code and the signal."""
    job = SshJob(known_node(testbed, "node1"), commands=[Run("exit 4", allowed_exits=["TERM", 4]),
                                                       Run("kill -TERM $$", allowed_exits=["TERM", 4])])
    assert run_jobs(job)


@pytest.mark.parametrize("bad, error", [(["NOSUCHSIGNAL"], ValueError), ([1.5], TypeError),
                                        ([True], TypeError), ([None], TypeError)])
def test_allowed_exits_invalid_raises_at_build_time(bad, error):
    """An allowed_exits entry that is neither an exit code nor a signal name raises at build time."""
    with pytest.raises(error, match="allowed_exits"):
        Run("true", allowed_exits=bad)
    with pytest.raises(error, match="allowed_exits"):
        RunString("#!/bin/sh\ntrue\n", allowed_exits=bad)


def test_run_capture_stores_stdout(testbed):
    """capture=Capture('v', env) stores the command's stdout, without its final newline, in env.v."""
    env = Variables()
    job = SshJob(known_node(testbed, "node1"),
                 commands=Run("echo first; echo err >&2; echo second", capture=Capture("v", env)))
    assert run_jobs(job)
    assert env.v == "first\nsecond"


def test_capture_sees_only_its_own_command(testbed, tmp_path):
    """A capture holds only its command's output while another job prints a lot on the same node."""
    flags = tmp_path
    env = Variables()
    recorder = RecordingFormatter()
    node = known_node(testbed, "node1", formatter=recorder)
    wait = "n=0; while [ ! -e {flag} ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done"
    # the captured command prints, lets the noisy one print 3000 lines, then prints again
    mine = Run(f"echo mine-1; touch {flags}/go; {wait.format(flag=flags / 'noisy-done')}; echo mine-2",
               capture=Capture("mine", env))
    noisy = Run(f"{wait.format(flag=flags / 'go')}; seq 1 3000 | sed s/^/other-/; touch {flags}/noisy-done")
    assert Scheduler(SshJob(node, commands=mine), SshJob(node, commands=noisy), timeout=30).run()
    assert env.mine == "mine-1\nmine-2"
    stdout = recorder.stdout()
    assert len(stdout) == 3002
    # the noisy lines really were printed while the captured command ran
    assert stdout.index("mine-1\n") < stdout.index("other-1\n") < stdout.index("other-3000\n") \
        < stdout.index("mine-2\n")


def test_run_x11_sets_remote_display(testbed, monkeypatch):
    """With x11=True the remote command sees a DISPLAY (forwarded by sshd); without, it sees none."""
    monkeypatch.setenv("DISPLAY", ":0")
    env = captured(testbed, Run("echo ${DISPLAY:-none}", x11=True), Run("echo ${DISPLAY:-none}"))
    assert re.fullmatch(r"localhost:\d+\.0", env.c0), env.c0
    assert env.c1 == "none"


def test_runstring_x11_sets_remote_display(testbed, monkeypatch):
    """RunString(x11=True) also runs its script with a forwarded DISPLAY."""
    monkeypatch.setenv("DISPLAY", ":0")
    env = captured(testbed, RunString("#!/bin/sh\necho ${DISPLAY:-none}\n", x11=True))
    assert re.fullmatch(r"localhost:\d+\.0", env.c0), env.c0


def test_run_x11_without_local_display_says_why(testbed, monkeypatch):
    """x11=True with no local DISPLAY fails with an error that names DISPLAY."""
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(CommandFailedError, match="DISPLAY"):
        run_jobs(SshJob(known_node(testbed, "node1"), commands=Run("true", x11=True)))


# ---------------------------------------------------------------- RunScript
INSPECT_SCRIPT = """\
    #!/bin/sh
    dir=$(dirname "$0")
    echo "mode=$(stat -c %a "$0")"
    echo "dirmode=$(stat -c %a "$dir")"
    echo "dir=$(cd "$dir" && pwd)"
    echo "home=$HOME"
    echo "args=$*"
    echo "files=$(ls -A "$dir" | tr '\\n' ' ')"
"""


def parse_keys(text: str) -> dict[str, str]:
    """``key=value`` lines as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines())


def test_runscript_runs_a_private_copy_with_includes(testbed, tmp_path):
    """RunScript runs a 0700 copy in ~/.apssh-remote/<random>/, includes beside it, with its args."""
    script = write_script(tmp_path / "inspect.sh", INSPECT_SCRIPT)
    include1, include2 = tmp_path / "data1.txt", tmp_path / "data2.cfg"
    include1.write_text("1\n")
    include2.write_text("2\n")
    env = captured(testbed, RunScript(script, "arg1", 2, "arg3 arg4", includes=[include1, include2]))
    seen = parse_keys(env.c0)
    assert seen["mode"] == "700"
    assert seen["dirmode"] == "700"
    assert COPY_DIR.search(seen["dir"]), seen["dir"]
    assert seen["dir"].startswith(seen["home"] + "/.apssh-remote/")
    assert seen["args"] == "arg1 2 arg3 arg4"
    assert seen["files"].split() == ["data1.txt", "data2.cfg", "inspect.sh"]


def test_runscript_copy_directory_is_removed(testbed, tmp_path):
    """After a RunScript, its copy directory no longer exists in ~/.apssh-remote."""
    script = write_script(tmp_path / "inspect.sh", INSPECT_SCRIPT)
    env = captured(testbed, RunScript(script))
    random_name = COPY_DIR.search(parse_keys(env.c0)["dir"]).group(1)
    listing = remote_listing(testbed)
    assert random_name not in listing


def test_runscript_copy_directory_removed_after_failure(testbed, tmp_path):
    """A failing RunScript also leaves no copy directory behind."""
    script = write_script(tmp_path / "fail.sh", """\
        #!/bin/sh
        echo "dir=$(cd "$(dirname "$0")" && pwd)"
        exit 7
    """)
    env = Variables()
    with pytest.raises(CommandFailedError):
        run_jobs(SshJob(known_node(testbed, "node1"), commands=RunScript(script, capture=Capture("out", env))))
    random_name = COPY_DIR.search(parse_keys(env.out)["dir"]).group(1)
    assert random_name not in remote_listing(testbed)


def test_parallel_runscripts_of_the_same_script_do_not_collide(testbed, tmp_path):
    """Two simultaneous RunScript of one script on one node use separate copies that survive each other."""
    flags = tmp_path / "flags"
    flags.mkdir()
    # A and B wait for each other; then A waits until B's copy directory is gone and checks its own copy
    script = write_script(tmp_path / "twin.sh", """\
        #!/bin/sh
        me=$1; other=$2; flags=$3
        dir=$(cd "$(dirname "$0")" && pwd)
        echo "dir=$dir"
        echo "$dir" > "$flags/$me.dir"
        n=0; while [ ! -e "$flags/$other.dir" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
        if [ "$me" = A ]; then
            n=0; while [ -d "$(cat "$flags/B.dir")" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
        fi
        test -f "$0" && echo "copy=intact"
    """)
    env = Variables()
    node = known_node(testbed, "node1")
    jobs = [SshJob(node, commands=RunScript(script, "A B", flags, capture=Capture("a", env))),
            SshJob(node, commands=RunScript(script, "B A", flags, capture=Capture("b", env)))]
    assert run_jobs(*jobs)
    seen_a, seen_b = parse_keys(env.a), parse_keys(env.b)
    assert seen_a["dir"] != seen_b["dir"]
    assert not Path(seen_b["dir"]).exists()
    assert seen_a["copy"] == seen_b["copy"] == "intact"


def test_runscript_missing_local_script_names_it(testbed, tmp_path):
    """A RunScript whose local script does not exist fails with an error naming the file."""
    missing = tmp_path / "no-such-script.sh"
    with pytest.raises(CommandFailedError, match="no-such-script.sh"):
        run_jobs(SshJob(known_node(testbed, "node1"), commands=RunScript(missing)))


def test_runscript_label_line(tmp_path):
    """RunScript's label_line shows the script's base name and its arguments (as apssh 0.27)."""
    assert RunScript("../foo.sh", "arg1", 2).label_line() == "RunScript: foo.sh arg1 2"
    assert RunScript("../foo.sh", label="setup").label_line() == "setup"


# ---------------------------------------------------------------- RunString
def test_runstring_body_args_and_remote_name(testbed):
    """RunString runs its body with the args, under the remote_name given."""
    body = '#!/bin/sh\necho "name=$(basename "$0")"\nfor arg in "$@"; do echo "arg=$arg"; done\n'
    env = captured(testbed, RunString(body, "foo", "bar", 2, remote_name="echo-args.sh"))
    assert env.c0.splitlines() == ["name=echo-args.sh", "arg=foo", "arg=bar", "arg=2"]


def test_runstring_copy_is_private_and_removed(testbed):
    """RunString's copy is mode 0700 in a random ~/.apssh-remote directory, removed afterwards."""
    env = captured(testbed, RunString(textwrap.dedent(INSPECT_SCRIPT)))
    seen = parse_keys(env.c0)
    assert seen["mode"] == seen["dirmode"] == "700"
    random_name = COPY_DIR.search(seen["dir"]).group(1)
    assert random_name not in remote_listing(testbed)


def test_runstring_deferred_body_rendered_at_run_time(testbed):
    """A Deferred script body is rendered when the command runs, with a value captured just before."""
    env = Variables()
    node = known_node(testbed, "node1")
    body = Deferred("#!/bin/sh\necho \"body saw {{token}} and $1\"\n", env)
    job = SshJob(node, commands=[Run("echo t0k3n", capture=Capture("token", env)),
                                 RunString(body, "arg", capture=Capture("out", env))])
    assert "token" not in env
    assert run_jobs(job)
    assert env.out == "body saw t0k3n and arg"


def test_runstring_includes(testbed, tmp_path):
    """RunString's includes are copied beside the script."""
    data = tmp_path / "payload.txt"
    data.write_text("payload contents\n")
    env = captured(testbed, RunString('#!/bin/sh\ncat "$(dirname "$0")/payload.txt"\n', includes=[data]))
    assert env.c0 == "payload contents"


def test_runstring_missing_include_names_it(testbed, tmp_path):
    """A missing include file fails the command with an error naming it."""
    with pytest.raises(CommandFailedError, match="absent.txt"):
        run_jobs(SshJob(known_node(testbed, "node1"),
                        commands=RunString("#!/bin/sh\ntrue\n", includes=[tmp_path / "absent.txt"])))


def test_runstring_verbose_does_not_change_what_runs(testbed):
    """A verbose RunString runs the same script the same way (no bash -x), and announces it."""
    quiet, loud = CommandRecorder(), CommandRecorder()
    body = "#!/bin/sh\necho \"$0\" \"$@\"\n"
    assert run_jobs(SshJob(known_node(testbed, "node1", formatter=quiet),
                           commands=RunString(body, "a", remote_name="same.sh")))
    assert run_jobs(SshJob(known_node(testbed, "node1", formatter=loud),
                           commands=RunString(body, "a", remote_name="same.sh", verbose=True)))
    assert without_random(loud.commands) == without_random(quiet.commands) == [".apssh-remote/RANDOM/same.sh a"]
    assert without_random(loud.stdout()) == without_random(quiet.stdout()) == [".apssh-remote/RANDOM/same.sh a\n"]
    assert len(loud.announces) == 1 and "same.sh" in loud.announces[0]
    assert quiet.announces == []


def without_random(lines: list[str]) -> list[str]:
    """``lines`` with the random copy directory names replaced by RANDOM."""
    return [re.sub(r"/[0-9a-f]{16,}/", "/RANDOM/", line) for line in lines]


# ---------------------------------------------------------------- Push / Pull
def test_push_several_files_into_remote_directory(testbed, tmp_path):
    """Push of several local files puts them all into the remote directory."""
    remote = tmp_path / "remote"
    remote.mkdir()
    files = []
    for name in ("a.txt", "b.txt", "c.bin"):
        (tmp_path / name).write_text(f"content of {name}\n")
        files.append(tmp_path / name)
    assert run_jobs(SshJob(known_node(testbed, "node1"), commands=Push(files, str(remote))))
    assert sorted(os.listdir(remote)) == ["a.txt", "b.txt", "c.bin"]
    assert (remote / "b.txt").read_text() == "content of b.txt\n"


def test_push_into_remote_home_relative_path(testbed, tmp_path):
    """A relative remote path in Push is relative to the remote home (checked with a Run there)."""
    (tmp_path / "pushed-relative.txt").write_text("relative\n")
    name = f"apssh-test-{os.getpid()}"
    env = Variables()
    job = SshJob(known_node(testbed, "node1"),
                 commands=[Run(f"mkdir -p ~/{name}"), Push([tmp_path / "pushed-relative.txt"], name),
                           Run(f"cat ~/{name}/pushed-relative.txt; rm -rf ~/{name}", capture=Capture("out", env))])
    assert run_jobs(job)
    assert env.out == "relative"


def test_push_recurse(testbed, tmp_path):
    """Push(recurse=True) copies a whole directory tree."""
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "top.txt").write_text("top\n")
    (tree / "sub" / "deeper" / "leaf.txt").write_text("leaf\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    assert run_jobs(SshJob(known_node(testbed, "node1"), commands=Push([tree], str(remote), recurse=True)))
    assert (remote / "tree" / "top.txt").read_text() == "top\n"
    assert (remote / "tree" / "sub" / "deeper" / "leaf.txt").read_text() == "leaf\n"


def test_push_preserve_keeps_mtime(testbed, tmp_path):
    """Push(preserve=True) keeps the file's mtime; without it the copy gets a fresh one."""
    source = tmp_path / "old.txt"
    source.write_text("old\n")
    os.utime(source, (1_000_000_000, 1_000_000_000))
    kept, fresh = tmp_path / "kept", tmp_path / "fresh"
    kept.mkdir()
    fresh.mkdir()
    assert run_jobs(SshJob(known_node(testbed, "node1"), commands=[Push([source], str(kept), preserve=True),
                                                                 Push([source], str(fresh))]))
    assert (kept / "old.txt").stat().st_mtime == 1_000_000_000
    assert (fresh / "old.txt").stat().st_mtime != 1_000_000_000


def test_pull_single_file_to_new_name(testbed, tmp_path):
    """Pull of one remote file to a new local name creates that file, as cp does."""
    remote = tmp_path / "remote.txt"
    remote.write_text("pulled\n")
    target = tmp_path / "local-copy.txt"
    assert run_jobs(SshJob(known_node(testbed, "node1"), commands=Pull(str(remote), str(target))))
    assert target.is_file()
    assert target.read_text() == "pulled\n"


def test_pull_creates_missing_local_directories(testbed, tmp_path):
    """Pull into a missing local directory tree creates it (several files, or a trailing slash)."""
    sources = []
    for name in ("r1.txt", "r2.txt"):
        (tmp_path / name).write_text(f"{name}\n")
        sources.append(str(tmp_path / name))
    many, single = tmp_path / "new" / "deep" / "dir", tmp_path / "other" / "dir"
    job = SshJob(known_node(testbed, "node1"),
                 commands=[Pull(sources, str(many)), Pull(sources[0], f"{single}/"),
                           Pull(sources[1], str(tmp_path / "x" / "y" / "renamed.txt"))])
    assert run_jobs(job)
    assert sorted(os.listdir(many)) == ["r1.txt", "r2.txt"]
    assert (single / "r1.txt").read_text() == "r1.txt\n"
    assert (tmp_path / "x" / "y" / "renamed.txt").read_text() == "r2.txt\n"


def test_pull_recurse_and_preserve(testbed, tmp_path):
    """Pull(recurse=True, preserve=True) brings a remote tree back with its mtimes, as cp -rp does."""
    tree = tmp_path / "rtree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f.txt").write_text("f\n")
    os.utime(tree / "sub" / "f.txt", (1_100_000_000, 1_100_000_000))
    into, renamed = tmp_path / "existing", tmp_path / "renamed"
    into.mkdir()
    assert run_jobs(SshJob(known_node(testbed, "node1"),
                           commands=[Pull([str(tree)], str(into), recurse=True, preserve=True),
                                     Pull([str(tree)], str(renamed), recurse=True)]))
    kept = into / "rtree" / "sub" / "f.txt"
    assert kept.read_text() == "f\n"
    assert kept.stat().st_mtime == 1_100_000_000
    # a new name: the tree lands as that name (cp -r rtree renamed)
    fresh = renamed / "sub" / "f.txt"
    assert fresh.read_text() == "f\n"
    assert fresh.stat().st_mtime != 1_100_000_000


def test_push_pull_reject_positional_options():
    """SFTP options must be keywords: a stray positional argument is a TypeError at build time."""
    with pytest.raises(TypeError, match="recurse=True"):
        Push(["a"], "dir", True)
    with pytest.raises(TypeError, match="recurse=True"):
        Pull(["a"], "dir", True)


def test_push_pull_label_line():
    """Push and Pull describe their sources and destination."""
    assert Push(["a", "b"], "dir").label_line() == "Push a b -> dir"
    assert Pull("r", "local").label_line() == "Pull r -> local"
    assert Pull("r", "local", label="collect").label_line() == "collect"

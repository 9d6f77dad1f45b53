"""Users' own keys: a keymap file maps binding ids to keys, checked before any screen opens."""

from __future__ import annotations

from asynciojobs import AbstractJob, Scheduler
from tui_support import node, session_of, ticked, until

from apssh.sshjob import SshJob
from apssh_tui.app import ApsshTui, all_bindings
from apssh_tui.cli import main
from apssh_tui.core.keymap import KeymapError, load_keymap
from apssh_tui.widgets.help import HelpScreen

AbstractJob._detect_support_for_unicode()  # before any app: Textual's stdout has no encoding

KNOWN = {binding.id for binding in all_bindings()}


def test_every_binding_has_a_unique_id():
    """Each binding of the app and its panes has an id, and no two share one."""
    ids = [binding.id for binding in all_bindings()]
    assert None not in ids
    assert len(ids) == len(set(ids))


def test_load_keymap_reads_ids_and_keys(tmp_path):
    """A YAML mapping of ids to keys is returned as is (keys stripped)."""
    path = tmp_path / "keys.yaml"
    path.write_text("app.start: z\napp.rerun_failed: ' ctrl+r '\n")

    assert load_keymap(path, KNOWN) == {"app.start": "z", "app.rerun_failed": "ctrl+r"}


def test_load_keymap_refuses_an_unknown_id_naming_it(tmp_path):
    """An id that no binding has is refused; the message names the file, the id and the known ids."""
    path = tmp_path / "keys.yaml"
    path.write_text("app.strat: z\n")

    try:
        load_keymap(path, KNOWN)
    except KeymapError as exc:
        message = str(exc)
    else:
        raise AssertionError("an unknown id was accepted")
    assert str(path) in message and "'app.strat'" in message and "app.start" in message


def test_load_keymap_refuses_what_is_not_a_mapping_of_strings(tmp_path):
    """A list, or a key that is not a string, is refused with the file named."""
    as_list = tmp_path / "list.yaml"
    as_list.write_text("- app.start\n")
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("app.start: 3\n")

    for path in (as_list, bad_key):
        try:
            load_keymap(path, KNOWN)
        except KeymapError as exc:
            assert str(path) in str(exc)
        else:
            raise AssertionError(f"{path.name} was accepted")


def test_remapped_key_starts_the_run_and_help_shows_it(testbed, arun, tmp_path):
    """With app.start mapped to 'z', 'z' starts the run, 's' no longer does, and F1 shows 'z'."""
    job = SshJob(node(testbed, "node1"), command="echo remapped")
    app = ApsshTui(session_of(Scheduler(job, timeout=20), {"probe": job}), keymap={"app.start": "z"})
    seen = {}

    async def main_body():
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("s")
            await ticked(pilot, 3)
            seen["after s"] = app.session.model["probe"].attempts
            await pilot.press("z")
            seen["ran"] = await until(lambda: app.last_result is not None, pilot=pilot)
            await pilot.press("f1")
            await ticked(pilot)
            screen = app.screen
            seen["help"] = screen.bindings_text if isinstance(screen, HelpScreen) else ""

    arun(main_body(), timeout=60)

    assert seen["after s"] == 0
    assert seen["ran"] and app.last_result is True
    assert any(line.startswith("z ") and "id=app.start" in line for line in seen["help"].splitlines())


def test_cli_refuses_a_bad_keymap_before_any_screen(tmp_path, capsys):
    """apssh-tui --keys with an unknown id exits 2 with the file and id named, without opening a screen."""
    keys = tmp_path / "keys.yaml"
    keys.write_text("nope: z\n")

    code = main(["--keys", str(keys), "--replay", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert str(keys) in err and "'nope'" in err

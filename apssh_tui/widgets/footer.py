"""The key footer: Textual's Footer, whose keys are enabled or dimmed in place.

Textual's Footer rebuilds all its key widgets whenever the bindings change, and the screen is
then laid out again (about 0.1 s of CPU here). Starting or ending a run changes only which keys
are enabled; switching between the jobs and output tabs only hides or shows the jobs table's
keys. This footer then dims, enables, hides or shows its existing keys, and rebuilds only when
a key it never had is to be shown (a tab with keys of its own, a remapped key) or the order of
the keys changed.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeysFooter(Footer):
    """A Footer that enables or dims its keys in place when only that changed."""

    _rebuild_pending = False

    def _shown(self) -> list[tuple[str, str, bool]]:
        """(key, action, enabled) of every key the footer would show, in its order."""
        shown, seen = [], set()
        for _, binding, enabled, _ in self.screen.active_bindings.values():
            if binding.show and binding.action not in seen:  # Footer shows one key per action
                seen.add(binding.action)
                shown.append((binding.key, binding.action, enabled))
        return shown

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return  # as Footer: nothing to show now
        keys = list(self.query(FooterKey).exclude(".-command-palette"))
        shown = self._shown()
        position = {(key.key, key.action): index for index, key in enumerate(keys)}
        wanted = [position.get((key, action), -1) for key, action, _ in shown]
        if -1 not in wanted and wanted == sorted(wanted):  # every key is there, in this order
            enabled_at = {index: enabled for index, (_, _, enabled) in zip(wanted, shown, strict=True)}
            for index, widget in enumerate(keys):
                displayed = index in enabled_at
                if widget.display != displayed:  # another tab's keys: hidden, kept for when it is back
                    widget.display = displayed
                if displayed and widget._disabled == enabled_at[index]:  # no rebuild, no new layout
                    widget._disabled = not enabled_at[index]
                    widget.set_class(not enabled_at[index], "-disabled")
        elif not self._rebuild_pending:  # one rebuild for any number of changes before the next frame
            self._rebuild_pending = True
            self.call_after_refresh(self.recompose)

    async def recompose(self) -> None:
        self._rebuild_pending = False
        await super().recompose()


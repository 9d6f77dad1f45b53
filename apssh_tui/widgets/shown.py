"""Whether a widget is on screen: a pane of a tab that is not the active one is not.

A widget that is not on screen must not redraw itself on the app's timer: besides the work,
Textual then lays out the whole widget tree, hidden tabs included, at its next use of the
screen's map (a refresh of a widget not in view invalidates that map).  Panes keep what changed
and redraw when their tab is shown again.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widget import Widget


def shown(widget: Widget) -> bool:
    """Whether ``widget`` and every container up to its screen are displayed (False when it is
    detached: the app is closing)."""
    node = widget
    while not isinstance(node, Screen):
        if node is None or not node.display:  # a hidden tab pane: display none
            return False
        node = node.parent
    return True

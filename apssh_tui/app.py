"""The apssh-tui application: composes the widgets, binds the keys, routes the actions."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from dataclasses import replace
from functools import partial

import graphviz
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.containers import Horizontal
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, Input, Log

from apssh._hops import limit_handshakes

from .core.connections import HANDSHAKES_AT_ONCE
from .core.export import graph_source, render_graph
from .core.jobfilter import JobFilter, find_host
from .core.keyfirst import KeyFirst
from .core.outcome import run_outcome
from .core.output import LibraryMessages
from .core.protocol import SessionLike
from .core.states import PROBLEM_STATES
from .widgets.confirm import ConfirmScreen
from .widgets.details import JobDetails
from .widgets.failures import FailuresTable
from .widgets.footer import KeysFooter
from .widgets.graph import GraphView
from .widgets.help import HelpScreen
from .widgets.jobs import JobsTable
from .widgets.output import OutputPane
from .widgets.prompt import JobsPrompt
from .widgets.scrollbars import keep_scrollbar_drawings
from .widgets.services import ServicesTable
from .widgets.summary import RunSummary
from .widgets.tabbar import Pane, TabBar
from .widgets.topology import TopologyTree

TICK_SECONDS = 0.1
#: allocations between two young garbage collections while a run goes on (Python's default: 700)
GC_YOUNG = 10_000
SAVE_SECONDS = 2.0
RUN_ACTIONS = {"start", "rerun_failed", "rerun_job", "rerun_job_only"}


class ActionsProvider(Provider):
    """Every action (the app's, the jobs table's, the services table's) in the command palette,
    found by its description; a pane's action runs on that pane."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        for target, binding in app.palette_actions():
            score = matcher.match(binding.description)
            if score > 0:
                yield Hit(score, matcher.highlight(binding.description),
                          partial(target.run_action, binding.action), help=f"key: {app.key_of(binding.id)}")


def all_bindings() -> list[Binding]:
    """Every binding of the app and its panes (their ids are what a keymap file names)."""
    return (list(ApsshTui.BINDINGS) + list(JobsTable.BINDINGS) + list(ServicesTable.BINDINGS)
            + list(GraphView.BINDINGS))


class MainScreen(Screen):
    """The app's screen: a focus change repaints the widgets whose look depends on the focus
    (their styles change), not the whole screen.  Textual's Screen repaints all of it: with a
    tab switch, that is a second full frame after the one of the new layout."""

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)


keep_scrollbar_drawings()

#: (id, title) of the tabs, in the order of their keys 1 to 6
TABS = [("jobs", "Jobs"), ("output", "Output"), ("topology", "Topology"), ("services", "Services"),
        ("graph", "Graph"), ("failures", "Failures")]


class ApsshTui(App):
    """Run, watch and steer a scenario (or browse a recorded one)."""

    TITLE = "apssh-tui"
    # below 100 columns the details pane gives its room to the jobs table
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    COMMANDS = App.COMMANDS | {ActionsProvider}
    CSS = """
    #summary { height: 1; background: $primary-background; padding: 0 1; }
    #jobs-area JobsTable { width: 2fr; }
    #jobs-area JobDetails { width: 1fr; border-left: solid $accent; padding: 0 1; }
    Screen.-narrow #jobs-area JobDetails { display: none; }
    #services-table { height: 1fr; }
    #service-log { height: 2fr; border-top: solid $accent; }
    """
    BINDINGS = [
        Binding("s", "start", "Start", id="app.start"),
        Binding("a", "abort", "Abort", id="app.abort"),
        Binding("x", "abort_job", "Abort job", show=False, id="app.abort_job"),
        Binding("r", "rerun_failed", "Re-run", id="app.rerun_failed"),
        Binding("R", "rerun_job", "Re-run job+downstream", show=False, id="app.rerun_job"),
        Binding("J", "rerun_job_only", "Re-run job only", show=False, id="app.rerun_job_only"),
        Binding("n", "next_failed", "Next fail", id="app.next_failed"),
        Binding("o", "open_output", "Output", id="app.open_output"),
        Binding("q", "quit", "Quit", id="app.quit"),  # early: the footer keeps it on 80 columns
        Binding("h", "host_output", "Host output", show=False, id="app.host_output"),
        Binding("i", "interleaved", "All output", show=False, id="app.interleaved"),
        Binding("g", "gathered", "Gathered", id="app.gathered"),
        Binding("slash", "search", "Search", show=False, id="app.search"),
        Binding("question_mark", "find", "Find in output", show=False, id="app.find"),
        Binding("ctrl+f", "filter_jobs", "Filter jobs", show=False, id="app.filter_jobs"),
        Binding("ctrl+g", "goto_host", "Go to host", show=False, id="app.goto_host"),
        Binding("w", "save_output", "Save output", show=False, id="app.save_output"),
        Binding("e", "export_graph", "Export graph", show=False, id="app.export_graph"),
        Binding("1", "tab('jobs')", "Jobs", show=False, id="app.tab_jobs"),
        Binding("2", "tab('output')", "Output", show=False, id="app.tab_output"),
        Binding("3", "tab('topology')", "Topology", show=False, id="app.tab_topology"),
        Binding("4", "tab('services')", "Services", show=False, id="app.tab_services"),
        Binding("5", "tab('graph')", "Graph", show=False, id="app.tab_graph"),
        Binding("6", "tab('failures')", "Failures", show=False, id="app.tab_failures"),
        Binding("f1", "help", "Help", id="app.help"),
    ]

    def __init__(self, session: SessionLike, *, title: str | None = None, autostart: bool = False,
                 keymap: dict[str, str] | None = None, handshakes: int | None = HANDSHAKES_AT_ONCE):
        """``handshakes``: SSH connections set up at once, for the whole process (None: no limit;
        default HANDSHAKES_AT_ONCE, see apssh_tui.core.connections)."""
        super().__init__()
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # no sliding tab underline (a dozen frames of a full screen per tab switch while
            # hosts stream) and no smooth scrolling; a user's TEXTUAL_ANIMATIONS wins
            self.animation_level = "none"
        limit_handshakes(handshakes)
        if keymap:
            self.set_keymap(keymap)
        self.session = session
        self.replay = session.runner is None
        self.autostart = autostart
        self.sub_title = title or ""
        self.last_result: bool | None = None
        self.keys_first = KeyFirst(hold_frames=self._hold_frames)
        self.ticks = 0  # screen updates done (tests and benches wait on it, not on time)
        self._last_save = 0.0

    # -- layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield RunSummary(self.session.model, self.session.connections, id="summary")
        yield TabBar(TABS, "jobs", id="tabs")
        with Pane(id="jobs"):
            with Horizontal(id="jobs-area"):
                yield JobsTable(self.session.model, id="jobs-table")
                yield JobDetails(self.session.model, self.session.store, id="details")
            yield JobsPrompt(id="jobs-prompt")
        with Pane(id="output"):
            yield OutputPane(self.session, id="output-pane")
        with Pane(id="topology"):
            yield TopologyTree(self.session.connections, id="topology-tree")
        with Pane(id="services"):
            yield ServicesTable(self.session.services, id="services-table")
            yield Log(id="service-log", max_lines=2000)
        with Pane(id="graph"):
            yield GraphView(self.session.model, id="graph-view")
        with Pane(id="failures"):
            yield FailuresTable(self.session, id="failures-table")
        # short descriptions and no palette hint (ctrl+p, and the header's icon): on 80 columns
        # the footer still shows s a r n o q
        yield KeysFooter(show_command_palette=False)

    def post_message(self, message) -> bool:
        """Keys first (apssh_tui.core.keyfirst): from a key's arrival to the frame that shows
        it, the hosts' reads and the garbage collector wait.  Not for typing in a text field,
        which keeps its keys from the app's bindings."""
        if (isinstance(message, events.Key) and not message.is_forwarded and self.is_running
                and not self.replay and not isinstance(self.focused, Input)):
            self.keys_first.arrived(message)
        return super().post_message(message)

    async def on_event(self, event: events.Event) -> None:
        # a key comes here twice: from the terminal (then forwarded to the focused widget), and
        # back from that widget, when the app runs its binding
        back = isinstance(event, events.Key) and event.is_forwarded
        await super().on_event(event)
        if back and self.keys_first.holding:
            # back from the focused widget, its binding ran here: on screen after the refresh
            self.keys_first.handled(event)
            if not self.call_after_refresh(self.keys_first.on_screen, event):
                self.keys_first.on_screen(event)

    def on_mount(self) -> None:
        self.jobs_table = self.query_one(JobsTable)
        self.details = self.query_one(JobDetails)
        self.summary = self.query_one(RunSummary)
        self.output = self.query_one(OutputPane)
        self.topology = self.query_one(TopologyTree)
        self.graph = self.query_one(GraphView)
        self.failures = self.query_one(FailuresTable)
        self.tabs = self.query_one(TabBar)  # kept: a modal screen on top hides it from query_one
        self.panes = {pane.id: pane for pane in self.query(Pane)}
        for tab, pane in self.panes.items():
            pane.display = tab == self.tabs.active
        self.session.model.subscribe(lambda record: self.graph.mark_dirty())
        self.session.model.subscribe(lambda record: self.jobs_table.mark_dirty(record.key))
        self.session.model.subscribe(lambda record: self.details.changed(record.key))
        self.session.connections.subscribe(lambda connection: self.topology.mark_dirty(connection.key))
        # the library's messages (keys...) in the output, not on stderr under the screen
        self._library_messages = LibraryMessages(self.session.store).attach()
        if self.replay:
            self.summary.set_status(f"replay of {self.session.record_dir}")
        else:
            self.summary.set_status(f"ready: press {self.key_of('app.start')} to start")
        self.output.show("all")
        self.set_interval(TICK_SECONDS, self.tick)
        self._keys_straight_in()
        self.jobs_table.focus()
        if self.autostart:
            self.action_start()

    def _hold_frames(self):
        """No frame is drawn until the returned function is called (KeyFirst: from a key's
        arrival to its binding)."""
        self._begin_batch()  # private (Textual 8.2.8): batch_update() without the with block
        ended = False

        def release() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self._end_batch()
            screens = self.screen_stack
            if self._batch_count == 0 and screens:
                # the screen draws what changed meanwhile (_end_batch only prompts the app)
                screens[-1].check_idle()
        return release

    def _keys_straight_in(self) -> None:
        """The terminal's keys reach the app in the loop's next callback, ahead of that turn's
        socket reads (which their hold then cancels), instead of one turn later.

        Textual's drivers hand every event to ``run_coroutine_threadsafe``: its task's first
        step runs a turn after the callback, behind every ready socket's read (up to 60 ms while
        200 hosts stream).  ``post_message`` is what that task runs; called from the loop's
        thread-safe queue it keeps the order of the events."""
        driver = self._driver  # private (Textual 8.2.8): the terminal's driver, None when closed
        if driver is None:
            return
        loop = asyncio.get_running_loop()
        post = self.post_message

        def send_message(message) -> None:
            loop.call_soon_threadsafe(post, message)
        driver.send_message = send_message

    def tick(self) -> None:
        """Coalesced screen update: only what changed since the last tick."""
        self.jobs_table.refresh_rows()
        self.details.refresh_details()
        self.summary.refresh_summary()
        self.output.poll()
        self.topology.refresh_labels()
        self.graph.refresh_states()
        if self.tabs.active == "failures":
            self.failures.refresh_failures()
        now = time.monotonic()
        if not self.replay and self.session.runner.running and now - self._last_save >= SAVE_SECONDS:
            # the record stays current while jobs run: a crash or a kill loses at most this much
            self._last_save = now
            self.session.save()
        self.ticks += 1

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def key_of(self, binding_id: str) -> str:
        """The key bound to ``binding_id`` now (the user's keymap wins), as shown in hints."""
        key = self._keymap.get(binding_id) or next(
            (binding.key for binding in all_bindings() if binding.id == binding_id), "?")
        return self.get_key_display(Binding(key.split(",")[0], ""))

    def palette_actions(self) -> list[tuple[object, Binding]]:
        """(widget to run it on, binding) of every action that applies now."""
        found = []
        for target, bindings in ((self, self.BINDINGS), (self.jobs_table, JobsTable.BINDINGS),
                                 (self.query_one(ServicesTable), ServicesTable.BINDINGS)):
            for binding in bindings:
                if binding.description and target.check_action(binding.action, ()) not in (False, None):
                    found.append((target, binding))
        return found

    # -- which actions apply now
    def check_action(self, action: str, parameters) -> bool | None:
        if self.replay and action in RUN_ACTIONS | {"abort", "abort_job"}:
            return False  # a replay cannot run anything: these keys are not offered at all
        running = not self.replay and self.session.runner.running
        if action in RUN_ACTIONS and running:
            return None
        if action in ("abort", "abort_job") and not running:
            return None
        return True

    def selected(self) -> str | None:
        """The highlighted job (the first member, on a folded sibling group's row)."""
        keys = self.jobs_table.selected_keys()
        return keys[0] if keys else None

    def on_jobs_table_selected(self, message: JobsTable.Selected) -> None:
        self.details.show(message.key, self.jobs_table.groups.get(message.key))
        self.graph.select_job(message.key)

    def on_failures_table_chosen(self, message: FailuresTable.Chosen) -> None:
        """Enter on a cause: its first job in the jobs table, with its details."""
        self.action_tab("jobs")
        self.jobs_table.select(message.keys[0])

    def on_graph_view_selected(self, message: GraphView.Selected) -> None:
        """The jobs table follows the graph's selection (a folded row stands for its members)."""
        table, key = self.jobs_table, message.key
        if key in table.groups and key not in table.folded_groups:
            key = table.groups[key].members[0].key
        elif key in table.group_of and table.group_of[key].key in table.folded_groups:
            key = table.group_of[key].key
        if key in table.groups:
            table.move_cursor(row=table.get_row_index(key))
        elif key in self.session.model.records:
            table.select(key)

    # -- running
    def _launch(self, coroutine_function, description: str) -> None:
        self.summary.set_status(f"{description}...")

        async def work():
            ok = await coroutine_function()
            self.last_result = ok
            self.summary.set_status(run_outcome(description, ok, self.session.runner, self.session.store,
                                                rerun_key=self.key_of("app.rerun_failed")))
            self.refresh_bindings()
        self.run_worker(work(), group="run", exit_on_error=False)
        self.refresh_bindings()

    def action_start(self) -> None:
        # what exists now (the scenario, its nodes, the widgets) lives as long as the app: out of
        # the garbage collector's sight, a full collection during a storm takes a fraction of the time
        gc.freeze()
        # young collections every GC_YOUNG allocations, not 700: the screen's short-lived objects
        # (strips, segments: they live a frame) die before a collection sees them instead of
        # piling up in the oldest generation, whose full collections (50-150 ms each, a few
        # times a second while hosts stream) held keys back
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        self._launch(self.session.run, "run")

    def action_rerun_failed(self) -> None:
        self._launch(self.session.runner.rerun_failed, "re-run of failed jobs")

    def action_rerun_job(self) -> None:
        self._rerun_selected(downstream=True)

    def action_rerun_job_only(self) -> None:
        self._rerun_selected(downstream=False)

    def _rerun_selected(self, downstream: bool) -> None:
        """Re-run the highlighted job, or every job of a folded sibling group."""
        keys = self.jobs_table.selected_keys()
        if not keys:
            return
        runner = self.session.runner
        what = keys[0] if len(keys) == 1 else f"{len(keys)} jobs"
        self._launch(partial(runner.execute, runner.plan(keys, downstream)),
                     f"re-run of {what}" + (" and downstream" if downstream else ""))

    def action_abort(self) -> None:
        """Abort the run: the rows and the status line say so in the next frame; the remote
        commands are stopped after it (cancelling hundreds of jobs would delay that frame)."""
        runner = self.session.runner
        if runner.abort(stop_now=False):
            self.summary.set_status("aborted by user: stopping remote commands, closing connections")
            self.jobs_table.refresh_rows()
            self.details.refresh_details()
            self.call_after_refresh(runner.stop_aborted)

    def action_abort_job(self) -> None:
        keys = self.jobs_table.selected_keys()
        aborted = [key for key in keys if self.session.runner.abort_job(key)]
        if keys and not aborted:
            self.notify(f"{keys[0] if len(keys) == 1 else 'none of these jobs'} is not running", severity="warning")

    # -- navigation
    def action_tab(self, tab: str) -> None:
        shown = self.tabs.active
        if tab != shown:
            self.panes[shown].display = False
            self.panes[tab].display = True
            self.tabs.active = tab
        self._catch_up(tab)
        self._focus_tab(tab)

    def on_tab_bar_chosen(self, event: TabBar.Chosen) -> None:
        self.action_tab(event.tab)

    def _catch_up(self, tab: str) -> None:
        """A pane just shown redraws what changed while it was hidden, before its first frame
        (hidden panes do nothing on the timer: see apssh_tui.widgets.shown)."""
        if tab == "output":
            self.output.poll()
        elif tab == "jobs":
            self.jobs_table.refresh_rows()
            self.jobs_table.refresh()  # the rows that changed while hidden
            self.details.redraw()
        elif tab == "graph":
            self.graph.refresh_states()
        elif tab == "topology":
            self.topology.refresh_labels()

    def _focus_tab(self, tab: str) -> None:
        # a late call for a tab left since must not focus it: focusing activates its pane again
        if not self.screen_stack or self.tabs.active != tab:
            return
        focus = {"jobs": JobsTable, "output": OutputPane, "topology": TopologyTree, "services": ServicesTable,
                 "graph": GraphView, "failures": FailuresTable}
        widget = self.query_one(focus[tab])
        widget = widget.log_widget if tab == "output" else widget
        # at once, not as widget.focus() does (after the next frame): the footer shows the new
        # tab's keys, and the screen is laid out once for the new pane and its keys, not twice
        widget.screen.set_focus(widget)

    def action_next_failed(self) -> None:
        order = self.jobs_table.display_order() or [r.key for r in self.session.model]
        problems = [r.key for r in self.session.model if r.state in PROBLEM_STATES and not r.is_scheduler]
        if not problems:
            self.notify("no failed job")
            return
        current = self.selected()
        start = order.index(current) + 1 if current in order else 0
        ordered = order[start:] + order[:start]
        target = next((key for key in ordered if key in problems), problems[0])
        self.action_tab("jobs")
        self.jobs_table.select(target)

    def action_filter_jobs(self) -> None:
        """Ask for a jobs filter: ``state:failed``, ``node:fit[01-10]``, words (see core.jobfilter)."""
        self.action_tab("jobs")
        self.query_one(JobsPrompt).ask("filter", "filter jobs: state:failed,aborted node:fit[01-10] text "
                                       "(enter applies, empty shows all)", self.jobs_table.job_filter.text)

    def action_goto_host(self) -> None:
        """Ask for a host name and select its first job."""
        self.action_tab("jobs")
        self.query_one(JobsPrompt).ask("host", "go to host (a name, or its beginning)")

    def on_jobs_prompt_answered(self, message: JobsPrompt.Answered) -> None:
        prompt = self.query_one(JobsPrompt)
        if message.value is None:
            self.jobs_table.focus()
            return
        if message.purpose == "filter":
            try:
                self.jobs_table.set_filter(JobFilter.parse(message.value))
            except ValueError as exc:
                self.notify(str(exc), severity="error")
                return
        elif message.purpose == "host":
            order = {key: index for index, key in enumerate(self.jobs_table.display_order())}
            records = sorted(self.session.model, key=lambda r: order.get(r.key, len(order)))
            found = find_host(records, message.value)
            if found is None:
                self.notify(f"no job on a host named {message.value!r}", severity="warning")
                return
            if found.key not in self.jobs_table.display_order():
                self.jobs_table.set_filter(JobFilter())  # the filter hid it
            self.jobs_table.select(found.key)
        prompt.close()
        self.jobs_table.focus()

    def action_open_output(self) -> None:
        if len(self.jobs_table.selected_keys()) > 1:  # a folded sibling group: one view of them all
            self.action_gathered()
            return
        self.output.show("job", self.selected())
        self.action_tab("output")

    def action_host_output(self) -> None:
        """Everything the selected job's host printed, in every job."""
        key = self.selected()
        node = getattr(getattr(self.session.model[key], "job", None), "node", None) if key else None
        host = getattr(node, "hostname", None) or (self.session.model[key].node.split("@")[-1] if key else None)
        if host:
            self.output.show("host", host=host)
            self.action_tab("output")

    def action_interleaved(self) -> None:
        self.output.show("all")
        self.action_tab("output")

    def action_gathered(self) -> None:
        self.output.show("gathered", self.selected())
        self.action_tab("output")

    def action_search(self) -> None:
        self.action_tab("output")
        self.output.open_search()

    def action_find(self) -> None:
        """Search the output without hiding lines: matches highlighted, F3 / shift+F3 to move."""
        self.action_tab("output")
        self.output.open_search(hide=False)

    def _artefact_dir(self):
        from pathlib import Path
        return Path(self.session.record_dir) if self.session.record_dir else Path.cwd()

    def action_save_output(self) -> None:
        target = self._artefact_dir() / f"output-{time.strftime('%H-%M-%S')}.txt"
        path = self.output.save(target)
        self.notify(f"output saved in {path}")

    def action_export_graph(self) -> None:
        """graph.dot, .svg and .png of the jobs with their states (dot runs in a thread)."""
        base = self._artefact_dir() / "graph"
        source = graph_source(self.session.model)

        def work() -> None:
            try:
                render_graph(source, base)
            except graphviz.ExecutableNotFound:
                self.call_from_thread(self.notify, f"graph saved as {base}.dot; install graphviz (dot) "
                                      "for .svg/.png", severity="warning")
                return
            self.call_from_thread(self.notify, f"graph exported: {base}.dot, .svg, .png")
        self.run_worker(work, thread=True, group="export", exit_on_error=False)

    def action_help(self) -> None:
        keymap = self._keymap
        shown = [replace(binding, key=keymap.get(binding.id, binding.key)) for binding in all_bindings()]
        self.push_screen(HelpScreen(shown))

    # -- services
    def on_services_table_action(self, message: ServicesTable.Action) -> None:
        table = self.query_one(ServicesTable)

        async def work():
            table.set_last(message.key, f"{message.action}...")
            try:
                code = await self.session.service_action(message.key, message.action)
            except Exception as exc:  # shown, never fatal: the app stays up
                table.set_last(message.key, f"{message.action}: {exc}")
                return
            table.set_last(message.key, f"{message.action}: exit {code}")
            self.output.show("job", f"service:{message.key}")
            log = self.query_one("#service-log", Log)
            log.clear()
            log.write_lines([f"{host}: {text}" for host in self.session.store.hosts(f"service:{message.key}")
                             for _, text in self.session.store.lines(f"service:{message.key}", host)][-200:])
            log.scroll_end(animate=False, immediate=True)  # the newest line in view
        self.run_worker(work(), group="services", exit_on_error=False)

    def on_unmount(self) -> None:
        self.keys_first.release_all()
        messages = getattr(self, "_library_messages", None)
        if messages is not None:
            messages.detach()

    # -- quitting
    async def action_quit(self) -> None:
        if self.replay or not self.session.runner.running:
            self.exit(self.last_result)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.session.runner.abort()
                self.exit(False)
        self.push_screen(ConfirmScreen("Jobs are running. Abort them and quit?"), answered)

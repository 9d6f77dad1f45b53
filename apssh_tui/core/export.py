"""The job graph as a graphviz file: every job by id and label, filled with its state's colour.

Built from the state model, so a replayed record exports as well as a live run; rendering to
SVG and PNG runs dot (blocking: call :func:`render_graph` from a thread).
"""

from __future__ import annotations

from pathlib import Path

import graphviz

from .states import JobState

#: fill colours of the exported graph, by state (graphviz colour names)
STATE_FILLS = {
    JobState.IDLE: "white", JobState.WAITING: "lightyellow", JobState.RUNNING: "lightblue",
    JobState.DONE: "palegreen", JobState.FAILED: "tomato", JobState.UNREACHABLE: "orchid",
    JobState.TIMED_OUT: "orange", JobState.ABORTED: "lightpink", JobState.SKIPPED: "lightgrey",
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph_source(model) -> str:
    """dot text of ``model``'s jobs: nested schedulers as clusters, requirements as edges."""
    lines = ["digraph jobs {", "  rankdir=TB; compound=true;",
             '  node [shape=box, style="rounded,filled", fontname="monospace"];']

    def emit(parent: str | None, indent: str) -> None:
        for record in model.children(parent):
            label = record.key if record.label in ("", record.key) else f"{record.key}\n{record.label}"
            if record.node:
                label += f"\n{record.node}"
            label += f"\n{record.state.value}"
            if record.is_scheduler and model.children(record.key):
                lines.append(f"{indent}subgraph {_quote('cluster_' + record.key)} {{")
                lines.append(f"{indent}  label={_quote(label)}; style=filled; "
                             f"fillcolor={_quote(STATE_FILLS[record.state])};")
                emit(record.key, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                lines.append(f"{indent}{_quote(record.key)} [label={_quote(label)}, "
                             f"fillcolor={_quote(STATE_FILLS[record.state])}];")

    emit(None, "  ")

    def anchor(key: str, first: bool) -> tuple[str, str | None]:
        """An edge's end: a job, or a job inside a nested scheduler's cluster (with lhead/ltail)."""
        inner = model.children(key)
        if not inner:
            return key, None
        return anchor(inner[0 if first else -1].key, first)[0], "cluster_" + key

    for record in model:
        for required in record.requires:
            tail, ltail = anchor(required, first=False)
            head, lhead = anchor(record.key, first=True)
            extra = [f"ltail={_quote(ltail)}"] if ltail else []
            extra += [f"lhead={_quote(lhead)}"] if lhead else []
            lines.append(f"  {_quote(tail)} -> {_quote(head)}" + (f" [{', '.join(extra)}]" if extra else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(source: str, base: Path) -> list[Path]:
    """Write ``base``.dot, and ``base``.svg and .png when graphviz's dot is installed.

    Returns the files written.  Raises graphviz.ExecutableNotFound after writing the .dot
    file when dot is missing (install graphviz).
    """
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    written = [base.with_suffix(".dot")]
    written[0].write_text(source, encoding="utf-8")
    graph = graphviz.Source(source)
    for fmt in ("svg", "png"):
        graph.render(outfile=str(base.with_suffix(f".{fmt}")), cleanup=True)
        written.append(base.with_suffix(f".{fmt}"))
    return written

"""The job graph drawn in a terminal: boxes in dependency layers, edges in box-drawing characters.

Graphviz (``dot``) places the boxes; this module turns its positions into a grid of character
cells and routes every edge along the gaps between layers, where dot left room for it.  Nothing
here imports Textual or Rich: the widget colours the cells it is given.

Three steps, each one a function:

* :func:`graph_spec` reads the state model and the fold choices (which sibling groups and which
  nested schedulers are folded) into a :class:`GraphSpec`: boxes, edges, frames.  It runs on the
  UI loop and is linear in the number of jobs.
* :func:`compute_layout` runs ``dot -Tjson`` on it and returns a :class:`GraphLayout`: box and
  frame rectangles, and the edge cells.  It blocks (dot may need seconds on a thousand boxes):
  call it from a thread.
* :func:`box_text` gives a box's live text (a group's counts change while it runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import graphviz

from .groups import SiblingGroup, sibling_groups
from .states import JobRecord, JobState

#: points (1/72 inch) per character column in the positions given to dot
POINTS_PER_COLUMN = 7.2
#: zoom levels: rows of a box, rows between layers, the longest box text in columns
ZOOMS = {
    "boxes": {"box_height": 3, "gap": 4, "max_text": 30, "margin": 2},
    "compact": {"box_height": 1, "gap": 3, "max_text": 14, "margin": 1},
}
#: one glyph per state, before a job's name
STATE_GLYPHS = {
    JobState.IDLE: "○", JobState.WAITING: "◌", JobState.RUNNING: "●", JobState.DONE: "✓",
    JobState.FAILED: "✗", JobState.UNREACHABLE: "✗", JobState.TIMED_OUT: "✗", JobState.ABORTED: "⊘",
    JobState.SKIPPED: "–",
}
# room kept in a group's box for its live counts ("100 unreachable")
_COUNT_ROOM = 16

# edge cell directions
UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8
_LINES = {
    UP | DOWN: "│", LEFT | RIGHT: "─", DOWN | RIGHT: "┌", DOWN | LEFT: "┐", UP | RIGHT: "└", UP | LEFT: "┘",
    UP | DOWN | RIGHT: "├", UP | DOWN | LEFT: "┤", DOWN | LEFT | RIGHT: "┬", UP | LEFT | RIGHT: "┴",
    UP | DOWN | LEFT | RIGHT: "┼", UP: "│", DOWN: "│", LEFT: "─", RIGHT: "─",
}
ARROW = "▼"


class GraphLayoutError(RuntimeError):
    """dot is missing or failed; the message says what to install or what dot said."""


# ---------------------------------------------------------------- what to draw
@dataclass
class Box:
    """One box: a job, a folded sibling group, or a folded nested scheduler."""

    key: str              # job key, or group key (``group:<first member>``)
    kind: str             # "job", "group" or "scheduler"
    title: str            # the fixed part of the text
    width: int = 0        # columns, borders included (set by graph_spec)
    frame: str | None = None  # the key of the innermost unfolded scheduler holding it


@dataclass
class Frame:
    """An unfolded nested scheduler: a frame around its jobs."""

    key: str
    title: str
    parent: str | None
    boxes: list[str] = field(default_factory=list)  # every box inside, nested frames' included


@dataclass
class GraphSpec:
    """Boxes, edges between box keys, and frames, ready for dot."""

    zoom: str
    boxes: dict[str, Box]
    edges: list[tuple[str, str]]
    frames: dict[str, Frame]
    visible: dict[str, str]  # every job key -> the key of the box or frame that shows it


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def job_title(record: JobRecord) -> str:
    """``key`` or ``key: label`` when the label says more."""
    return record.key if record.label in ("", record.key) else f"{record.key}: {record.label}"


def graph_spec(model, folded_groups: set[str], expanded: set[str], zoom: str = "boxes",
               groups: dict[str, SiblingGroup] | None = None) -> GraphSpec:
    """What to draw for ``model`` (a StateModel).

    Args:
        folded_groups: keys of the sibling groups shown as one box (see core.groups).
        expanded: keys of the nested schedulers drawn as frames; the others are one box.
        zoom: a key of ZOOMS ("boxes" or "compact").
        groups: the sibling groups (default: computed with core.groups.sibling_groups).
    """
    settings = ZOOMS[zoom]
    groups = sibling_groups(list(model)) if groups is None else groups
    group_of = {member.key: group for group in groups.values() if group.key in folded_groups
                for member in group.members}
    boxes: dict[str, Box] = {}
    frames: dict[str, Frame] = {}
    visible: dict[str, str] = {}

    def add_box(box: Box) -> None:
        text = _shorten(box.title, settings["max_text"])
        box.title = text
        room = _COUNT_ROOM if box.kind == "group" else 0
        box.width = len(text) + 2 + room + (2 if zoom == "boxes" else 0) + 2  # glyph, borders/brackets
        boxes[box.key] = box

    def walk(parent: str | None, frame: str | None, hidden_by: str | None) -> None:
        for record in model.children(parent):
            if hidden_by is not None:
                visible[record.key] = hidden_by
                if record.is_scheduler:
                    walk(record.key, frame, hidden_by)
                continue
            group = group_of.get(record.key)
            if group is not None:
                visible[record.key] = group.key
                if group.key not in boxes:
                    add_box(Box(group.key, "group", f"{group.label} ×{len(group.members)}", frame=frame))
                continue
            visible[record.key] = record.key
            if record.is_scheduler and record.key in expanded and model.children(record.key):
                frames[record.key] = Frame(record.key, _shorten(job_title(record), settings["max_text"]), frame)
                walk(record.key, record.key, None)
            elif record.is_scheduler:
                add_box(Box(record.key, "scheduler", "▸ " + job_title(record), frame=frame))
                walk(record.key, frame, record.key)
            else:
                add_box(Box(record.key, "job", job_title(record), frame=frame))

    walk(None, None, None)
    for box in boxes.values():
        frame = box.frame
        while frame is not None:
            frames[frame].boxes.append(box.key)
            frame = frames[frame].parent

    def entries(key: str) -> list[str]:
        """The jobs an edge into ``key`` really goes to (an unfolded scheduler: its first jobs)."""
        if key not in frames:
            return [key]
        inner = model.children(key)
        return [k for r in inner if not r.requires for k in entries(r.key)]

    def exits(key: str) -> list[str]:
        if key not in frames:
            return [key]
        inner = model.children(key)
        needed = {req for r in inner for req in r.requires}
        return [k for r in inner if r.key not in needed for k in exits(r.key)]

    edges: dict[tuple[str, str], None] = {}
    for record in model:
        for required in record.requires:
            for tail in exits(required):
                for head in entries(record.key):
                    pair = (visible.get(tail, tail), visible.get(head, head))
                    if pair[0] != pair[1] and pair[0] in boxes and pair[1] in boxes:
                        edges[pair] = None
    return GraphSpec(zoom, boxes, list(edges), frames, visible)


def box_text(box: Box, model, groups: dict[str, SiblingGroup]) -> tuple[str, JobState]:
    """A box's text now, and the state that colours it: ``✗ probe ×100  3 failed``."""
    if box.kind == "group":
        group = groups[box.key]
        state = group.state
        counts = group.counts()
        if counts[JobState.DONE] == len(group.members):
            detail = "all done"
        else:
            detail = f"{counts[state]} {state.value}"
        return f"{STATE_GLYPHS.get(state, '?')} {box.title}  {detail}", state
    record = model[box.key]
    return f"{STATE_GLYPHS.get(record.state, '?')} {box.title}", record.state


# ---------------------------------------------------------------- dot
def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_source(spec: GraphSpec) -> str:
    """The spec as a dot graph whose positions map to character cells (see POINTS_PER_COLUMN)."""
    settings = ZOOMS[spec.zoom]
    inch = POINTS_PER_COLUMN / 72
    row_inches = 2 * inch  # a terminal cell is about twice as high as wide
    lines = ["digraph jobs {", "  rankdir=TB; newrank=true; mclimit=0.5;",
             f"  nodesep={settings['margin'] * inch:.3f}; ranksep={settings['gap'] * row_inches:.3f};",
             f"  node [shape=box, fixedsize=true, height={settings['box_height'] * row_inches:.3f}, label=\"\"];"]
    children: dict[str | None, list[str]] = {}
    for frame in spec.frames.values():
        children.setdefault(frame.parent, []).append(frame.key)
    boxes_in: dict[str | None, list[Box]] = {}
    for box in spec.boxes.values():
        boxes_in.setdefault(box.frame, []).append(box)
    cluster_names = {key: f"cluster_{index}" for index, key in enumerate(spec.frames)}

    def emit(frame: str | None, indent: str) -> None:
        for box in boxes_in.get(frame, []):
            lines.append(f"{indent}{_quote(box.key)} [width={(box.width + settings['margin']) * inch:.3f}];")
        for inner in children.get(frame, []):
            title = spec.frames[inner].title
            lines.append(f"{indent}subgraph {cluster_names[inner]} {{ label={_quote(title + '      ')}; "
                         f"margin={2 * POINTS_PER_COLUMN:.1f};")
            emit(inner, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    for tail, head in spec.edges:
        lines.append(f"  {_quote(tail)} -> {_quote(head)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def run_dot(source: str) -> dict:
    """``dot -Tjson`` of ``source``, parsed.

    Raises:
        GraphLayoutError: dot is not installed (install graphviz: ``apt-get install graphviz``),
            or it failed (its message is given).
    """
    try:
        output = graphviz.pipe("dot", "json", source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise GraphLayoutError("the graph view needs graphviz's dot: install graphviz "
                               "(apt-get install graphviz)") from None
    except graphviz.CalledProcessError as exc:
        raise GraphLayoutError(f"dot failed: {exc.stderr.decode(errors='replace').strip() or exc}") from None
    return json.loads(output)


# ---------------------------------------------------------------- from dot positions to cells
@dataclass
class Rect:
    """A rectangle of character cells (row and column of its top-left corner)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.row + self.height - 1

    @property
    def right(self) -> int:
        return self.col + self.width - 1

    def contains(self, row: int, col: int) -> bool:
        return self.row <= row <= self.bottom and self.col <= col <= self.right


@dataclass
class GraphLayout:
    """Where everything goes, in character cells.

    ``cells`` maps (row, col) to the directions of the edge lines through that cell (UP, DOWN,
    LEFT, RIGHT bits); ``edge_cells`` to the indexes (in ``spec.edges``) of those edges;
    ``arrows`` and ``ports`` are the cells just above a box an edge enters, and the cells of a
    box's bottom border an edge leaves from.
    """

    spec: GraphSpec
    boxes: dict[str, Rect]
    frames: dict[str, Rect]
    ranks: dict[str, int]
    cells: dict[tuple[int, int], int] = field(default_factory=dict)
    edge_cells: dict[tuple[int, int], set[int]] = field(default_factory=dict)
    arrows: dict[tuple[int, int], set[int]] = field(default_factory=dict)
    ports: dict[tuple[int, int], set[int]] = field(default_factory=dict)
    height: int = 0
    width: int = 0

    def char(self, row: int, col: int) -> str | None:
        """The edge character at a cell (None: no edge there)."""
        if (row, col) in self.arrows:
            return ARROW
        bits = self.cells.get((row, col))
        return _LINES.get(bits) if bits else None

    def rows_of_boxes(self) -> dict[int, list[str]]:
        """Box keys by the rows they cover."""
        result: dict[int, list[str]] = {}
        for key, rect in self.boxes.items():
            for row in range(rect.row, rect.bottom + 1):
                result.setdefault(row, []).append(key)
        return result

    def reading_order(self) -> list[str]:
        """Box keys top to bottom, left to right."""
        return sorted(self.boxes, key=lambda key: (self.boxes[key].row, self.boxes[key].col))


def _bezier_points(pos: str) -> list[tuple[float, float]]:
    """Points along a dot spline (``e,x,y x,y ...``), sampled finely, from tail to head."""
    controls = []
    end = None
    for part in pos.split():
        if part.startswith(("e,", "s,")):
            x, y = part[2:].split(",")
            if part[0] == "e":
                end = (float(x), float(y))
            continue
        x, y = part.split(",")
        controls.append((float(x), float(y)))
    points = [controls[0]] if controls else []
    for index in range(0, len(controls) - 3, 3):
        p0, p1, p2, p3 = controls[index:index + 4]
        for step in range(1, 9):
            t = step / 8
            a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3
            points.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                           a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    if end is not None:
        points.append(end)
    return points


def _x_at(points: list[tuple[float, float]], y: float) -> float | None:
    """Where the polyline ``points`` crosses height ``y`` (None: it does not)."""
    for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
        if min(y1, y2) <= y <= max(y1, y2):
            if y1 == y2:
                return x1
            return x1 + (x2 - x1) * (y - y1) / (y2 - y1)
    return None


def compute_layout(spec: GraphSpec) -> GraphLayout:
    """Lay ``spec`` out with dot and route its edges in character cells (blocking: use a thread).

    Raises:
        GraphLayoutError: see :func:`run_dot`.
    """
    settings = ZOOMS[spec.zoom]
    box_height, gap = settings["box_height"], settings["gap"]
    if not spec.boxes:
        return GraphLayout(spec, {}, {}, {})
    data = run_dot(dot_source(spec))
    objects = data.get("objects", [])
    centers: dict[str, tuple[float, float]] = {}
    cluster_bb: dict[str, tuple[float, float, float, float]] = {}
    cluster_keys = dict(zip((f"cluster_{index}" for index in range(len(spec.frames))), spec.frames, strict=True))
    for item in objects:
        if "pos" in item and item["name"] in spec.boxes:
            x, y = item["pos"].split(",")
            centers[item["name"]] = (float(x), float(y))
        elif item.get("name") in cluster_keys and "bb" in item:
            cluster_bb[cluster_keys[item["name"]]] = tuple(float(v) for v in item["bb"].split(","))
    rank_ys = sorted({round(y, 1) for _, y in centers.values()}, reverse=True)
    rank_of_y = {y: index for index, y in enumerate(rank_ys)}
    depth = _frame_depths(spec)
    deepest = max(depth.values(), default=-1)
    if spec.frames:  # room for the frames' top lines (with their titles) above the arrows
        gap += 1 + deepest
    top = 1 + (1 + deepest if spec.frames else 0)
    pitch = box_height + gap

    def row_of_rank(rank: int) -> int:
        return top + rank * pitch

    boxes, ranks = {}, {}
    for key, (x, y) in centers.items():
        box = spec.boxes[key]
        rank = rank_of_y[round(y, 1)]
        ranks[key] = rank
        boxes[key] = Rect(row_of_rank(rank), max(0, round(x / POINTS_PER_COLUMN) - box.width // 2),
                          box_height, box.width)
    frames = {}
    for key, frame in spec.frames.items():
        inside = [ranks[box] for box in frame.boxes if box in ranks]
        if not inside or key not in cluster_bb:
            continue
        x1, _, x2, _ = cluster_bb[key]
        below = depth[key]
        first, last = row_of_rank(min(inside)), row_of_rank(max(inside)) + box_height - 1
        frames[key] = Rect(first - 2 - below, round(x1 / POINTS_PER_COLUMN), last - first + 4 + 2 * below,
                           max(4, round((x2 - x1) / POINTS_PER_COLUMN)))
    layout = GraphLayout(spec, boxes, frames, ranks)
    names = {item.get("_gvid"): item.get("name") for item in objects}
    splines = {(names.get(edge.get("tail")), names.get(edge.get("head"))): edge.get("pos", "")
               for edge in data.get("edges", [])}
    for index, edge in enumerate(spec.edges):
        points = _bezier_points(splines[edge]) if splines.get(edge) else []
        _route(layout, index, edge, points, rank_ys, row_of_rank, box_height)
    rects = list(boxes.values()) + list(frames.values())
    layout.height = max(rect.bottom for rect in rects) + 2
    layout.width = max([rect.right for rect in rects] + [col for _, col in layout.cells]) + 3
    return layout


def _frame_depths(spec: GraphSpec) -> dict[str, int]:
    """How many frames are nested inside each frame (0: none)."""
    depth = {key: 0 for key in spec.frames}
    for frame in spec.frames.values():
        level, parent = 1, frame.parent
        while parent is not None:
            depth[parent] = max(depth[parent], level)
            level, parent = level + 1, spec.frames[parent].parent
    return depth


def _route(layout: GraphLayout, index: int, edge: tuple[str, str], points, rank_ys, row_of_rank,
           box_height: int) -> None:
    """Draw one edge: down from the tail's bottom, along the gap below each layer, into the head."""
    tail, head = edge
    source, target = layout.boxes.get(tail), layout.boxes.get(head)
    if source is None or target is None:
        return
    tail_rank, head_rank = layout.ranks[tail], layout.ranks[head]

    def inside(rect: Rect, x: float | None) -> int:
        col = rect.col + rect.width // 2 if x is None else round(x / POINTS_PER_COLUMN)
        return min(max(col, rect.col + 1), rect.right - 1)

    start = inside(source, points[0][0] if points else None)
    end = inside(target, points[-1][0] if points else None)
    if head_rank <= tail_rank:  # dot drew it upwards (a cycle): link the boxes side by side
        return
    path = [(source.bottom if box_height > 1 else source.bottom + 1, start)]
    col = start
    for rank in range(tail_rank + 1, head_rank + 1):
        channel = row_of_rank(rank - 1) + box_height + 1  # the second row of the gap
        if rank == head_rank:
            next_col = end
        else:
            x = _x_at(points, rank_ys[rank]) if points else None
            next_col = col if x is None else round(x / POINTS_PER_COLUMN)
        path.append((channel, col))
        path.append((channel, next_col))
        col = next_col
    path.append((target.row - 1, col))
    for (r1, c1), (r2, c2) in zip(path, path[1:], strict=False):
        _segment(layout, index, r1, c1, r2, c2)
    layout.arrows.setdefault((target.row - 1, col), set()).add(index)
    if box_height > 1:  # the tail's border cell is drawn by the box, as a port
        layout.ports.setdefault((source.bottom, start), set()).add(index)
        layout.cells.pop((source.bottom, start), None)


def _mark(layout: GraphLayout, index: int, row: int, col: int, bits: int) -> None:
    layout.cells[(row, col)] = layout.cells.get((row, col), 0) | bits
    layout.edge_cells.setdefault((row, col), set()).add(index)


def _segment(layout: GraphLayout, index: int, r1: int, c1: int, r2: int, c2: int) -> None:
    if (r1, c1) == (r2, c2):
        return
    if c1 == c2:
        step = 1 if r2 > r1 else -1
        for row in range(r1, r2 + step, step):
            bits = 0
            if row != r1:
                bits |= UP if step > 0 else DOWN
            if row != r2:
                bits |= DOWN if step > 0 else UP
            _mark(layout, index, row, c1, bits)
    else:
        step = 1 if c2 > c1 else -1
        for col in range(c1, c2 + step, step):
            bits = 0
            if col != c1:
                bits |= LEFT if step > 0 else RIGHT
            if col != c2:
                bits |= RIGHT if step > 0 else LEFT
            _mark(layout, index, r1, col, bits)


def nearest(layout: GraphLayout, key: str, direction: str) -> str | None:
    """The box next to ``key`` in ``direction`` ("left", "right", "up", "down"), or None."""
    if key not in layout.boxes:
        order = layout.reading_order()
        return order[0] if order else None
    here = layout.boxes[key]
    center = here.col + here.width / 2
    if direction in ("left", "right"):
        same = sorted((k for k, r in layout.boxes.items() if r.row == here.row), key=lambda k: layout.boxes[k].col)
        position = same.index(key) + (1 if direction == "right" else -1)
        return same[position] if 0 <= position < len(same) else None
    rows = sorted({rect.row for rect in layout.boxes.values()})
    position = rows.index(here.row) + (1 if direction == "down" else -1)
    if not 0 <= position < len(rows):
        return None
    candidates = [k for k, r in layout.boxes.items() if r.row == rows[position]]
    return min(candidates, key=lambda k: (abs(layout.boxes[k].col + layout.boxes[k].width / 2 - center), k))

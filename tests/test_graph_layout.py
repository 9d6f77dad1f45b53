"""The graph layout (apssh_tui.core.graph) on arbitrary DAGs: boxes never overlap, every edge goes
down from its tail to an arrow above its head, and no line runs through a box."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apssh_tui.core.graph import compute_layout, graph_spec
from apssh_tui.core.groups import sibling_groups
from apssh_tui.core.states import JobRecord, StateModel


@st.composite
def dags(draw):
    """A model of 1-25 jobs on a few nodes and labels, each requiring some earlier jobs."""
    count = draw(st.integers(1, 25))
    records = []
    for index in range(count):
        requires = sorted(draw(st.sets(st.integers(0, index - 1), max_size=3))) if index else []
        records.append(JobRecord(key=f"j{index:02d}", job=None, label=draw(st.sampled_from(["probe", "run", "get"])),
                                 node=f"root@fit{draw(st.integers(1, 4))}", requires=[f"j{r:02d}" for r in requires]))
    layer = {}
    for record in records:
        layer[record.key] = 1 + max((layer[r] for r in record.requires), default=-1)
        record.layer = layer[record.key]
    return StateModel.from_records(records)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=dags(), fold=st.booleans(), zoom=st.sampled_from(["boxes", "compact"]))
def test_layout_of_any_dag_keeps_boxes_apart_and_edges_downwards(model, fold, zoom):
    groups = sibling_groups(list(model))
    spec = graph_spec(model, set(groups) if fold else set(), set(), zoom, groups)
    layout = compute_layout(spec)

    assert set(spec.visible) == set(model.records) and set(layout.boxes) == set(spec.boxes)
    cells = {}
    for key, rect in layout.boxes.items():
        for row in range(rect.row, rect.bottom + 1):
            for col in range(rect.col, rect.right + 1):
                assert (row, col) not in cells, f"{key} overlaps {cells[(row, col)]}"
                cells[(row, col)] = key
    assert not set(layout.cells) & set(cells), "a line runs through a box"
    for tail, head in spec.edges:
        source, target = layout.boxes[tail], layout.boxes[head]
        assert source.bottom < target.row
        assert any(row == target.row - 1 and target.col < col < target.right for row, col in layout.arrows)

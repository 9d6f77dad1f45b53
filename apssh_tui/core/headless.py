"""Running a scenario without a screen: progress lines, a summary, an exit status."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .session import Session
from .states import PROBLEM_STATES, JobRecord


def progress_line(record: JobRecord) -> str:
    """``12-00-01 running   j01 probe (root@fit01)``."""
    node = f" ({record.node})" if record.node else ""
    extra = f": {record.error}" if record.error and record.state in PROBLEM_STATES else ""
    return f"{time.strftime('%H-%M-%S')} {record.state.value:<11} {record.key} {record.label}{node}{extra}"


async def run_headless(session: Session, out: TextIO | None = None) -> int:
    """Run the whole scenario; 0 only if it succeeded, 1 otherwise (``out``: default sys.stdout)."""
    out = out if out is not None else sys.stdout  # looked up now: stdout may have been replaced since import
    session.model.subscribe(lambda record: print(progress_line(record), file=out, flush=True))
    ok = await session.run()
    print(f"== {session.model.summary()}", file=out)
    for record in session.model:
        if record.state in PROBLEM_STATES and not record.is_scheduler:
            print(f"   {record.state.value}: {record.key} {record.label} ({record.node}) {record.error}", file=out)
    if session.record_dir is not None:
        print(f"== record: {session.record_dir}", file=out)
    print("== scenario " + ("succeeded" if ok else "FAILED"), file=out, flush=True)
    return 0 if ok else 1

"""A child process of the approval crash tests: one decision, or one night, as a script.

::

    python -m tests.integration.night.approval_child approve|reject BY IDS [KILL_POINT [START]]
    python -m tests.integration.night.approval_child night AS_OF [KILL_POINT N]

``IDS`` is a comma-separated list of action ids. Like ``crash_child`` it reads its settings
from ``NUDGEFLOW_*`` variables and SIGKILLs itself at ``KILL_POINT``'s first hit (``-`` for
none). ``START`` (epoch seconds) makes the decision wait until then, so that two children
decide at the same instant. It prints a JSON summary when it finishes.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, date, datetime
from typing import Any

from tests.integration.night.crash_child import killing_checkpoint, run_night
from tests.integration.night.crash_world import close_app


def decide(app: Any, verb: str, by: str, ids: list[str], point: str | None, start: float) -> Any:
    from night.approvals import approve, reject

    checkpoint = killing_checkpoint(point, 1)
    with app.engine.connect() as connection:  # connected before the start: a fair race
        connection.exec_driver_sql("SELECT 1")
    while time.time() < start:
        time.sleep(0.001)
    now = datetime.now(UTC)
    if verb == "approve":
        return approve(app.engine, ids, by=by, now=now, checkpoint=checkpoint)
    reasons = dict.fromkeys(ids, f"refused by {by}")
    return reject(
        app.engine, reasons, by=by, now=now, business_date=now.date(), checkpoint=checkpoint
    )


def main(argv: list[str]) -> int:
    from bootstrap.app import build_app
    from settings import load_settings

    app = build_app(load_settings())
    try:
        if argv[0] == "night":
            point = argv[2] if len(argv) > 2 else None
            nth = int(argv[3]) if len(argv) > 3 else 1
            summary = run_night(app, date.fromisoformat(argv[1]), killing_checkpoint(point, nth))
        else:
            verb, by, ids = argv[0], argv[1], argv[2].split(",")
            point = argv[3] if len(argv) > 3 and argv[3] != "-" else None
            start = float(argv[4]) if len(argv) > 4 else 0.0
            decided = decide(app, verb, by, ids, point, start)
            summary = {"done": decided.done, "before": sorted(decided.before)}
    finally:
        close_app(app)
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Printing shared by commands: the stage funnel and its moves."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cli.context import console

NO_STAGE = "(no stage)"


def print_funnel(summary: dict[str, Any], stage_order: tuple[str, ...]) -> None:
    """Members per stage, lowest stage first, then the moves since the previous night."""
    counts: dict[str, int] = summary["stages"]
    total = sum(counts.values()) or 1
    table = Table(title=f"Stage funnel as of {summary['as_of']}", title_justify="left")
    table.add_column("stage")
    table.add_column("members", justify="right")
    table.add_column("share", justify="right")
    for stage in (*stage_order, ""):
        count = counts.get(stage, 0)
        if stage == "" and count == 0:
            continue
        table.add_row(stage or NO_STAGE, f"{count:,}", f"{100 * count / total:.1f}%")
    console.print(table)
    previous = summary.get("previous_as_of")
    if previous is None:
        console.print("moves: none to show (no earlier night has been run)")
        return
    moves = summary["moves"]
    if not moves:
        console.print(f"moves since {previous}: none")
        return
    console.print(f"moves since {previous}:")
    for move in moves:
        source = move["from"] or NO_STAGE
        target = move["to"] or NO_STAGE
        console.print(f"  {source} → {target}: {move['members']:,}")


def excluded_text(excluded: dict[str, int], *, every: bool = False) -> str:
    """``consent 3 · frequency_cap 2`` (only the reasons that removed someone, unless
    ``every``; the holdout is shown on its own)."""
    parts = [
        f"{reason} {count:,}"
        for reason, count in excluded.items()
        if reason != "holdout" and (every or count)
    ]
    return " · ".join(parts) or "-"


def print_plan_summary(plan: dict[str, Any], fatigue: dict[str, int] | None = None) -> None:
    """Per campaign, in priority order: matched, selected, held out, excluded by reason."""
    campaigns = plan["campaigns"]
    if not campaigns:
        console.print("plan: no enabled campaigns")
    else:
        table = Table(title="Plan", title_justify="left")
        for name, justify in (
            ("campaign", "left"),
            ("matched", "right"),
            ("selected", "right"),
            ("held out", "right"),
            ("excluded", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for c in campaigns:
            table.add_row(
                c["id"],
                f"{c['matched']:,}",
                f"{c['selected']:,}",
                f"{c['excluded']['holdout']:,}",
                excluded_text(c["excluded"]),
            )
        console.print(table)
    new = plan.get("new_actions")
    if new is not None:
        console.print(f"new actions stored: {new:,}")
    if fatigue is not None:
        console.print(f"fatigue: {fatigue['tagged']:,} tagged, {fatigue['recovered']:,} recovered")

"""Printing shared by commands: the stage funnel and its moves."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cli.context import console
from night.report import COLUMNS, cells, format_excluded

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


def plural(count: int, word: str) -> str:
    """``1 action``, ``2 actions``, ``1,204 members``."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def print_night_report(summary: dict[str, Any]) -> None:
    """The night per campaign: what the plan matched and excluded, and what dispatch did
    (the same figures as the run's Prefect artifacts)."""
    report = summary.get("report") or []
    dry = " (dry run: nothing stored, issued or sent)" if summary.get("dry_run") else ""
    table = Table(title=f"Night {summary['as_of']}{dry}", title_justify="left")
    table.add_column("campaign", overflow="fold")
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    for row in report:
        table.add_row(row["id"], *cells(row))
    console.print(table)
    excluded = [(row["id"], format_excluded(row.get("excluded", {}))) for row in report]
    excluded = [(cid, text) for cid, text in excluded if text != "-"]
    if excluded:
        console.print("excluded by the guards:")
        for cid, text in excluded:
            console.print(f"  {cid}: {text}", markup=False)
    plan = summary.get("plan") or {}
    if plan.get("new_actions") is not None:
        console.print(f"stored {plural(plan['new_actions'], 'new action')}")
    fatigue = summary.get("fatigue")
    if fatigue is not None:
        console.print(f"fatigue: {fatigue['tagged']:,} tagged, {fatigue['recovered']:,} recovered")
    dispatch = summary.get("dispatch") or {}
    if dispatch.get("recovered"):
        console.print(
            f"[bold]{dispatch['recovered']:,} actions[/] were left in 'sending' by a run that "
            "stopped and are now 'unknown': `nudgeflow actions --state unknown`"
        )

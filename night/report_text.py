"""The night's report as text: the markdown artifact and the CLI's summary share it (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nudgeflow.money import format_minor_units

COLUMNS = (
    ("matched", "matched"),
    ("held_out", "held out"),
    ("sent", "sent"),
    ("rewards_issued", "rewards"),
    ("value", "value"),
    ("failed", "failed"),
    ("unknown", "unknown"),
    ("pending", "pending"),
)


def format_excluded(excluded: Mapping[str, int], *, every: bool = False) -> str:
    """``consent 3 · frequency_cap 2`` (only the reasons that removed someone, unless
    ``every``; the holdout is shown on its own)."""
    parts = [
        f"{reason} {count:,}"
        for reason, count in excluded.items()
        if reason != "holdout" and (every or count)
    ]
    return " · ".join(parts) or "-"


def format_value(row: Mapping[str, Any]) -> str:
    minor, currency = row.get("reward_value_minor") or 0, row.get("currency")
    if not row.get("rewards_issued"):
        return "-"
    return f"{format_minor_units(int(minor), currency)} {currency}" if currency else "mixed"


def cells(row: Mapping[str, Any]) -> list[str]:
    """One report row as table cells, in ``COLUMNS`` order then ``excluded``."""
    out = []
    for key, _title in COLUMNS:
        if key == "value":
            out.append(format_value(row))
        else:
            value = row.get(key)
            out.append("-" if value is None else f"{value:,}")
    return out


def report_markdown(summary: Mapping[str, Any]) -> str:
    """The markdown artifact: the night's per-campaign table and its totals."""
    report: Sequence[Mapping[str, Any]] = summary.get("report", [])
    dry = " (dry run: nothing stored or sent)" if summary.get("dry_run") else ""
    lines = [f"# nudgeflow night {summary['as_of']}{dry}", ""]
    dispatch = summary.get("dispatch") or {}
    if dispatch.get("recovered"):
        lines += [
            f"**{dispatch['recovered']} actions** were left in `sending` by a run that "
            "stopped and are now `unknown`: check them with `nudgeflow actions --state "
            "unknown`.",
            "",
        ]
    header = ["campaign", *(title for _, title in COLUMNS), "excluded"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in report:
        values = [str(row["id"]), *cells(row), format_excluded(row.get("excluded", {}))]
        lines.append("| " + " | ".join(values) + " |")
    if not report:
        lines.append("| (no campaigns) |" + " |" * (len(header) - 1))
    totals = {key: sum(int(r.get(key) or 0) for r in report) for key, _ in COLUMNS[1:]}
    lines += [
        "",
        f"Sent {totals['sent']:,} emails, issued {totals['rewards_issued']:,} rewards; "
        f"{totals['failed']:,} failed, {totals['unknown']:,} unknown, "
        f"{totals['pending']:,} still pending.",
    ]
    return "\n".join(lines) + "\n"

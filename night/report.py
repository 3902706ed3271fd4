"""The night's report: per campaign, what was matched, excluded, held out, sent, issued (and
its value), failed, unknown or still pending, read back from the store so that a re-run
night reports the whole night; and the same report as text (the CLI's table and the
Prefect markdown artifact share it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select

from domain.plan import Plan
from night.context import Night
from nudgeflow.money import format_minor_units
from store import outbox
from store.profiles import funnel
from store.schema import actions

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
    approvals = summary.get("approvals") or {}
    if approvals.get("waiting") or approvals.get("expired"):
        lines += [
            f"**{approvals.get('waiting', 0)} rewards** await approval (`nudgeflow approvals "
            f"list`); {approvals.get('expired', 0)} approvals expired undecided tonight and "
            "released their reservations.",
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


def night_funnel(night: Night) -> dict[str, Any]:
    """The funnel after a night: members per stage and moves since the previous night."""
    with night.engine.connect() as connection:
        return funnel(connection, night.as_of)


def night_report(night: Night, planned: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per campaign: matched, excluded by reason, held out, sent, rewards issued and their
    value, failures and unknowns; the dispatch figures are read from the actions table, so a
    re-run night reports the whole night, not just what the re-run did."""
    as_of = night.as_of
    with night.engine.connect() as connection:
        states = outbox.state_counts(connection, as_of)
        a = actions.c
        values = {
            (cid, cur): (int(n), int(v))
            for cid, cur, n, v in connection.execute(
                select(a.campaign_id, a.currency, func.count(), func.sum(a.cost_minor))
                .where(a.as_of == as_of, a.reward_ref.is_not(None))
                .group_by(a.campaign_id, a.currency)
            )
        }
    plan_rows = {c["id"]: c for c in (planned or {}).get("campaigns", [])}
    campaign_ids = sorted({c for c, _ in states} | set(plan_rows), key=str)
    order = {cid: i for i, cid in enumerate(plan_rows)}
    campaign_ids.sort(key=lambda cid: (order.get(cid, len(order)), cid))
    rows = []
    for cid in campaign_ids:
        planned_row = plan_rows.get(cid, {})
        excluded = {k: v for k, v in planned_row.get("excluded", {}).items() if v}
        issued = [(cur, n, v) for (c, cur), (n, v) in values.items() if c == cid]
        rows.append(
            {
                "id": cid,
                "matched": planned_row.get("matched"),
                "excluded": excluded,
                "held_out": states.get((cid, "held_out"), 0),
                "sent": states.get((cid, "sent"), 0),
                "rewards_issued": sum(n for _, n, _ in issued),
                "reward_value_minor": sum(v for _, _, v in issued),
                "currency": issued[0][0] if len(issued) == 1 else None,
                "failed": states.get((cid, "failed"), 0),
                "unknown": states.get((cid, "unknown"), 0),
                "pending": sum(states.get((cid, s), 0) for s in (*outbox.PENDING, "sending")),
            }
        )
    return rows


def planned_report(plan: Plan) -> list[dict[str, Any]]:
    """The report rows of a night that was only planned (a dry run): what the run would
    send and issue, at the rewards' estimated cost; nothing failed or is pending yet."""
    rows = []
    for c in plan.campaigns:
        chosen = [a for a in c.actions if not a.holdout]
        rewarded = [a for a in chosen if a.reward is not None]
        currencies = {a.currency for a in rewarded if a.currency}
        rows.append(
            {
                "id": c.campaign.id,
                "matched": c.matched,
                "excluded": {k: v for k, v in c.excluded.items() if v},
                "held_out": c.excluded["holdout"],
                "sent": len(chosen),
                "rewards_issued": len(rewarded),
                "reward_value_minor": sum(a.cost_minor for a in rewarded),
                "currency": currencies.pop() if len(currencies) == 1 else None,
                "failed": 0,
                "unknown": 0,
                "pending": 0,
            }
        )
    return rows

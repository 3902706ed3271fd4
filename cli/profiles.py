"""``nudgeflow members show`` and ``nudgeflow stages``: looking at profiles.

``members show`` lists the tags that apply as of the member's profile (the last night
refreshed; today's business date before any): a fatigue tag that was cleared or whose rest
is over is not listed. Its history, every time it was set or cleared, is shown below. So
are the member's choices in the preference centre as of now (``store.preferences``): the
categories they unsubscribed from, and a pause in force with its last day.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Connection, select

from cli.context import console, process_app
from cli.render import NO_STAGE, print_funnel
from nudgeflow.errors import NotFoundError
from nudgeflow.money import format_minor_units
from nudgeflow.timeutil import business_date
from planning.lifecycle_file import load_lifecycle
from store.consent import OPTED_OUT, consent_of
from store.preferences import preferences_of
from store.profiles import funnel, member_stage_history
from store.schema import members, profiles
from store.tags import tag_changes, tags_on

TAG_CHANGES_SHOWN = 5  # the most recent tag changes in the text view; --json has them all


def _preferences(
    connection: Connection, member_pk: int, now: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """The preference centre's choices as of ``now``, dated in the business time zone."""
    prefs = preferences_of(connection, member_pk, now)
    until = prefs.paused_until
    return {
        "categories_out": {
            category: business_date(at, zone).isoformat()
            for category, at in sorted(prefs.categories_out.items())
        },
        "paused_until": None if until is None else business_date(until - 1, zone).isoformat(),
    }


_WITHDRAWN_BY = {
    "unsubscribed": "unsubscribed",
    "email_bounced": "the address bounced",
    "email_spam_report": "reported as spam",
}


def _consent(connection: Connection, member_id: str, zone: ZoneInfo) -> dict[str, Any]:
    """Email consent as of now: given, or what withdrew it and when."""
    consent = consent_of(connection, member_id)
    since = consent.withdrawal[1] if consent.withdrawal is not None else None
    return {
        "given": consent.given,
        "withdrawn_by": consent.withdrawn_by,
        "since": None if since is None else since.astimezone(zone).date().isoformat(),
    }


def _consent_text(consent: dict[str, Any]) -> str:
    if consent["given"]:
        return "given"
    if consent["withdrawn_by"] == OPTED_OUT:
        return "withdrawn: opted out (email_opt_in is false)"
    what = _WITHDRAWN_BY.get(consent["withdrawn_by"], consent["withdrawn_by"])
    return f"withdrawn: {what} on {consent['since']}"


def _preferences_text(preferences: dict[str, Any]) -> str:
    parts = []
    if preferences["paused_until"]:
        parts.append(f"all nudges paused until {preferences['paused_until']}")
    out = preferences["categories_out"]
    if out:
        left = ", ".join(f"{category} (since {day})" for category, day in out.items())
        parts.append(f"unsubscribed from {left}")
    return "; ".join(parts) or "none (every category, not paused)"


def _member_document(
    connection: Connection, member_id: str, now: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    today = now.astimezone(zone).date()
    row = (
        connection.execute(
            select(members, profiles)
            .select_from(members.outerjoin(profiles, profiles.c.member_pk == members.c.id))
            .where(members.c.member_id == member_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no member with member_id {member_id!r}")
    tags = tags_on(connection, row["id"], row["as_of"] or today)
    changes = tag_changes(connection, row["id"])
    history = member_stage_history(connection, row["id"])
    currency = row["currency"]
    return {
        "member_id": row["member_id"],
        "email": row["email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "profile_as_of": row["as_of"].isoformat() if row["as_of"] else None,
        "stage": row["stage"],
        "stage_entered_on": row["stage_entered_on"].isoformat()
        if row["stage_entered_on"]
        else None,
        "stage_history": [
            {
                "stage": h["stage"],
                "entered_on": h["entered_on"].isoformat(),
                "left_on": h["left_on"].isoformat() if h["left_on"] else None,
            }
            for h in history
        ],
        "recency_days": row["recency_days"],
        "frequency": row["frequency"],
        "monetary": {
            "amount": format_minor_units(row["monetary_minor"], currency) if currency else None,
            "currency": currency,
        },
        "rfm": {"r": row["r"], "f": row["f"], "m": row["m"], "segment": row["segment"]},
        "score": round(row["score"], 2) if row["score"] is not None else None,
        "tags": tags,
        "tag_history": [
            {
                "tag": c.tag,
                "source": c.source,
                "change": c.change,
                "as_of": c.as_of.isoformat(),
                "rest_until": c.rest_until.isoformat() if c.rest_until else None,
                "reason": c.reason,
            }
            for c in changes
        ],
        "attributes": row["attributes"] or {},
        "email_consent": _consent(connection, member_id, zone),
        "preferences": _preferences(connection, row["id"], now, zone),
    }


def show_member(
    member_id: str = typer.Argument(..., metavar="MEMBER_ID", help="The member's member_id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a member's profile, tags, email consent, preferences, and stage and tag history."""
    app = process_app()
    with app.engine.connect() as connection:
        doc = _member_document(connection, member_id, app.clock(), app.zone)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    name = " ".join(filter(None, [doc["first_name"], doc["last_name"]])) or doc["member_id"]
    console.print(f"[bold]{name}[/bold] <{doc['email']}>  ({doc['member_id']})")
    consent = ("email", _consent_text(doc["email_consent"]))
    preferences = ("preferences", _preferences_text(doc["preferences"]))
    if doc["profile_as_of"] is None:
        console.print(f"  {consent[0]:<14}{consent[1]}", markup=False)
        console.print(f"  {preferences[0]:<14}{preferences[1]}", markup=False)
        console.print("no profile yet: run `nudgeflow run` first")
        return
    money = doc["monetary"]
    rfm = doc["rfm"]
    lines = [
        ("profile as of", doc["profile_as_of"]),
        ("stage", f"{doc['stage'] or NO_STAGE} (since {doc['stage_entered_on'] or '-'})"),
        (
            "recency",
            f"{doc['recency_days']} days since last purchase"
            if doc["recency_days"] is not None
            else "never purchased",
        ),
        ("frequency", f"{doc['frequency']} purchases in the RFM window"),
        ("monetary", f"{money['amount']} {money['currency']}"),
        ("rfm", f"r={rfm['r']} f={rfm['f']} m={rfm['m']} segment={rfm['segment'] or '-'}"),
        ("score", str(doc["score"])),
        ("tags", ", ".join(doc["tags"]) or "-"),
        consent,
        preferences,
    ]
    for label, value in lines:
        console.print(f"  {label:<14}{value}", markup=False)
    console.print("  stage history:")
    for h in doc["stage_history"]:
        console.print(f"    {h['stage']:<24}{h['entered_on']} → {h['left_on'] or 'now'}")
    _print_tag_history(doc["tag_history"])


def _print_tag_history(changes: list[dict[str, Any]]) -> None:
    if not changes:
        return
    console.print("  tag history:")
    if len(changes) > TAG_CHANGES_SHOWN:
        earlier = len(changes) - TAG_CHANGES_SHOWN
        console.print(f"    … {earlier} earlier (--json lists them all)", markup=False)
    for c in changes[-TAG_CHANGES_SHOWN:]:
        rest = f" (rest through {c['rest_until']})" if c["rest_until"] else ""
        line = f"    {c['as_of']}  {c['tag']} {c['change']}: {c['reason']}{rest}"
        console.print(line, markup=False)


def stages(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The funnel: members per stage, and moves since the previous run."""
    app = process_app()
    lifecycle = load_lifecycle(app.settings.campaigns_dir)
    with app.engine.connect() as connection:
        as_of = connection.execute(select(profiles.c.as_of).limit(1)).scalar()
        if as_of is None:
            raise NotFoundError("no profiles yet: run `nudgeflow run --as-of DATE` first")
        summary = funnel(connection, as_of)
    if as_json:
        ordered = {s: summary["stages"].get(s, 0) for s in lifecycle.stage_ids}
        ordered[""] = summary["stages"].get("", 0)
        typer.echo(json.dumps({**summary, "stages": ordered}, indent=2))
        return
    print_funnel(summary, lifecycle.stage_ids)

"""Read-only listings for operators: past runs, actions, and the sends export.

Each listing is one set-based query (members joined for ``member_id``), never a query per
row. Timestamps in the store are naive UTC; here they become aware UTC datetimes or
ISO 8601 strings, so callers never have to remember that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from store import outbox
from store.schema import actions, approvals, members, runs, sources

ACTION_STATES = outbox.STATES  # the state machine's states, in the order they are reached
# An action "was sent" once it reached ``sending``: the email may have gone out. A failed
# action counts only if it failed after that point (it has a sending stamp).
SEND_STATES = ("sending", "sent", "unknown")
# Which files planned an action (``store.sources``): the digest of the campaign folder and
# templates, the git commit, the campaign's file and its SHA-256, and the email's templates'.
PROVENANCE_COLUMNS = (
    "source_digest",
    "git_commit",
    "campaign_file",
    "campaign_file_sha256",
    "template_html_sha256",
    "template_text_sha256",
)
SEND_COLUMNS = (
    "action_id",
    "campaign_id",
    "member_id",
    "state",
    "message_id",
    "reward_ref",
    "as_of",
    "sending_at",
    "sent_at",
    "finished_at",
    "reason",
    *PROVENANCE_COLUMNS,
)
RUN_COUNTS = ("planned", "held_out", "sent", "failed", "unknown", "rewards_issued")
STREAM_BATCH = 2_000  # rows fetched per round trip by the export's server-side cursor


def utc(value: datetime | None) -> datetime | None:
    """A naive UTC timestamp from the store, made aware."""
    return None if value is None else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (``2026-06-30T21:04:05.123456+00:00``), or None."""
    aware = utc(value)
    return None if aware is None else aware.isoformat(timespec="microseconds")


# --- runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    """One past run and how it ended; counts are None when its summary does not say."""

    id: int
    as_of: date
    kind: str
    status: str
    started_at: datetime  # aware UTC
    finished_at: datetime | None
    flow_run_id: str | None
    error: str | None
    counts: dict[str, int | None]
    summary: dict[str, Any] | None
    # The files it worked from (``store.sources``); None for runs before they were recorded.
    source_digest: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None

    @property
    def duration(self) -> timedelta | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def as_dict(self) -> dict[str, Any]:
        duration = self.duration
        return {
            "id": self.id,
            "as_of": self.as_of.isoformat(),
            "kind": self.kind,
            "status": self.status,
            "started_at": self.started_at.isoformat(timespec="microseconds"),
            "finished_at": (
                self.finished_at.isoformat(timespec="microseconds") if self.finished_at else None
            ),
            "duration_seconds": None if duration is None else duration.total_seconds(),
            "flow_run_id": self.flow_run_id,
            **self.counts,
            "error": self.error,
            "summary": self.summary,
            "source_digest": self.source_digest,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
        }


def _count(value: object) -> int | None:
    # bool is an int subclass, and a hand-edited summary could hold anything.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _total(items: object, key: str) -> int | None:
    """The sum of ``key`` over a list of per-campaign dicts, or None if any lacks it."""
    if not isinstance(items, list) or not items:
        return None
    values = [_count(item.get(key)) if isinstance(item, Mapping) else None for item in items]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def run_counts(summary: object) -> dict[str, int | None]:
    """Planned, held-out, sent, failed, unknown and issued counts from a run's summary.

    ``planned`` sums the plan's selected actions per campaign; the rest come from the
    night's per-campaign ``report`` (what ``nudgeflow run`` prints), else from dispatch
    totals or per-campaign dispatch counts. Anything missing is None.
    """
    document = summary if isinstance(summary, Mapping) else {}
    plan = document.get("plan")
    dispatch = document.get("dispatch")
    plan = plan if isinstance(plan, Mapping) else {}
    dispatch = dispatch if isinstance(dispatch, Mapping) else {}
    totals = dispatch.get("totals")
    totals = totals if isinstance(totals, Mapping) else {}
    counts: dict[str, int | None] = {"planned": _total(plan.get("campaigns"), "selected")}
    report = document.get("report")
    for key in RUN_COUNTS[1:]:
        value = _total(report, key) if isinstance(report, list) and report else None
        if value is None:
            value = _count(totals.get(key))
        counts[key] = value if value is not None else _total(dispatch.get("campaigns"), key)
    return counts


def list_runs(connection: Connection, limit: int) -> list[RunReport]:
    """The ``limit`` most recently started runs, newest first."""
    rows = connection.execute(
        select(runs, sources.c.git_commit, sources.c.git_dirty)
        .outerjoin(sources, sources.c.digest == runs.c.source_digest)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(limit)
    ).mappings()
    reports = []
    for row in rows:
        summary = row["summary"] if isinstance(row["summary"], dict) else None
        started = utc(row["started_at"])
        assert started is not None  # NOT NULL
        reports.append(
            RunReport(
                id=row["id"],
                as_of=row["as_of"],
                kind=row["kind"],
                status=row["status"],
                started_at=started,
                finished_at=utc(row["finished_at"]),
                flow_run_id=row["flow_run_id"],
                error=row["error"],
                counts=run_counts(summary),
                summary=summary,
                source_digest=row["source_digest"],
                git_commit=row["git_commit"],
                git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
            )
        )
    return reports


# --- actions ---------------------------------------------------------------------------

_ACTION_COLUMNS = (
    actions.c.action_id,
    actions.c.campaign_id,
    members.c.member_id,
    actions.c.occurrence,
    actions.c.as_of,
    actions.c.state,
    actions.c.holdout,
    actions.c.reward,
    actions.c.cost_minor,
    actions.c.currency,
    actions.c.template,
    actions.c.variant,
    actions.c.reason,
    actions.c.reward_ref,
    actions.c.message_id,
    actions.c.attempts,
    actions.c.created_at,
    actions.c.updated_at,
    actions.c.reserved_at,
    actions.c.issued_at,
    actions.c.sending_at,
    actions.c.sent_at,
    actions.c.finished_at,
    actions.c.source_digest,
)
_APPROVAL_COLUMNS = (
    approvals.c.requested_at,
    approvals.c.expires_at,
    approvals.c.threshold,
    approvals.c.decision,
    approvals.c.decided_by,
    approvals.c.decided_at,
)
_STAMPS = (
    "created_at",
    "updated_at",
    "reserved_at",
    "issued_at",
    "sending_at",
    "sent_at",
    "finished_at",
)


@dataclass(frozen=True)
class ActionListing:
    """The actions shown (dicts ready for JSON: dates and instants as ISO strings) and how
    many matched in all, which is more than shown when the limit cut the list."""

    actions: list[dict[str, Any]]
    total: int


def find_actions(
    connection: Connection,
    *,
    campaign_id: str | None = None,
    state: str | None = None,
    as_of: date | None = None,
    member_id: str | None = None,
    limit: int | None = None,
) -> ActionListing:
    """Actions matching every filter given, newest night first, then by campaign and
    member; ``total`` counts every match (a window count in the same query)."""
    conditions = []
    if campaign_id is not None:
        conditions.append(actions.c.campaign_id == campaign_id)
    if state is not None:
        conditions.append(actions.c.state == state)
    if as_of is not None:
        conditions.append(actions.c.as_of == as_of)
    if member_id is not None:
        conditions.append(members.c.member_id == member_id)
    query = (
        select(*_ACTION_COLUMNS, *_APPROVAL_COLUMNS, func.count().over().label("total"))
        .join(members, members.c.id == actions.c.member_pk)
        .outerjoin(approvals, approvals.c.action_id == actions.c.action_id)
        .where(*conditions)
        .order_by(actions.c.as_of.desc(), actions.c.campaign_id, members.c.member_id)
    )
    if limit is not None:
        query = query.limit(limit)
    listed: list[dict[str, Any]] = []
    total = 0
    for row in connection.execute(query).mappings():
        total = int(row["total"])
        item = {column.name: row[column.name] for column in _ACTION_COLUMNS}
        item["as_of"] = row["as_of"].isoformat()
        for name in _STAMPS:
            item[name] = iso(row[name])
        # An action that waited for approval: waiting, or the decision with who and when.
        item["approval"] = None
        if row["requested_at"] is not None:
            item["approval"] = {
                "requested_at": iso(row["requested_at"]),
                "expires_at": iso(row["expires_at"]),
                "threshold": row["threshold"],
                "decision": row["decision"],
                "decided_by": row["decided_by"],
                "decided_at": iso(row["decided_at"]),
            }
        listed.append(item)
    found = _sources(connection, {a["source_digest"] for a in listed if a["source_digest"]})
    for item in listed:
        source = found.get(item["source_digest"])
        item.update(provenance(source, item["campaign_id"], item["template"]))
    return ActionListing(listed, total)


def _sources(connection: Connection, digests: set[str]) -> dict[str, Mapping[str, Any]]:
    """The stored sources with these digests (few: one per version of the files)."""
    if not digests:
        return {}
    rows = connection.execute(select(sources).where(sources.c.digest.in_(sorted(digests))))
    return {row["digest"]: dict(row) for row in rows.mappings()}


def provenance(
    source: Mapping[str, Any] | None, campaign_id: str, template: str
) -> dict[str, str | None]:
    """``PROVENANCE_COLUMNS`` for an action of ``campaign_id`` with email ``template``
    planned on the files of ``source`` (None: planned before they were recorded)."""
    if source is None:
        return dict.fromkeys(PROVENANCE_COLUMNS)
    files: Mapping[str, str] = source["files"] or {}
    campaign_file = (source["campaign_files"] or {}).get(campaign_id)
    return {
        "source_digest": source["digest"],
        "git_commit": source["git_commit"],
        "campaign_file": campaign_file,
        "campaign_file_sha256": files.get(campaign_file) if campaign_file else None,
        "template_html_sha256": files.get(f"templates/{template}.html.j2"),
        "template_text_sha256": files.get(f"templates/{template}.txt.j2"),
    }


# --- sends -----------------------------------------------------------------------------


def iter_sends(
    connection: Connection,
    start: date | None = None,
    end: date | None = None,
    campaign_id: str | None = None,
) -> Iterator[dict[str, str]]:
    """Every action that reached ``sending`` (sending, sent, unknown, and failed with a
    sending stamp) planned on a business date in [start, end], oldest first, every value a
    string (instants in ISO 8601 UTC, empty when unset). A generator streaming through a
    server-side cursor: consume it inside the connection."""
    conditions = [
        or_(
            actions.c.state.in_(SEND_STATES),
            and_(actions.c.state == "failed", actions.c.sending_at.is_not(None)),
        )
    ]
    if start is not None:
        conditions.append(actions.c.as_of >= start)
    if end is not None:
        conditions.append(actions.c.as_of <= end)
    if campaign_id is not None:
        conditions.append(actions.c.campaign_id == campaign_id)
    # The few versions of the files these sends were planned on, read before streaming.
    named = select(actions.c.source_digest).where(*conditions).distinct().subquery()
    found = {
        row["digest"]: dict(row)
        for row in connection.execute(
            select(sources).where(sources.c.digest.in_(select(named.c.source_digest)))
        ).mappings()
    }
    rows = connection.execute(
        select(
            actions.c.action_id,
            actions.c.campaign_id,
            members.c.member_id,
            actions.c.state,
            actions.c.message_id,
            actions.c.reward_ref,
            actions.c.as_of,
            actions.c.sending_at,
            actions.c.sent_at,
            actions.c.finished_at,
            actions.c.reason,
            actions.c.source_digest,
            actions.c.template,
        )
        .join(members, members.c.id == actions.c.member_pk)
        .where(*conditions)
        .order_by(actions.c.as_of, actions.c.sending_at, actions.c.action_id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for row in rows:
        yield {
            "action_id": row.action_id,
            "campaign_id": row.campaign_id,
            "member_id": row.member_id,
            "state": row.state,
            "message_id": row.message_id or "",
            "reward_ref": row.reward_ref or "",
            "as_of": row.as_of.isoformat(),
            "sending_at": iso(row.sending_at) or "",
            "sent_at": iso(row.sent_at) or "",
            "finished_at": iso(row.finished_at) or "",
            "reason": row.reason or "",
            **{
                name: value or ""
                for name, value in provenance(
                    found.get(row.source_digest), row.campaign_id, row.template
                ).items()
            },
        }

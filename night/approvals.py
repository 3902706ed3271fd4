"""Approvals for costly rewards: the use cases of ``nudgeflow approvals`` and the night's
expiry step.

Dispatch reserves a reward that costs more than its campaign's ``approval_above`` and leaves
the action in ``awaiting_approval`` with a row in ``approvals`` (``night.dispatcher``). Here
a person decides:

* **approve**: the decision and the move ``awaiting_approval`` → ``reserved`` commit in one
  transaction; the next dispatch (the nightly run, or ``approve --dispatch`` at once) issues
  and sends it from ``reserved`` as it does any reserved action.
* **reject**: the decision, the ledger's ``void`` (the reservation back to the budget) and
  the move to ``rejected`` with the reason commit in one ledger transaction.
* **expire** (the night, ``expire_approvals``): the same as a rejection, by ``nudgeflow``,
  for approvals undecided past their ``expires_at``.

A decision is written only while there is none (``store.approvals.decide``), so two people
(or a person and the night) deciding the same action at once leave exactly one decision, and
a kill at any instant leaves either nothing or the whole decision with its effects.
``checkpoint`` marks the crash tests' kill points (``APPROVAL_KILL_POINTS``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine

from night.batch import BatchResult, Checkpoint, no_checkpoint
from night.dispatch import batches
from night.dispatcher import Dispatcher
from night.lease import check_lease, night_lease
from nudgeflow.errors import NotFoundError, NudgeflowError
from nudgeflow.money import Money
from store import approvals, ledger
from store.approvals import Approval

# Inside the decision's transaction, after the decision is written and before the ledger
# release or the move; after it committed, before anything issues the reward.
APPROVAL_KILL_POINTS = ("approval_decision_written", "approval_committed")
NIGHT = "nudgeflow"  # who expires undecided approvals
EXPIRY_BATCH = 500  # approvals expired per ledger transaction
DISPATCH_BATCH = 200  # approved actions dispatched per batch by ``dispatch_approved``
# What `decide` reads in a decisions file's `decision` column (empty: leave it undecided).
APPROVE_WORDS = frozenset({"approve", "approved", "yes", "y"})
REJECT_WORDS = frozenset({"reject", "rejected", "no", "n"})


class ApprovalError(NudgeflowError):
    """An approval decided otherwise before (by someone else, or expired)."""

    exit_code = 1


class DecisionFileError(NudgeflowError):
    """A decisions file with bad rows: every problem, one per line, nothing decided."""

    exit_code = 2


@dataclass
class Decided:
    """What one decision command did: the actions decided now, and those already decided
    before (id → the earlier decision, who and when)."""

    decision: str
    done: list[str] = field(default_factory=list)
    before: dict[str, Approval] = field(default_factory=dict)
    # Undecided, but past their expiry: too late to approve (the night releases them).
    late: dict[str, Approval] = field(default_factory=dict)

    def conflicts(self) -> dict[str, Approval]:
        """Those decided before differently: approve after a rejection, and the reverse."""
        return {i: a for i, a in self.before.items() if a.decision != self.decision}


def known(engine: Engine, action_ids: Sequence[str]) -> dict[str, Approval]:
    """The approvals of the actions, or ``NotFoundError`` naming those that have none."""
    with engine.connect() as connection:
        found = {a.action_id: a for a in approvals.find(connection, action_ids=action_ids)}
    missing = [i for i in dict.fromkeys(action_ids) if i not in found]
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if missing[5:] else "")
        raise NotFoundError(
            f"no approval for action {listed}: see `nudgeflow approvals list`; nothing decided"
        )
    return found


def _finish(decided: Decided, found: Mapping[str, Approval], engine: Engine) -> Decided:
    rest = [i for i in found if i not in set(decided.done)]
    if rest:
        with engine.connect() as connection:
            now = approvals.find(connection, action_ids=rest)
        decided.before = {a.action_id: a for a in now if a.decision is not None}
        decided.late = {a.action_id: a for a in now if a.decision is None}
    return decided


def approve(
    engine: Engine,
    action_ids: Sequence[str],
    *,
    by: str,
    now: datetime,
    checkpoint: Checkpoint = no_checkpoint,
) -> Decided:
    """Approve the actions (all known, or ``NotFoundError`` before anything is written):
    each one undecided and not past its expiry becomes ``reserved`` for the next dispatch,
    in one transaction."""
    found = known(engine, action_ids)
    decided = Decided("approved")
    with engine.begin() as connection:
        ids = approvals.decide(connection, list(found), "approved", by, now, unexpired=True)
        checkpoint("approval_decision_written")
        moved = approvals.move_decided(connection, ids, "reserved", now)
        if sorted(moved) != sorted(ids):  # an undecided approval is always awaiting
            raise ApprovalError(
                f"actions {sorted(set(ids) - set(moved))} were not awaiting approval; "
                "nothing decided"
            )
        decided.done = ids
    checkpoint("approval_committed")
    return _finish(decided, found, engine)


def _reject(
    engine: Engine,
    reasons: Mapping[str, str],
    decision: str,
    by: str,
    now: datetime,
    business_date: date,
    checkpoint: Checkpoint,
) -> list[str]:
    """The decision, each reservation's release and the move to ``rejected``, in one ledger
    transaction; the ids decided now."""
    with ledger.ledger_transaction(engine) as connection:
        ids = approvals.decide(connection, list(reasons), decision, by, now, dict(reasons))
        checkpoint("approval_decision_written")
        for action_id in ids:
            if ledger.reward_state(connection, action_id) in ("reserved", "outstanding"):
                why = f"approval {decision} by {by}: {reasons[action_id]}"
                ledger.void(connection, action_id, why, business_date=business_date, now=now)
        moved = approvals.move_decided(connection, ids, "rejected", now)
        if sorted(moved) != sorted(ids):
            raise ApprovalError(
                f"actions {sorted(set(ids) - set(moved))} were not awaiting approval; "
                "nothing decided"
            )
    checkpoint("approval_committed")
    return ids


def reject(
    engine: Engine,
    reasons: Mapping[str, str],
    *,
    by: str,
    now: datetime,
    business_date: date,
    checkpoint: Checkpoint = no_checkpoint,
) -> Decided:
    """Reject the actions (action id → the reason; all known, or ``NotFoundError``): each
    undecided one releases its reservation and ends ``rejected`` with the reason."""
    found = known(engine, list(reasons))
    decided = Decided("rejected")
    decided.done = _reject(engine, reasons, "rejected", by, now, business_date, checkpoint)
    return _finish(decided, found, engine)


def expire_approvals(
    engine: Engine, *, now: datetime, business_date: date, checkpoint: Checkpoint = no_checkpoint
) -> int:
    """The night's step: every approval undecided past its ``expires_at`` expires (released
    and ``rejected``, by ``nudgeflow``), in batches of ``EXPIRY_BATCH`` per transaction;
    how many expired."""
    expired = 0
    while True:
        with engine.connect() as connection:
            due = approvals.due(connection, now, limit=EXPIRY_BATCH)
        if not due:
            return expired
        reason = "no decision before it expired"
        done = _reject(
            engine, dict.fromkeys(due, reason), "expired", NIGHT, now, business_date, checkpoint
        )
        expired += len(done)
        if not done:  # decided by someone else meanwhile: they are no longer due
            continue


def waiting(engine: Engine) -> int:
    """How many approvals wait for a decision (the run summary's figure)."""
    with engine.connect() as connection:
        return approvals.waiting_count(connection)


def listing(
    engine: Engine,
    *,
    every: bool = False,
    campaign_id: str | None = None,
    member_id: str | None = None,
) -> list[Approval]:
    """The approvals waiting for a decision (``every``: decided ones too), oldest first."""
    with engine.connect() as connection:
        return approvals.find(
            connection, waiting=not every, campaign_id=campaign_id, member_id=member_id
        )


# --- a decisions file --------------------------------------------------------------------

DECISION_COLUMNS = (
    "action_id",
    "campaign_id",
    "member_id",
    "as_of",
    "reward",
    "cost",
    "threshold",
    "requested_at",
    "expires_at",
    "decision",
    "reason",
)


def csv_row(approval: Approval) -> dict[str, str]:
    """One approval as a row of ``approvals list --csv`` (``decision`` and ``reason`` left
    for the person deciding, unless already decided)."""
    cost = str(Money(approval.cost_minor, approval.currency)) if approval.currency else ""
    return {
        "action_id": approval.action_id,
        "campaign_id": approval.campaign_id,
        "member_id": approval.member_id,
        "as_of": approval.as_of.isoformat(),
        "reward": approval.reward_kind or "",
        "cost": cost,
        "threshold": approval.threshold,
        "requested_at": approval.requested_at.isoformat(timespec="seconds"),
        "expires_at": approval.expires_at.isoformat(timespec="seconds"),
        "decision": approval.decision or "",
        "reason": approval.reason or "",
    }


@dataclass(frozen=True)
class Decisions:
    """What a decisions file says: the actions to approve, and those to reject (with the
    reason given on their row)."""

    approve: list[str]
    reject: dict[str, str]


def read_decisions(path: Path) -> Decisions:
    """Read a decisions file (the CSV ``approvals list --csv`` writes, its ``decision``
    column filled in: approve, reject, or empty to leave a row undecided). Every problem is
    reported at once with its line (``DecisionFileError``); nothing is decided then."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DecisionFileError(f"{path}: cannot be read ({exc})") from exc
    return parse_decisions(text.splitlines(), str(path))


def parse_decisions(lines: Iterable[str], name: str) -> Decisions:
    reader = csv.DictReader(lines)
    columns = reader.fieldnames or []
    missing = [c for c in ("action_id", "decision") if c not in columns]
    if missing:
        raise DecisionFileError(
            f"{name}: no {' or '.join(missing)} column (expected the header of "
            "`nudgeflow approvals list --csv`)"
        )
    problems: list[str] = []
    approve_ids: list[str] = []
    rejects: dict[str, str] = {}
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        action_id = (row.get("action_id") or "").strip().lstrip("'")
        word = (row.get("decision") or "").strip().lower()
        reason = (row.get("reason") or "").strip()
        if not word:
            continue
        if not action_id:
            problems.append(f"{name} line {line}: no action_id")
            continue
        if action_id in seen:
            problems.append(
                f"{name} line {line}: action {action_id} is decided on line {seen[action_id]} too"
            )
            continue
        seen[action_id] = line
        if word in APPROVE_WORDS:
            approve_ids.append(action_id)
        elif word in REJECT_WORDS:
            if not reason:
                problems.append(
                    f"{name} line {line}: rejecting {action_id} needs a reason in the reason column"
                )
            rejects[action_id] = reason
        else:
            problems.append(
                f"{name} line {line}: decision {word!r}: use approve, reject or leave it empty"
            )
    if problems:
        shown = problems[:20]
        more = f"\n… and {len(problems) - 20} more problems" if problems[20:] else ""
        raise DecisionFileError("\n".join(shown) + more + "\nnothing decided")
    return Decisions(approve_ids, rejects)


def dispatch_approved(dispatcher: Dispatcher, action_ids: Sequence[str]) -> BatchResult:
    """Issue and send the approved actions now (``approve --dispatch``), under the night's
    lease (``RunInProgress`` while a night runs: the night then picks them up itself), in
    batches as the night does; an action already dispatched is skipped by its state."""
    result = BatchResult()
    with night_lease(dispatcher.engine, dispatcher.config.as_of, dispatcher.clock):
        for batch in batches(list(action_ids), DISPATCH_BATCH):
            check_lease()
            result.add(dispatcher.dispatch(batch))
    return result

"""One business night against the Stripe and SendGrid fakes, for the crash matrix and the
fault test: the campaign files, the members with their Stripe customers, the settings of a
night against the fakes, funding and plan, and the state of the night read back with the
checks that each effect happened once (and the ledger agrees).

The child process that works such a night is ``crash_child``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[3]
AS_OF = date(2026, 3, 2)
_CREATED = datetime(2026, 1, 1)

# Four campaigns on disjoint groups of members (one action per member and night):
# discounts through Stripe with a control group, credits through Stripe, a credit whose
# budget covers only part of its audience, and an email without a reward.
CAMPAIGNS = {
    "crash-discount.yaml": """
id: crash-discount
name: Discount for the crash test
priority: 40
audience: {tags: {any_of: [grp-discount]}}
trigger: {on: schedule}
eligibility:
  once_per_member: true
  holdout: {percent: 10, salt: "crash"}
reward: {kind: discount, percent_off: 15, expires_in: 30d, cost_estimate: "9.00 USD"}
budget: {total: "5000.00 USD"}
email: {template: loyalist_discount, subject: "{{ member.first_name }}, 15% off"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "crash-credit.yaml": """
id: crash-credit
name: Credit for the crash test
priority: 30
audience: {tags: {any_of: [grp-credit]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: credit, amount: "25.00 USD", expires_in: 90d}
email: {template: champions_gift_certificate, subject: "A gift certificate"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "crash-budget.yaml": """
id: crash-budget
name: Credit with a small budget
priority: 20
audience: {tags: {any_of: [grp-budget]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: credit, amount: "5.00 USD", expires_in: 90d}
budget: {total: "250.00 USD"}
email: {template: loyalist_survey, subject: "5 minutes for a $5 thank-you?"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "crash-email.yaml": """
id: crash-email
name: Email without a reward
priority: 10
audience: {tags: {any_of: [grp-email]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
email: {template: birthday_card, subject: "Hello {{ member.first_name }}"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "policy.yaml": """
send_window: {start: "09:00", end: "18:00", timezone: member}
""",
}
# Members per group: 110 discount (about 11 held out), 100 credit, 70 budget (50 funded),
# 70 email: about 330 actions, about 320 of them to send.
GROUPS = {"grp-discount": 110, "grp-credit": 100, "grp-budget": 70, "grp-email": 70}
REWARD_KINDS = ("discount", "credit")
TERMINAL = {"sent", "failed", "held_out", "unknown", "rejected"}


def write_campaigns(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "campaigns" / "lifecycle.yaml", folder / "lifecycle.yaml")
    for name, text in CAMPAIGNS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def customer_id(n: int) -> str:
    return f"cus_crash{n:04d}"


def member_rows() -> list[tuple[dict[str, Any], str]]:
    """(member row, group tag) for every member of the night."""
    rows = []
    n = 0
    for tag, size in GROUPS.items():
        for _ in range(size):
            rows.append(
                (
                    {
                        "member_id": f"m{n:04d}",
                        "email": f"m{n:04d}@example.com",
                        "first_name": f"Member{n}",
                        "last_name": "Crash",
                        "timezone": ("Europe/Paris", "America/New_York", None)[n % 3],
                        "stripe_customer_id": customer_id(n),
                        "email_opt_in": True,
                        "row_hash": "-",
                        "created_at": _CREATED,
                        "updated_at": _CREATED,
                    },
                    tag,
                )
            )
            n += 1
    return rows


def insert_members(engine: sa.Engine) -> int:
    from store.schema import member_tags, members

    rows = member_rows()
    with engine.begin() as connection:
        connection.execute(sa.insert(members), [row for row, _ in rows])
        keys = dict(connection.execute(sa.select(members.c.member_id, members.c.id)).all())
        connection.execute(
            sa.insert(member_tags),
            [
                {"member_pk": keys[row["member_id"]], "tag": tag, "source": "import"}
                for row, tag in rows
            ],
        )
    return len(rows)


def add_customers(fake: Any) -> None:
    """Register every member's Stripe customer in the Stripe fake."""
    for n in range(sum(GROUPS.values())):
        fake.add_customer(customer_id(n), email=f"m{n:04d}@example.com")


def fund(app: Any, as_of: date) -> None:
    """What the nightly flow's sync step does first: fund the budgets from the files."""
    from planning.campaign_files import load_campaign_set
    from store.ledger import ledger_transaction, sync_funding

    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    with ledger_transaction(app.engine) as connection:
        sync_funding(connection, campaign_set.campaigns, as_of, app.zone)


def settings_env(
    *,
    database_url: str,
    campaigns_dir: Path,
    stripe_url: str,
    sendgrid_url: str,
    batch_size: int = 50,
    max_workers: int = 4,
    sendgrid_attempts: int = 4,
    sendgrid_timeout: float = 10.0,
) -> dict[str, str]:
    """The ``NUDGEFLOW_*`` variables of a night against the fakes."""
    return {
        "NUDGEFLOW_DATABASE_URL": database_url,
        "NUDGEFLOW_CAMPAIGNS_DIR": str(campaigns_dir),
        "NUDGEFLOW_TEMPLATES_DIR": str(ROOT / "templates" / "email"),
        "NUDGEFLOW_TIMEZONE": "Europe/Paris",
        "NUDGEFLOW_SIGNING_KEY": "crash-test-key",
        "NUDGEFLOW_REWARDS__PROVIDER": "stripe",
        "NUDGEFLOW_STRIPE__API_KEY": "sk_test_crash",
        "NUDGEFLOW_STRIPE__BASE_URL": stripe_url,
        "NUDGEFLOW_STRIPE__MAX_REQUESTS_PER_SECOND": "5000",
        "NUDGEFLOW_EMAIL__TRANSPORT": "sendgrid",
        "NUDGEFLOW_SENDGRID__API_KEY": "SG.fake-key",
        "NUDGEFLOW_SENDGRID__BASE_URL": sendgrid_url,
        "NUDGEFLOW_SENDGRID__MAX_REQUESTS_PER_SECOND": "5000",
        "NUDGEFLOW_SENDGRID__MAX_ATTEMPTS": str(sendgrid_attempts),
        "NUDGEFLOW_SENDGRID__TIMEOUT_SECONDS": str(sendgrid_timeout),
        "NUDGEFLOW_DISPATCH__BATCH_SIZE": str(batch_size),
        "NUDGEFLOW_DISPATCH__MAX_WORKERS": str(max_workers),
    }


def app_from(env: Mapping[str, str]) -> Any:
    """An ``App`` built from ``env`` alone (the test process's own variables ignored)."""
    from bootstrap.app import build_app
    from settings import AppSettings

    nested: dict[str, Any] = {}
    for name, value in env.items():
        parts = name.removeprefix("NUDGEFLOW_").lower().split("__")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return build_app(AppSettings(_env_file=None, **nested))  # type: ignore[call-arg]


def close_app(app: Any) -> None:
    if "issuer" in app.__dict__:
        app.issuer.close()
    if "engine" in app.__dict__:
        app.engine.dispose()


def prepare(app: Any, as_of: date = AS_OF) -> dict[str, Any]:
    """Members, funding and the stored plan of the night (the database migrated first)."""
    from night.plan import plan
    from night.refresh import refresh

    insert_members(app.engine)
    fund(app, as_of)
    refresh(app.night(as_of))
    return plan(app.night(as_of))


# --- the state of a night, read back for the assertions -----------------------------------


@dataclass(frozen=True)
class NightState:
    """The night's actions and the ledger, read in one snapshot."""

    actions: dict[str, dict[str, Any]]  # action_id → row
    ledger_verify: list[str] = field(default_factory=list)  # what ledger.verify found
    balances: dict[str, Any] = field(default_factory=dict)  # campaign → its balances

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.actions.values():
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        return counts

    def in_state(self, *states: str) -> set[str]:
        return {a for a, row in self.actions.items() if row["state"] in states}


def read_night(engine: sa.Engine, as_of: date = AS_OF) -> NightState:
    """The night's actions and the ledger in one snapshot. On PostgreSQL in one REPEATABLE
    READ transaction: a run killed just after it sent a COMMIT may have that COMMIT land
    on the server while the state is read, and actions read before it with the ledger read
    after it would disagree though each commit keeps them together."""
    from store.ledger import campaign_balances, verify
    from store.schema import actions

    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            rows = connection.execute(sa.select(actions).where(actions.c.as_of == as_of)).mappings()
            found = {row["action_id"]: dict(row) for row in rows}
            checked = verify(connection)
            balances = campaign_balances(connection)
    return NightState(found, [str(p) for p in checked.problems], dict(balances))


def email_action(received: Any) -> str | None:
    """The action id a message received by the SendGrid fake carries."""
    body = received.body
    args = dict(body.get("custom_args") or {})
    for personalization in body.get("personalizations") or []:
        args.update(personalization.get("custom_args") or {})
    value = args.get("action_id")
    return str(value) if value is not None else None


def exactly_once_problems(
    night: NightState, stripe: Any, sendgrid: Any, *, complete: bool = True
) -> list[str]:
    """Everything that breaks "each effect exactly once" (email: at most once) between the
    night's actions and what the fakes hold; an empty list means none. Mid-night
    (``complete`` False) actions may still be pending, and a ``reserved`` one may have a
    Stripe object whose answer a killed run never stored."""
    from store.outbox import PENDING

    problems: list[str] = []
    objects: dict[str, list[str]] = {}
    reversals: dict[str, list[str]] = {}
    for promo in stripe.promotion_codes.values():
        objects.setdefault(promo["metadata"].get("action_id", "?"), []).append(promo["id"])
    for txn in stripe.balance_transactions.values():
        metadata = txn["metadata"]
        pool = reversals if metadata.get("nf_kind") == "reversal" else objects
        pool.setdefault(metadata.get("action_id", "?"), []).append(txn["id"])
    emails: dict[str, list[Any]] = {}
    for received in sendgrid.messages:
        emails.setdefault(email_action(received) or "?", []).append(received)

    for action_id, row in sorted(night.actions.items()):
        state, ref = row["state"], row["reward_ref"]
        where = f"{row['campaign_id']} {action_id} ({state})"
        if complete and state not in TERMINAL:
            problems.append(f"{where}: not terminal")
        made = objects.pop(action_id, [])
        if ref is not None and made != [ref]:
            problems.append(f"{where}: reward {ref}, Stripe holds {made}")
        if ref is None and len(made) > (0 if complete or state != "reserved" else 1):
            problems.append(f"{where}: no reward recorded, Stripe holds {made}")
        if row["reward"] is not None and state in ("sent", "unknown") and ref is None:
            problems.append(f"{where}: emailed without its reward")
        undone = reversals.pop(action_id, [])
        if undone and state != "failed":
            problems.append(f"{where}: reward reversed ({undone})")
        got = emails.pop(action_id, [])
        if len(got) > 1:
            problems.append(f"{where}: {len(got)} emails")
        if state == "sent" and (len(got) != 1 or got[0].message_id != row["message_id"]):
            problems.append(
                f"{where}: message {row['message_id']}, SendGrid has {[g.message_id for g in got]}"
            )
        if state in ("held_out", "failed", "rejected", "awaiting_approval", *PENDING) and got:
            problems.append(f"{where}: emailed")
    for action_id, made in sorted(objects.items()):
        problems.append(f"Stripe objects {made} for action {action_id}, not of the night")
    for action_id, got in sorted(emails.items()):
        problems.append(f"{len(got)} emails for action {action_id}, not of the night")
    return problems


def ledger_problems(night: NightState) -> list[str]:
    """The ledger verifies, no campaign committed more than it was funded, and what each
    campaign has reserved, outstanding and spent is what its actions say (true at any
    instant: each ledger move commits with its action's move; ``read_night`` reads both in
    one snapshot)."""
    problems = [f"ledger verify: {p}" for p in night.ledger_verify]
    for campaign_id, b in night.balances.items():
        rows = [r for r in night.actions.values() if r["campaign_id"] == campaign_id]
        held = ("reserved", "awaiting_approval")  # an approval waits on a reservation
        reserved = sum(r["cost_minor"] for r in rows if r["state"] in held)
        issued = sum(r["cost_minor"] for r in rows if r["reward_ref"] and r["state"] != "failed")
        spent = sum(
            r["cost_minor"]
            for r in rows
            if r["state"] == "sent" and (r["reward"] or {}).get("kind") == "credit"
        )
        if b.committed > b.funded or b.budget < 0:
            problems.append(f"{campaign_id}: committed {b.committed} of {b.funded} funded")
        if b.reserved != reserved:
            problems.append(f"{campaign_id}: {b.reserved} reserved; the actions hold {reserved}")
        if (b.outstanding + b.spent, b.spent) != (issued, spent):
            problems.append(
                f"{campaign_id}: outstanding {b.outstanding} + spent {b.spent}; the actions "
                f"issued {issued} and spent {spent}"
            )
    return problems

"""Dispatch without Prefect: every transition and outcome of the dispatch state machine, on SQLite
and on PostgreSQL, against the file outbox and the local issuer, and against the Stripe and
SendGrid fakes for the provider failures."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from bootstrap.app import App, build_app
from delivery.tokens import UnsubscribeToken
from inbound.preferences import PreferenceChange, change_preferences
from night.batch import DispatchStopped
from night.plan import plan
from night.refresh import refresh
from night.settle import ResolveError, resolve_unknown
from nudgeflow.timeutil import Clock, day_end, from_epoch, system_clock
from planning.campaign_files import load_campaign_set
from providers.retry import RetryPolicy
from providers.sendgrid import SendGridSender
from settings import load_settings
from store import ledger, outbox
from store.ledger.tables import ledger_transactions
from store.reward_tables import rewards
from store.schema import actions, members
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.fakes.stripe_api import StripeFake
from tests.integration import nights
from tests.integration.community import DAY, Person, add_events, insert_people

ROOT = Path(__file__).resolve().parents[3]
ZONE = ZoneInfo("Europe/Paris")
AS_OF = date(2026, 5, 4)
SIGNING_KEY = "test-signing-key"

# One campaign per reward kind, each for the members carrying its tag, so a night's plan is
# exactly the tagged members; every reward is 5.00 USD, so budgets are easy to reason about.
CAMPAIGNS = {
    "credit": """
id: credit
name: Credit
category: rewards
priority: 40
audience: {tags: {any_of: [credit]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: credit, amount: "5.00 USD", expires_in: 30d}
budget: {total: "100.00 USD"}
email: {template: nudge, subject: "A credit for you, {{ member.member_id }}"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "discount": """
id: discount
name: Discount
priority: 30
audience: {tags: {any_of: [discount]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: discount, percent_off: 10, expires_in: 30d, cost_estimate: "5.00 USD"}
budget: {total: "100.00 USD"}
email: {template: nudge, subject: "10% off"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "invite": """
id: invite
name: Invite
priority: 20
audience: {tags: {any_of: [invite]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: vip_invite, programme: the Club, programme_cost: "5.00 USD", expires_in: 30d}
email: {template: nudge, subject: "Join the Club"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "plain": """
id: plain
name: Plain
priority: 10
audience: {tags: {any_of: [plain]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
email: {template: nudge, subject: "Hello"}
response: {counts_as: [email_clicked], within: 7d}
""",
    "broken": """
id: broken
name: Broken template
priority: 5
audience: {tags: {any_of: [broken]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: credit, amount: "5.00 USD", expires_in: 30d}
budget: {total: "100.00 USD"}
email: {template: broken, subject: "Broken"}
response: {counts_as: [email_clicked], within: 7d}
""",
}
POLICY = "frequency_caps: [{max: 5, per: 7d}]\ncategories: [rewards, surveys]\n"
TEMPLATES = {
    "nudge.txt.j2": '{% extends "_layout.txt.j2" %}{% block content %}Hi {{ member.member_id }}'
    "{% if reward %}: {{ reward.value }} {{ reward.code or reward.link }}{% endif %}"
    "{% endblock %}",
    "nudge.html.j2": '{% extends "_layout.html.j2" %}{% block content %}<p>Hi '
    "{{ member.member_id }}{% if reward %}: {{ reward.value }} {{ reward.code or reward.link }}"
    "{% endif %}</p>{% endblock %}",
    "broken.txt.j2": '{% extends "_layout.txt.j2" %}{% block content %}{{ member.no_such_thing }}'
    "{% endblock %}",
    "broken.html.j2": '{% extends "_layout.html.j2" %}{% block content %}'
    "{{ member.no_such_thing }}{% endblock %}",
}
KINDS = ("credit", "discount", "invite", "plain", "broken")


@dataclass
class World:
    """A campaigns folder, a templates folder, an outbox and a database with members."""

    db_url: str
    root: Path
    keys: dict[str, int] = field(default_factory=dict)
    apps: list[App] = field(default_factory=list)

    @property
    def campaigns_dir(self) -> Path:
        return self.root / "campaigns"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    def app(self, clock: Clock = system_clock, **overrides: Any) -> App:
        settings = {
            "database_url": self.db_url,
            "campaigns_dir": self.campaigns_dir,
            "templates_dir": self.root / "templates",
            "timezone": "Europe/Paris",
            "signing_key": SIGNING_KEY,
            "email": {"transport": "file", "outbox_dir": self.outbox_dir},
            "dispatch": {"batch_size": 3, "max_workers": 4},
            **overrides,
        }
        app = build_app(load_settings(**settings), clock)
        self.apps.append(app)
        return app

    def people(self, connection: sa.Connection, tagged: dict[str, list[str]]) -> None:
        """Members ``<kind>-<n>`` for each tag: each bought once, 20 days ago."""
        bought = day_end(AS_OF, ZONE) - 20 * DAY
        people = [
            Person(member_id, None, [EventFact("purchase", bought, 1000, "USD")], frozenset({tag}))
            for tag, ids in tagged.items()
            for member_id in ids
        ]
        self.keys.update(insert_people(connection, people))


def make_world(db_url: str, root: Path) -> World:
    """The campaigns and templates folders under ``root`` (the database is ``db_url``)."""
    campaigns = root / "campaigns"
    campaigns.mkdir()
    (campaigns / "lifecycle.yaml").write_text((ROOT / "campaigns/lifecycle.yaml").read_text())
    (campaigns / "policy.yaml").write_text(POLICY)
    for name, text in CAMPAIGNS.items():
        (campaigns / f"{name}.yaml").write_text(text)
    templates = root / "templates"
    templates.mkdir()
    for layout in ("_layout.html.j2", "_layout.txt.j2"):
        (templates / layout).write_text((ROOT / "templates/email" / layout).read_text())
    for name, text in TEMPLATES.items():
        (templates / name).write_text(text)
    return World(db_url, root)


def close_world(world: World) -> None:
    for app in world.apps:
        if "issuer" in app.__dict__:
            app.issuer.close()
        if "engine" in app.__dict__:
            app.engine.dispose()


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    built = make_world(db_url, tmp_path)
    yield built
    close_world(built)


def members_for(*kinds: str, n: int = 2) -> dict[str, list[str]]:
    return {kind: [f"{kind}-{i}" for i in range(n)] for kind in kinds}


def prepare(world: World, app: App, tagged: dict[str, list[str]]) -> dict[str, str]:
    """Insert the members, fund the budgets and plan the night; member_id → action_id."""
    with app.engine.begin() as connection:
        world.people(connection, tagged)
    refresh(app.night(AS_OF))
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    with ledger.ledger_transaction(app.engine) as connection:
        ledger.sync_funding(connection, campaign_set.campaigns, AS_OF, ZONE)
    plan(app.night(AS_OF))
    with app.engine.connect() as connection:
        rows = connection.execute(
            sa.select(members.c.member_id, actions.c.action_id).join(
                members, members.c.id == actions.c.member_pk
            )
        ).all()
    planned = {member_id: action_id for member_id, action_id in rows}
    assert set(planned) == {m for ids in tagged.values() for m in ids}
    return planned


def action_rows(app: App) -> dict[str, dict[str, Any]]:
    """member_id → its action row."""
    with app.engine.connect() as connection:
        rows = connection.execute(
            sa.select(actions, members.c.member_id).join(
                members, members.c.id == actions.c.member_pk
            )
        ).mappings()
        return {row["member_id"]: dict(row) for row in rows}


def states(app: App) -> dict[str, str]:
    return {member_id: row["state"] for member_id, row in action_rows(app).items()}


def ledger_kinds(app: App, action_id: str) -> list[str]:
    with app.engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(ledger_transactions.c.kind)
                .where(ledger_transactions.c.action_id == action_id)
                .order_by(ledger_transactions.c.id)
            ).scalars()
        )


def reward_state(app: App, action_id: str) -> str | None:
    with app.engine.connect() as connection:
        return connection.execute(
            sa.select(rewards.c.state).where(rewards.c.action_id == action_id)
        ).scalar_one_or_none()


def verify_ok(app: App) -> None:
    with app.engine.connect() as connection:
        result = ledger.verify(connection)
    assert result.ok, result.first


def sendgrid_sender(fake: FakeSendGrid, **kwargs: Any) -> SendGridSender:
    options: dict[str, Any] = {
        "api_key": fake.api_key,
        "host": fake.url,
        "timeout_seconds": 0.5,
        "max_attempts": 2,
        "sleep": lambda _seconds: None,
    }
    options.update(kwargs)
    return SendGridSender(**options)


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(timeout_delay=1.5) as fake:
        yield fake


# --- the happy path ----------------------------------------------------------------------


def test_every_reward_kind_goes_planned_to_sent_through_the_file_outbox(world: World) -> None:
    app = world.app()
    planned = prepare(world, app, members_for("credit", "discount", "invite", "plain"))
    assert set(states(app).values()) == {"planned"}

    run = nights.dispatch(app, AS_OF)

    assert run.recovered == 0
    assert run.result.total("sent") == 8
    rows = action_rows(app)
    assert {m: r["state"] for m, r in rows.items()} == dict.fromkeys(planned, "sent")
    for member_id, row in rows.items():
        action_id = planned[member_id]
        kind = member_id.split("-")[0]
        eml = world.outbox_dir / AS_OF.isoformat() / f"{action_id}.eml"
        assert eml.exists(), member_id
        parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert row["message_id"] == str(parsed["Message-ID"])
        assert parsed["To"].addresses[0].addr_spec == f"{member_id}@example.com"
        assert row["attempts"] == 1
        assert row["sent_at"] is not None and row["sending_at"] is not None
        if kind == "plain":
            assert row["reward_ref"] is None
            assert ledger_kinds(app, action_id) == []
            assert reward_state(app, action_id) is None
            continue
        assert row["reward_ref"], member_id
        assert row["reserved_at"] is not None and row["issued_at"] is not None
        if kind == "discount":  # spent when redeemed: still outstanding
            assert ledger_kinds(app, action_id) == ["reserve", "issue"]
            assert reward_state(app, action_id) == "issued"
        else:  # credits and invites are spent once their email went
            assert ledger_kinds(app, action_id) == ["reserve", "issue", "redeem"]
            assert reward_state(app, action_id) == "redeemed"
        text = parsed.get_body(("plain",))
        assert text is not None
        body = text.get_content()
        if kind == "invite":
            assert "the Club" in body and "http" in body
        else:
            assert "NF-" in body  # the reward code is in the email
    with app.engine.connect() as connection:
        by_campaign = ledger.campaign_balances(connection)
    assert by_campaign["credit"].spent == 1000 and by_campaign["credit"].outstanding == 0
    assert by_campaign["discount"].outstanding == 1000 and by_campaign["discount"].spent == 0
    assert by_campaign["invite"].spent == 1000
    assert "plain" not in by_campaign
    verify_ok(app)


def test_a_campaign_without_reward_goes_planned_sending_sent_with_no_ledger_entries(
    world: World,
) -> None:
    app = world.app()
    planned = prepare(world, app, members_for("plain", n=1))
    seen: list[str] = []

    def checkpoint(name: str) -> None:
        with app.engine.connect() as connection:
            state = connection.execute(
                sa.select(actions.c.state).where(actions.c.action_id == planned["plain-0"])
            ).scalar_one()
        seen.append(f"{name}:{state}")

    dispatcher = app.dispatcher(app.night(AS_OF), checkpoint)
    result = dispatcher.dispatch(dispatcher.pending())

    assert result.total("sent") == 1
    assert seen == ["after_render:planned", "after_send_accepted:sending"]
    assert states(app) == {"plain-0": "sent"}
    with app.engine.connect() as connection:
        # Only the budgets' funding: nothing for an action.
        kinds = connection.execute(sa.select(ledger_transactions.c.kind)).scalars().all()
    assert set(kinds) == {"fund"}
    assert reward_state(app, planned["plain-0"]) is None


def test_each_state_is_committed_before_the_next_outside_call(world: World) -> None:
    app = world.app()
    planned = prepare(world, app, members_for("credit", n=1))
    action_id = planned["credit-0"]
    seen: list[tuple[str, str, list[str]]] = []

    def checkpoint(name: str) -> None:
        with app.engine.connect() as connection:
            state = connection.execute(
                sa.select(actions.c.state).where(actions.c.action_id == action_id)
            ).scalar_one()
        seen.append((name, state, ledger_kinds(app, action_id)))

    dispatcher = app.dispatcher(app.night(AS_OF), checkpoint)
    dispatcher.dispatch(dispatcher.pending())

    assert seen == [
        ("during_ledger_write", "planned", []),  # inside the reserve transaction
        ("after_reserve", "reserved", ["reserve"]),
        ("after_reward_stored", "reward_issued", ["reserve", "issue"]),
        ("after_render", "reward_issued", ["reserve", "issue"]),
        ("after_send_accepted", "sending", ["reserve", "issue"]),
    ]
    assert states(app) == {"credit-0": "sent"}
    assert ledger_kinds(app, action_id) == ["reserve", "issue", "redeem"]


def test_an_email_costs_one_commit_its_sent_riding_with_the_next_sending(world: World) -> None:
    app = world.app()
    prepare(world, app, members_for("plain", "credit", n=3))
    dispatcher = app.dispatcher(app.night(AS_OF))
    dispatcher.config = dataclasses.replace(dispatcher.config, max_workers=1)
    ids = dispatcher.pending()
    commits: list[str] = []
    seen: list[dict[str, str]] = []

    class Watching:
        """The file outbox, noting every action's state when an email goes out."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def send(self, message: Any) -> Any:
            seen.append(states(app))
            return self.inner.send(message)

    dispatcher.sender = Watching(dispatcher.sender)
    # Transactions end in a commit event, or (SQLite's ledger transactions, which begin
    # IMMEDIATE by hand) in a COMMIT statement.
    sa.event.listen(app.engine, "commit", lambda _connection: commits.append("commit"))

    def raw_commit(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper() == "COMMIT":
            commits.append("COMMIT")

    sa.event.listen(app.engine, "before_cursor_execute", raw_commit)

    result = dispatcher.dispatch(ids)

    assert result.total("sent") == 6
    assert states(app) == dict.fromkeys(members_for("plain", "credit", n=3)["plain"], "sent") | (
        dict.fromkeys(members_for("credit", n=3)["credit"], "sent")
    )
    # Each email went out with its own `sending` committed and every earlier one `sent`.
    for n, before in enumerate(seen):
        assert sorted(before.values()).count("sending") == 1
        assert sorted(before.values()).count("sent") == n
    # The batch's load; per credit its reservation, the issuer's record and the issue;
    # one commit per email (its `sending` with the previous email's `sent`, and that
    # credit's spend); the last email's `sent`. Without riding along, 6 more.
    assert len(commits) == 1 + 3 * 3 + 6 + 1
    assert ledger_kinds(app, action_rows(app)["credit-0"]["action_id"]) == [
        "reserve",
        "issue",
        "redeem",
    ]
    verify_ok(app)


def test_threads_waiting_for_a_commit_share_one(world: World) -> None:
    app = world.app()
    plain = members_for("plain", n=24)
    prepare(world, app, plain)
    dispatcher = app.dispatcher(app.night(AS_OF))
    dispatcher.config = dataclasses.replace(dispatcher.config, max_workers=8)
    ids = dispatcher.pending()
    sending_at_send: list[bool] = []

    class Checking:
        """The file outbox, noting whether each email's `sending` was committed first."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def send(self, message: Any) -> Any:
            with app.engine.connect() as connection:
                state = connection.execute(
                    sa.select(actions.c.state).where(
                        actions.c.action_id == message.custom_args["action_id"]
                    )
                ).scalar_one()
            sending_at_send.append(state == "sending")
            return self.inner.send(message)

    dispatcher.sender = Checking(dispatcher.sender)
    commits: list[str] = []

    def slow_commit(_connection: Any) -> None:
        commits.append("commit")
        time.sleep(0.02)  # a slow disk: the other threads come to commit meanwhile

    sa.event.listen(app.engine, "commit", slow_commit)

    result = dispatcher.dispatch(ids)

    assert result.total("sent") == 24
    assert states(app) == dict.fromkeys(plain["plain"], "sent")
    assert sending_at_send == [True] * 24  # every `sending` committed before its send
    # The batch's load, the last emails' `sent`, and the `sending` commits: one per email
    # (24) if each thread committed alone, far fewer when the waiting ones share, as on
    # SQLite (one writer). PostgreSQL commits each thread's own, side by side.
    sendings = len(commits) - 2
    if app.engine.dialect.name == "sqlite":
        assert sendings <= 24 // 2, sendings
    else:
        assert sendings == 24, sendings
    verify_ok(app)


def test_running_dispatch_twice_sends_nothing_new(world: World) -> None:
    app = world.app()
    prepare(world, app, members_for("credit", "plain"))
    first = nights.dispatch(app, AS_OF)
    assert first.result.total("sent") == 4
    files = sorted((world.outbox_dir / AS_OF.isoformat()).glob("*.eml"))
    stamps = {path: path.stat().st_mtime_ns for path in files}
    before = action_rows(app)

    again = nights.dispatch(app, AS_OF)

    assert again.batches == 0 and sum(again.result.outcomes.values()) == 0
    assert sorted((world.outbox_dir / AS_OF.isoformat()).glob("*.eml")) == files
    assert {path: path.stat().st_mtime_ns for path in files} == stamps
    assert action_rows(app) == before
    verify_ok(app)


def test_a_batch_handed_over_again_sends_nothing_twice(world: World) -> None:
    """A Prefect retry of a batch, or a batch taken over from a dead worker, hands the
    dispatcher actions already sent, ``sending`` or ``unknown``: it leaves them alone."""
    app = world.app()
    planned = prepare(world, app, members_for("credit", "plain"))
    dispatcher = app.dispatcher(app.night(AS_OF))
    ids = sorted(planned.values())
    assert dispatcher.dispatch(ids).total("sent") == 4
    before = action_rows(app)
    files = sorted(world.outbox_dir.rglob("*.eml"))

    again = dispatcher.dispatch(ids)

    assert sum(again.outcomes.values()) == 0
    assert sorted(world.outbox_dir.rglob("*.eml")) == files
    assert action_rows(app) == before
    verify_ok(app)


# --- failures ----------------------------------------------------------------------------


def test_an_exhausted_budget_fails_the_action_without_a_reservation(world: World) -> None:
    app = world.app()
    planned = prepare(world, app, members_for("credit", n=3))
    # The budget is cut after planning: 5.00 USD is left, enough for one credit.
    path = world.campaigns_dir / "credit.yaml"
    path.write_text(path.read_text().replace('total: "100.00 USD"', 'total: "5.00 USD"'))
    campaign_set = load_campaign_set(world.campaigns_dir)
    with ledger.ledger_transaction(app.engine) as connection:
        ledger.sync_funding(connection, campaign_set.campaigns, AS_OF, ZONE)

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("sent") == 1 and run.result.total("failed") == 2
    rows = action_rows(app)
    failed = [m for m, r in rows.items() if r["state"] == "failed"]
    assert len(failed) == 2
    for member_id in failed:
        assert rows[member_id]["reason"].startswith("budget")
        assert rows[member_id]["reserved_at"] is None
        assert ledger_kinds(app, planned[member_id]) == []
        assert reward_state(app, planned[member_id]) is None
    with app.engine.connect() as connection:
        credit = ledger.campaign_balances(connection)["credit"]
    assert (credit.budget, credit.spent, credit.funded) == (0, 500, 500)
    verify_ok(app)


@pytest.fixture
def stripe() -> Iterator[StripeFake]:
    with StripeFake() as fake:
        yield fake


def test_a_permanent_reward_error_fails_the_action_and_voids_its_reservation(
    world: World, stripe: StripeFake
) -> None:
    app = world.app(
        rewards={"provider": "stripe"},
        stripe={"api_key": "sk_test_dispatch", "base_url": stripe.url},
    )
    planned = prepare(world, app, members_for("discount", "credit"))
    # Everybody has a Stripe customer except discount-1.
    for member_id in ("discount-0", "credit-0", "credit-1"):
        stripe.add_customer(f"cus_{member_id}", email=f"{member_id}@example.com")
        with app.engine.begin() as connection:
            connection.execute(
                sa.update(members)
                .where(members.c.member_id == member_id)
                .values(stripe_customer_id=f"cus_{member_id}")
            )

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("sent") == 3 and run.result.total("failed") == 1
    rows = action_rows(app)
    failed = rows["discount-1"]
    assert failed["state"] == "failed"
    assert "no Stripe customer" in failed["reason"]
    assert failed["reward_ref"] is None
    assert ledger_kinds(app, planned["discount-1"]) == ["reserve", "void"]
    assert not list(world.outbox_dir.rglob(f"{planned['discount-1']}.eml"))
    # One Stripe object per rewarded action, carrying its id; refs stored with the actions.
    for member_id in ("discount-0", "credit-0", "credit-1"):
        objects = stripe.objects_with_metadata("action_id", planned[member_id])
        assert [o["id"] for o in objects] == [rows[member_id]["reward_ref"]]
        assert rows[member_id]["state"] == "sent"
    assert stripe.objects_with_metadata("action_id", planned["discount-1"]) == []
    verify_ok(app)


def stripe_app(world: World, stripe: StripeFake, tagged: dict[str, list[str]]) -> App:
    """An app issuing through the Stripe fake, its night planned, every member a customer."""
    app = world.app(
        rewards={"provider": "stripe"},
        stripe={"api_key": "sk_test_dispatch", "base_url": stripe.url},
    )
    prepare(world, app, tagged)
    for member_id in (m for ids in tagged.values() for m in ids):
        stripe.add_customer(f"cus_{member_id}", email=f"{member_id}@example.com")
        with app.engine.begin() as connection:
            connection.execute(
                sa.update(members)
                .where(members.c.member_id == member_id)
                .values(stripe_customer_id=f"cus_{member_id}")
            )
    return app


REWARD_PATHS = r"/v1/(promotion_codes|customers/[^/]+/balance_transactions)"


def reward_requests(stripe: StripeFake, since: int = 0) -> list[tuple[str, str]]:
    """(method, path) of the requests about members' rewards (not the campaigns' coupons)."""
    return [
        (r.method, r.path)
        for r in stripe.requests[since:]
        if re.fullmatch(REWARD_PATHS, r.path) is not None
    ]


def test_a_first_attempt_makes_one_stripe_request_per_reward(
    world: World, stripe: StripeFake
) -> None:
    tagged = members_for("discount", "credit", n=3)
    app = stripe_app(world, stripe, tagged)

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("sent") == 6
    # The create only: no lookup by action id before it, and nothing else per reward.
    assert sorted(reward_requests(stripe)) == sorted(
        [("POST", "/v1/promotion_codes")] * 3
        + [("POST", f"/v1/customers/cus_credit-{n}/balance_transactions") for n in range(3)]
    )
    # Beside them, one coupon for the discount campaign: looked up, then created, once.
    others = [(r.method, r.path) for r in stripe.requests if not re.fullmatch(REWARD_PATHS, r.path)]
    assert len(others) == 2 and all(path.startswith("/v1/coupons") for _, path in others)
    rows = action_rows(app)
    for member_id, action_id in ((m, rows[m]["action_id"]) for ids in tagged.values() for m in ids):
        objects = stripe.objects_with_metadata("action_id", action_id)
        assert [o["id"] for o in objects] == [rows[member_id]["reward_ref"]]
    verify_ok(app)


def test_a_retried_reward_looks_for_what_the_earlier_attempt_made_first(
    world: World, stripe: StripeFake
) -> None:
    tagged = members_for("discount", "credit", n=1)
    app = stripe_app(world, stripe, tagged)
    api = app.issuer.providers["credit"].api  # type: ignore[attr-defined]
    api.retry = RetryPolicy(attempts=1)
    # Stripe makes both rewards, but the answers are lost: the actions stay `reserved`.
    stripe.fail_next("drop", times=2, method="POST", path=REWARD_PATHS)

    dispatcher = app.dispatcher(app.night(AS_OF))
    first = dispatcher.dispatch(dispatcher.pending())  # one pass

    assert first.total("deferred") == 2
    assert states(app) == {"discount-0": "reserved", "credit-0": "reserved"}
    assert sorted(m for m, _ in reward_requests(stripe)) == ["POST", "POST"]
    before = len(stripe.requests)

    dispatcher.dispatch(dispatcher.pending())  # the next pass: attempted before, so it looks first

    assert states(app) == {"discount-0": "sent", "credit-0": "sent"}
    assert sorted(reward_requests(stripe, before)) == [
        ("GET", "/v1/customers/cus_credit-0/balance_transactions"),
        ("GET", "/v1/promotion_codes"),
    ]
    rows = action_rows(app)
    for member_id in ("discount-0", "credit-0"):
        objects = stripe.objects_with_metadata("action_id", rows[member_id]["action_id"])
        assert [o["id"] for o in objects] == [rows[member_id]["reward_ref"]]  # made once
    verify_ok(app)


@pytest.mark.parametrize("problem", ["template", "address"])
def test_an_email_that_cannot_be_built_fails_and_withdraws_the_reward(
    world: World, problem: str
) -> None:
    app = world.app()
    if problem == "template":
        planned = prepare(world, app, members_for("broken", n=1))
        member_id = "broken-0"
    else:
        planned = prepare(world, app, members_for("credit", n=1))
        member_id = "credit-0"
        with app.engine.begin() as connection:
            connection.execute(
                sa.update(members)
                .where(members.c.member_id == member_id)
                .values(email="not an address")
            )
    action_id = planned[member_id]

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("failed") == 1
    row = action_rows(app)[member_id]
    assert row["state"] == "failed"
    assert row["reason"].startswith("cannot build the email")
    assert row["reward_ref"]  # it had been issued, then withdrawn
    assert reward_state(app, action_id) == "deactivated"
    assert ledger_kinds(app, action_id) == ["reserve", "issue", "void"]
    assert not list(world.outbox_dir.rglob("*.eml"))
    with app.engine.connect() as connection:
        balances = ledger.campaign_balances(connection)[row["campaign_id"]]
    assert (balances.reserved, balances.outstanding, balances.spent) == (0, 0, 0)
    verify_ok(app)


def test_consent_withdrawn_after_planning_fails_the_action_and_sends_nothing(
    world: World,
) -> None:
    app = world.app()
    planned = prepare(world, app, members_for("credit"))
    with app.engine.begin() as connection:
        add_events(
            connection,
            world.keys,
            [("credit-1", EventFact("unsubscribed", day_end(AS_OF, ZONE) + 60))],
        )

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("sent") == 1 and run.result.total("failed") == 1
    row = action_rows(app)["credit-1"]
    assert row["state"] == "failed"
    assert row["reason"].startswith("consent withdrawn")
    assert ledger_kinds(app, planned["credit-1"]) == []
    assert reward_state(app, planned["credit-1"]) is None
    files = list(world.outbox_dir.rglob("*.eml"))
    assert [f.stem for f in files] == [planned["credit-0"]]
    verify_ok(app)


def test_a_preference_made_after_planning_fails_the_action_and_sends_nothing(
    world: World,
) -> None:
    """Planned at midnight; at 00:01 one member pauses everything and another leaves the
    credit's category (rewards); dispatch at 02:00 sends to the other two only."""
    night_end = day_end(AS_OF, ZONE)
    app = world.app(clock=lambda: from_epoch(night_end + 2 * 3600))
    planned = prepare(world, app, members_for("credit", "plain"))
    choices = {
        "credit-0": PreferenceChange(categories_out=frozenset({"surveys"})),
        "credit-1": PreferenceChange(categories_out=frozenset({"rewards"})),
        "plain-0": PreferenceChange(pause_days=30),
    }
    for member_id, change in choices.items():
        token = UnsubscribeToken(member_id, "credit")
        with app.engine.begin() as connection:
            change_preferences(
                connection,
                token,
                change,
                ("rewards", "surveys"),
                at=from_epoch(night_end + 60),
                zone=ZONE,
            )

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("sent") == 2 and run.result.total("failed") == 2
    rows = action_rows(app)
    assert {m: r["state"] for m, r in rows.items()} == {
        "credit-0": "sent",
        "credit-1": "failed",
        "plain-0": "failed",
        "plain-1": "sent",
    }
    assert rows["credit-1"]["reason"] == (
        "the member unsubscribed from rewards in the preference centre since planning"
    )
    assert rows["plain-0"]["reason"] == (
        "the member paused all nudges in the preference centre since planning"
    )
    assert ledger_kinds(app, planned["credit-1"]) == []
    files = sorted(f.stem for f in world.outbox_dir.rglob("*.eml"))
    assert files == sorted([planned["credit-0"], planned["plain-1"]])
    verify_ok(app)


# --- SendGrid's answers ------------------------------------------------------------------


def test_sendgrid_refusing_the_email_fails_it_for_good(
    world: World, sendgrid: FakeSendGrid
) -> None:
    app = world.app()
    app.sender = sendgrid_sender(sendgrid)
    planned = prepare(world, app, members_for("credit", n=1))
    sendgrid.fail_next(400)

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("failed") == 1
    row = action_rows(app)["credit-0"]
    assert row["state"] == "failed"
    assert row["reason"].startswith("the email was refused: SendGrid refused the email: HTTP 400")
    assert row["sending_at"] is not None and row["message_id"] is None
    assert ledger_kinds(app, planned["credit-0"]) == ["reserve", "issue", "void"]
    assert reward_state(app, planned["credit-0"]) == "deactivated"
    assert sendgrid.messages == [] and sendgrid.attempts == 1
    nights.dispatch(app, AS_OF)  # failed is terminal: never tried again
    assert sendgrid.attempts == 1
    verify_ok(app)


def test_sendgrid_failing_until_retries_run_out_puts_the_action_back(
    world: World, sendgrid: FakeSendGrid
) -> None:
    app = world.app()
    app.sender = sendgrid_sender(sendgrid, max_attempts=2)
    planned = prepare(world, app, members_for("credit", "plain", n=1))
    sendgrid.fail_next(503, times=4)  # two attempts for each of the two actions
    dispatcher = app.dispatcher(app.night(AS_OF))
    dispatcher.config = dataclasses.replace(dispatcher.config, max_workers=1)

    first = dispatcher.dispatch(dispatcher.pending())

    assert first.total("deferred") == 2 and sendgrid.messages == []
    rows = action_rows(app)
    assert rows["credit-0"]["state"] == "reward_issued"  # back where it was before sending
    assert rows["plain-0"]["state"] == "planned"
    for row in rows.values():
        assert row["reason"].startswith("not sent, will retry: SendGrid still failing")
    assert sorted(dispatcher.pending()) == sorted(planned.values())
    assert ledger_kinds(app, planned["credit-0"]) == ["reserve", "issue"]

    second = dispatcher.dispatch(dispatcher.pending())  # the next pass

    assert second.total("sent") == 2
    assert states(app) == {"credit-0": "sent", "plain-0": "sent"}
    assert len(sendgrid.messages) == 2
    rows = action_rows(app)
    assert {r["message_id"] for r in rows.values()} == {m.message_id for m in sendgrid.messages}
    assert rows["credit-0"]["attempts"] == 2
    assert ledger_kinds(app, planned["credit-0"]) == ["reserve", "issue", "redeem"]
    verify_ok(app)


def test_an_accepted_email_whose_answer_was_lost_is_unknown_and_never_resent(
    world: World, sendgrid: FakeSendGrid
) -> None:
    app = world.app()
    app.sender = sendgrid_sender(sendgrid)
    planned = prepare(world, app, members_for("credit", n=1))
    sendgrid.timeout_next(accept=True)

    run = nights.dispatch(app, AS_OF)

    assert run.result.total("unknown") == 1
    assert len(sendgrid.messages) == 1  # SendGrid took it
    row = action_rows(app)["credit-0"]
    assert row["state"] == "unknown"
    assert "may have accepted" in row["reason"]
    # The reward stays outstanding until someone resolves the action.
    assert ledger_kinds(app, planned["credit-0"]) == ["reserve", "issue"]

    again = nights.dispatch(app, AS_OF)

    assert again.batches == 0
    assert len(sendgrid.messages) == 1 and sendgrid.attempts == 1
    assert states(app) == {"credit-0": "unknown"}
    verify_ok(app)


def test_a_refused_api_key_stops_the_dispatch_and_leaves_the_rest_pending(
    world: World, sendgrid: FakeSendGrid
) -> None:
    app = world.app()  # batches of 3
    app.sender = sendgrid_sender(sendgrid, api_key="SG.revoked")
    planned = prepare(world, app, members_for("plain", "credit", n=3))

    with pytest.raises(DispatchStopped, match="SendGrid refused the API key"):
        nights.dispatch(app, AS_OF)

    assert sendgrid.messages == []
    rows = action_rows(app)
    # The first batch (credit, by campaign order) was tried: each action back where it was.
    first = {m: r for m, r in rows.items() if m.startswith("credit")}
    rest = {m: r for m, r in rows.items() if m.startswith("plain")}
    assert {r["state"] for r in first.values()} <= {"reward_issued", "reserved", "planned"}
    assert {r["attempts"] for r in first.values()} == {1}
    # The next batch was never touched.
    assert {r["state"] for r in rest.values()} == {"planned"}
    assert {r["attempts"] for r in rest.values()} == {0}
    with app.engine.connect() as connection:
        assert sorted(outbox.pending_ids(connection, AS_OF)) == sorted(planned.values())

    app.sender = sendgrid_sender(sendgrid)  # the key is fixed
    run = nights.dispatch(app, AS_OF)
    assert run.result.total("sent") == 6
    assert len(sendgrid.messages) == 6
    verify_ok(app)


# --- crashes, recovery and resolution ---------------------------------------------------


class Crash(Exception):
    """Stands for the process dying at a checkpoint."""


def crash_at(point: str) -> Callable[[str], None]:
    def checkpoint(name: str) -> None:
        if name == point:
            raise Crash(name)

    return checkpoint


def crash_while_sending(world: World, app: App, tagged: dict[str, list[str]]) -> dict[str, str]:
    """Plan, then dispatch with a crash right after the email went: left in ``sending``."""
    planned = prepare(world, app, tagged)
    dispatcher = app.dispatcher(app.night(AS_OF), crash_at("after_send_accepted"))
    dispatcher.config = dataclasses.replace(dispatcher.config, max_workers=1)
    with pytest.raises(Crash):
        dispatcher.dispatch(dispatcher.pending())
    return planned


def test_actions_left_sending_become_unknown_on_recover(world: World) -> None:
    app = world.app()
    planned = crash_while_sending(world, app, members_for("credit", n=1))
    assert states(app) == {"credit-0": "sending"}
    assert len(list(world.outbox_dir.rglob("*.eml"))) == 1

    dispatcher = app.dispatcher(app.night(AS_OF))
    assert dispatcher.recover() == 1
    assert dispatcher.recover() == 0

    row = action_rows(app)["credit-0"]
    assert row["state"] == "unknown"
    assert "nudgeflow actions resolve" in row["reason"]
    assert row["finished_at"] is not None
    run = nights.dispatch(app, AS_OF)  # never re-sent
    assert run.batches == 0
    assert len(list(world.outbox_dir.rglob("*.eml"))) == 1
    assert ledger_kinds(app, planned["credit-0"]) == ["reserve", "issue"]
    verify_ok(app)


def resolve(app: App, action_id: str, *, sent: bool) -> str:
    campaigns = {c.id: c for c in load_campaign_set(app.settings.campaigns_dir).enabled}
    return resolve_unknown(
        app.engine,
        app.issuer,
        campaigns,
        action_id,
        sent=sent,
        now=datetime.now(UTC),
        signing_key=SIGNING_KEY,
    )


def test_resolving_unknown_actions_as_sent_or_not_sent(world: World) -> None:
    app = world.app()
    planned = crash_while_sending(world, app, members_for("credit", "discount", n=1))
    # One action went before the crash; dispatch the other into ``sending`` too.
    dispatcher = app.dispatcher(app.night(AS_OF), crash_at("after_send_accepted"))
    with pytest.raises(Crash):
        dispatcher.dispatch(dispatcher.pending())
    assert set(states(app).values()) == {"sending"}
    assert app.dispatcher(app.night(AS_OF)).recover() == 2
    credit, discount = planned["credit-0"], planned["discount-0"]

    assert resolve(app, credit, sent=True) == "sent"
    assert resolve(app, discount, sent=False) == "failed"

    rows = action_rows(app)
    assert rows["credit-0"]["state"] == "sent"
    assert rows["credit-0"]["reason"] == "resolved as sent by an operator"
    assert ledger_kinds(app, credit) == ["reserve", "issue", "redeem"]  # the credit is spent
    assert reward_state(app, credit) == "redeemed"
    assert rows["discount-0"]["state"] == "failed"
    assert rows["discount-0"]["reason"] == "resolved as not sent by an operator"
    assert ledger_kinds(app, discount) == ["reserve", "issue", "void"]
    assert reward_state(app, discount) == "deactivated"

    with pytest.raises(ResolveError, match="is sent, not unknown"):
        resolve(app, credit, sent=False)
    with pytest.raises(ResolveError, match="no action nope"):
        resolve(app, "nope", sent=True)
    assert ledger_kinds(app, credit) == ["reserve", "issue", "redeem"]
    verify_ok(app)


# --- a mixed night -----------------------------------------------------------------------


def test_a_mixed_night_keeps_the_ledger_sound_and_every_budget_within_its_funding(
    world: World, sendgrid: FakeSendGrid
) -> None:
    app = world.app()
    app.sender = sendgrid_sender(sendgrid)
    tagged = {
        "credit": [f"credit-{i}" for i in range(5)],
        "discount": [f"discount-{i}" for i in range(3)],
        "invite": [f"invite-{i}" for i in range(2)],
        "plain": [f"plain-{i}" for i in range(3)],
        "broken": ["broken-0"],
    }
    planned = prepare(world, app, tagged)
    # Credits can fund three of five; one member unsubscribes, another's address is bad;
    # SendGrid refuses one email, fails one for good and loses one answer.
    path = world.campaigns_dir / "credit.yaml"
    path.write_text(path.read_text().replace('total: "100.00 USD"', 'total: "15.00 USD"'))
    with ledger.ledger_transaction(app.engine) as connection:
        ledger.sync_funding(
            connection, load_campaign_set(world.campaigns_dir).campaigns, AS_OF, ZONE
        )
        add_events(
            connection,
            world.keys,
            [("discount-2", EventFact("unsubscribed", day_end(AS_OF, ZONE) + 60))],
        )
        connection.execute(
            sa.update(members).where(members.c.member_id == "invite-1").values(email="nope")
        )
    sendgrid.fail_next(400)
    sendgrid.timeout_next(accept=True)

    run = nights.dispatch(app, AS_OF)

    final = states(app)
    assert set(final.values()) <= {"sent", "failed", "unknown"}
    assert sum(1 for s in final.values() if s == "unknown") == 1
    assert run.result.total("sent") == sum(1 for s in final.values() if s == "sent")
    # Each email SendGrid took is recorded once, under its own action.
    action_ids = [m.body["custom_args"]["action_id"] for m in sendgrid.messages]
    assert len(action_ids) == len(set(action_ids))
    sent_ids = {planned[m] for m, s in final.items() if s == "sent"}
    assert sent_ids <= set(action_ids)
    with app.engine.connect() as connection:
        assert ledger.verify(connection).ok
        funded = ledger.campaign_balances(connection)
        ledger_states = {a: ledger.reward_state(connection, a) for a in planned.values()}
    for campaign_id, balances in funded.items():
        assert balances.committed <= balances.funded, campaign_id
        assert balances.budget >= 0, campaign_id
    assert funded["credit"].committed <= 1500
    # Failed actions hold nothing; sent credits and invites are spent.
    for member_id, state in final.items():
        held = ledger_states[planned[member_id]]
        if state == "failed":
            assert held in ("none", "voided"), member_id
        elif state == "sent" and member_id.startswith(("credit", "invite")):
            assert held == "redeemed", member_id


@pytest.mark.parametrize("change", ["unsubscribed", "campaign_removed"])
def test_an_action_failing_after_its_reward_was_issued_withdraws_the_reward(
    world: World, sendgrid: FakeSendGrid, change: str
) -> None:
    app = world.app()
    app.sender = sendgrid_sender(sendgrid, max_attempts=1)
    planned = prepare(world, app, members_for("credit", n=1))
    action_id = planned["credit-0"]
    sendgrid.fail_next(503)  # the first pass issues the reward, then cannot send
    dispatcher = app.dispatcher(app.night(AS_OF))
    assert dispatcher.dispatch(dispatcher.pending()).total("deferred") == 1
    assert states(app) == {"credit-0": "reward_issued"}
    if change == "unsubscribed":
        with app.engine.begin() as connection:
            add_events(
                connection,
                world.keys,
                [("credit-0", EventFact("unsubscribed", day_end(AS_OF, ZONE) + 60))],
            )
    else:
        (world.campaigns_dir / "credit.yaml").unlink()

    nights.dispatch(app, AS_OF)

    row = action_rows(app)["credit-0"]
    assert row["state"] == "failed"
    assert row["reason"].startswith("consent" if change == "unsubscribed" else "campaign credit")
    assert sendgrid.messages == []
    assert ledger_kinds(app, action_id) == ["reserve", "issue", "void"]
    assert reward_state(app, action_id) == "deactivated"  # not left usable
    verify_ok(app)

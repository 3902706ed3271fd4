"""What is issued is what was planned: an action keeps the campaign terms it was planned
under, and dispatch honours them even when the campaign file changed in between."""

from __future__ import annotations

import email
import email.policy

import sqlalchemy as sa

from store.ledger.tables import ledger_entries, ledger_transactions
from store.reward_tables import rewards
from tests.integration import nights
from tests.integration.night.test_dispatch import (
    AS_OF,
    CAMPAIGNS,
    World,
    action_rows,
    members_for,
    prepare,
    verify_ok,
    world,  # noqa: F401 (the fixture)
)


def test_a_reward_edited_after_planning_is_issued_as_planned(world: World) -> None:  # noqa: F811
    planned = prepare(world, world.app(), members_for("credit", n=1))
    action_id = planned["credit-0"]

    # The marketer doubles the credit and renames the template between planning and dispatch.
    edited = CAMPAIGNS["credit"].replace('amount: "5.00 USD"', 'amount: "10.00 USD"')
    edited = edited.replace("template: nudge", "template: nudge_v2")
    (world.campaigns_dir / "credit.yaml").write_text(edited)
    for suffix in (".txt.j2", ".html.j2"):
        source = (world.root / "templates" / f"nudge{suffix}").read_text()
        (world.root / "templates" / f"nudge_v2{suffix}").write_text("V2 " + source)

    app = world.app()  # a later run: it reads the edited file
    run = nights.dispatch(app, AS_OF)

    assert run.result.total("sent") == 1
    assert action_rows(app)["credit-0"]["state"] == "sent"
    with app.engine.connect() as connection:
        issued = connection.execute(
            sa.select(rewards.c.amount_minor, rewards.c.value_text).where(
                rewards.c.action_id == action_id
            )
        ).one()
        reserved = connection.execute(
            sa.select(ledger_entries.c.amount_minor)
            .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
            .where(
                ledger_transactions.c.action_id == action_id,
                ledger_transactions.c.kind == "reserve",
                ledger_entries.c.amount_minor > 0,
            )
        ).scalar_one()
    assert (issued.amount_minor, issued.value_text) == (500, "5.00 USD credit")
    assert reserved == 500
    eml = world.outbox_dir / AS_OF.isoformat() / f"{action_id}.eml"
    body = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = body.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "5.00 USD credit" in text
    assert "10.00" not in text and "V2" not in text  # the template it was planned with
    verify_ok(app)

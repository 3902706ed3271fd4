"""The pure parts of erasure: forgotten references (keyed, normalised, separated by kind),
the pseudonym (the ledger's member_ref), and redaction of stored JSON."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from domain.erasure import (
    ERASED,
    Subject,
    about_member,
    forgotten_ref,
    is_pseudonym,
    pseudonym,
)
from domain.postings import member_ref

KEY = "unit-test-key"
ADA = Subject("m1", "ada@example.org", "Ada Lovelace", pseudonym("m1", KEY))


def test_references_are_keyed_normalised_and_kept_apart() -> None:
    ref = forgotten_ref("email", " Ada@Example.ORG ", KEY)
    assert ref == forgotten_ref("email", "ada@example.org", KEY)
    assert len(ref) == 64 and "ada" not in ref
    assert ref != forgotten_ref("email", "ada@example.org", "another key")
    assert forgotten_ref("member_id", "x", KEY) != forgotten_ref("email", "x", KEY)


def test_the_pseudonym_is_the_ledgers_member_ref() -> None:
    assert pseudonym("m1", KEY) == "forgotten-" + member_ref("m1", KEY)
    assert is_pseudonym(pseudonym("m1", KEY)) and not is_pseudonym("m1")


def test_redaction_keeps_the_shape_and_removes_every_mention() -> None:
    value = {
        "note": "From ADA@example.org, signed ada lovelace",
        "who": "m1",
        "others": ["m10", "bob@example.org", {"ada@example.org": 3}],
        "amount": 12,
    }
    assert ADA.redact(value) == {
        "note": f"From {ERASED}, signed {ERASED}",
        "who": ADA.pseudonym,
        "others": ["m10", "bob@example.org", {ERASED: 3}],
        "amount": 12,
    }
    assert ADA.mentioned_in(value) and not ADA.mentioned_in(ADA.redact(value))


def test_items_about_the_member_go_whole() -> None:
    sendgrid = [{"email": "Ada@example.org", "event": "open"}, {"email": "b@x.org"}]
    assert ADA.redact(sendgrid, about_member("sendgrid", ADA)) == [{"email": "b@x.org"}]
    ingest = {
        "items": [
            {"type": "identify", "record": {"member_id": "m1", "city": "London"}},
            {"type": "track", "record": {"member_id": "m2", "ref": "m1"}},
        ]
    }
    assert ADA.redact(ingest, about_member("ingest", ADA)) == {
        "items": [{"type": "track", "record": {"member_id": "m2", "ref": ADA.pseudonym}}]
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values, st.sampled_from(["ada@example.org", "ADA@EXAMPLE.ORG", "Ada Lovelace"]))
def test_no_mention_survives_redaction(value: object, planted: str) -> None:
    document = {"planted": f"x{planted}y", "rest": value}
    redacted = ADA.redact(document)
    assert not ADA.mentioned_in(redacted)
    json.dumps(redacted)  # still JSON

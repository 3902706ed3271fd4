"""``/preferences/{token}`` on SQLite and PostgreSQL: the page lists the policy's categories
and changes nothing on GET; each form changes only what its button says (a pause keeps the
categories, saving the categories keeps a pause); bad tokens and forms change nothing."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from delivery.tokens import make_unsubscribe_token
from store.rows import CATEGORY_UNSUBSCRIBED, NUDGES_PAUSED, NUDGES_RESUMED
from tests.integration.web.service import KEY, events_of, opted_in, snapshot

CATEGORIES = ("rewards", "surveys", "community")


def url(member_id: str = "ada", key: str = KEY) -> str:
    return "/preferences/" + make_unsubscribe_token(key, member_id, "loyalist-survey")


def ticked(page: str) -> dict[str, bool]:
    """Each category's checkbox on the page: ticked or not."""
    found = re.findall(r'<input type="checkbox" id="category-(\w+)"[^>]*?( checked)?>', page)
    return {name: bool(checked) for name, checked in found}


def test_the_page_lists_the_categories_and_a_get_changes_nothing(
    client: TestClient, engine: sa.Engine
) -> None:
    before = snapshot(engine)
    response = client.get(url())
    assert response.status_code == 200
    page = response.text
    assert ticked(page) == dict.fromkeys(CATEGORIES, True)
    assert '<label class="choice" for="category-surveys">' in page
    assert "Surveys</label>" in page
    for value in ("save", "pause-30", "pause-90", "unsubscribe-all"):
        assert f'name="action" value="{value}"' in page
    assert "ada" not in page
    assert response.headers["referrer-policy"] == "no-referrer"
    assert snapshot(engine) == before


def test_saving_the_categories_records_only_what_changed(
    client: TestClient, engine: sa.Engine
) -> None:
    form = {"action": "save", "category": ["rewards", "community"]}
    response = client.post(url(), data=form)
    assert response.status_code == 200
    assert "Your choices are saved." in response.text
    assert ticked(response.text) == {"rewards": True, "surveys": False, "community": True}
    assert [(m, p["category"]) for m, p in events_of(engine, CATEGORY_UNSUBSCRIBED)] == [
        ("ada", "surveys")
    ]
    after = snapshot(engine)
    assert client.post(url(), data=form).status_code == 200
    assert snapshot(engine) == after
    assert ticked(client.get(url("bob")).text) == dict.fromkeys(CATEGORIES, True)


def test_a_pause_keeps_the_categories_and_resuming_ends_it(
    client: TestClient, engine: sa.Engine
) -> None:
    client.post(url(), data={"action": "save", "category": ["rewards"]})
    paused = client.post(url(), data={"action": "pause-30"})
    assert paused.status_code == 200
    assert "Paused: no emails from us until 20 December 2026, included." in paused.text
    assert "Your emails are paused until 20 December 2026, included." in paused.text
    assert 'value="resume"' in paused.text
    assert ticked(paused.text) == {"rewards": True, "surveys": False, "community": False}
    assert len(events_of(engine, NUDGES_PAUSED)) == 1

    # Saving the categories while paused keeps the pause.
    saved = client.post(url(), data={"action": "save", "category": ["rewards", "surveys"]})
    assert "Your emails are paused until 20 December 2026" in saved.text
    assert len(events_of(engine, NUDGES_PAUSED)) == 1

    resumed = client.post(url(), data={"action": "resume"})
    assert "Your emails are on again." in resumed.text
    assert 'value="pause-90"' in resumed.text
    assert len(events_of(engine, NUDGES_RESUMED)) == 1
    assert ticked(resumed.text) == {"rewards": True, "surveys": True, "community": False}


def test_unsubscribing_from_everything_and_subscribing_again(
    client: TestClient, engine: sa.Engine
) -> None:
    gone = client.post(url(), data={"action": "unsubscribe-all"})
    assert gone.status_code == 200
    assert "Done: you are unsubscribed from all our emails." in gone.text
    assert 'value="resubscribe"' in gone.text
    assert "<fieldset>" not in gone.text
    assert not opted_in(engine, "ada")
    assert [p["source"] for _, p in events_of(engine, "unsubscribed")] == ["preference-centre"]

    back = client.post(url(), data={"action": "resubscribe"})
    assert "Welcome back: you are subscribed again." in back.text
    assert opted_in(engine, "ada")
    assert len(events_of(engine, "consent_restored")) == 1
    assert opted_in(engine, "bob")


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"action": "pause-45"},
        {"action": "delete-me"},
        {"action": "save", "category": ["rewards", "lottery"]},
        {"List-Unsubscribe": "One-Click"},
    ],
    ids=["no button", "a pause not offered", "unknown button", "unknown category", "one-click"],
)
def test_forms_the_page_never_sends_get_400(
    client: TestClient, engine: sa.Engine, form: dict[str, object]
) -> None:
    before = snapshot(engine)
    response = client.post(url(), data=form)
    assert response.status_code == 400
    assert "We did not understand that request" in response.text
    assert snapshot(engine) == before


def test_bad_tokens_and_members_gone(client: TestClient, engine: sa.Engine) -> None:
    before = snapshot(engine)
    forged = url(key="another-signing-key-0123456789abcdef")
    for response in (client.get(forged), client.post(forged, data={"action": "pause-30"})):
        assert response.status_code == 400
    for response in (client.get(url("gone")), client.post(url("gone"), data={"action": "save"})):
        assert response.status_code == 404
    assert snapshot(engine) == before

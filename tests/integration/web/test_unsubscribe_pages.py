"""``/u/{token}`` on SQLite and PostgreSQL: a GET shows a button and changes nothing; the
one-click POST (RFC 8058) and the page's button withdraw consent once, answering 200 without
a redirect; bad tokens, bad bodies and oversized bodies change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from delivery.tokens import make_unsubscribe_token
from tests.integration.web.service import (
    KEY,
    Clock,
    events_of,
    make_app,
    opted_in,
    serve,
    snapshot,
)

CAMPAIGN = "loyalist-discount"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def link(member_id: str, key: str = KEY) -> str:
    return "/u/" + make_unsubscribe_token(key, member_id, CAMPAIGN)


def test_get_shows_a_button_and_changes_nothing(client: TestClient, engine: sa.Engine) -> None:
    before = snapshot(engine)
    for _ in range(3):  # a mail scanner, a preview, the member
        response = client.get(link("ada"))
        assert response.status_code == 200
    assert snapshot(engine) == before
    page = response.text
    assert '<html lang="en">' in page
    assert '<form method="post">' in page
    assert '<button type="submit" class="primary" name="action" value="unsubscribe">' in page
    assert "<script" not in page
    assert "ada@example.com" not in page
    assert "ada" not in page  # the member id is only inside the (encoded) token
    assert {name: response.headers[name] for name in HEADERS} == HEADERS


def test_one_click_post_withdraws_consent_once(client: TestClient, engine: sa.Engine) -> None:
    first = client.post(link("ada"), data=ONE_CLICK)
    assert first.status_code == 200
    assert "location" not in first.headers
    assert "You are unsubscribed" in first.text
    assert not opted_in(engine, "ada")
    assert events_of(engine, "unsubscribed") == [
        ("ada", {"campaign_id": CAMPAIGN, "source": "one-click"})
    ]
    after_first = snapshot(engine)

    again = client.post(link("ada"), data=ONE_CLICK)
    assert again.status_code == 200
    assert "location" not in again.headers
    assert "You had already unsubscribed" in again.text
    assert snapshot(engine) == after_first
    assert opted_in(engine, "bob")  # only the token's member


def test_one_click_as_multipart_form_data(client: TestClient, engine: sa.Engine) -> None:
    # RFC 8058 says providers SHOULD send multipart/form-data (most send URL-encoded).
    response = client.post(link("bob"), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert events_of(engine, "unsubscribed") == [
        ("bob", {"campaign_id": CAMPAIGN, "source": "one-click"})
    ]
    assert opted_in(engine, "ada")


def test_the_page_button_unsubscribes_as_a_link(client: TestClient, engine: sa.Engine) -> None:
    response = client.post(link("ada"), data={"action": "unsubscribe"})
    assert response.status_code == 200
    assert "Done: we will not send you any more emails." in response.text
    assert events_of(engine, "unsubscribed") == [
        ("ada", {"campaign_id": CAMPAIGN, "source": "link"})
    ]
    before = snapshot(engine)
    shown = client.get(link("ada"))
    assert shown.status_code == 200
    assert "You had already unsubscribed" in shown.text
    assert "<button" not in shown.text
    assert snapshot(engine) == before


def _bad_tokens() -> Iterator[tuple[str, str]]:
    good = make_unsubscribe_token(KEY, "ada", CAMPAIGN)
    payload, signature = good.split(".")
    bob_payload = make_unsubscribe_token(KEY, "bob", CAMPAIGN).split(".")[0]
    yield "truncated", good[:-5]
    yield "signature only half", f"{payload}.{signature[: len(signature) // 2]}"
    yield "another member's payload", f"{bob_payload}.{signature}"
    yield (
        "another key",
        make_unsubscribe_token("some-other-key-entirely-0123456789", "ada", CAMPAIGN),
    )
    yield "no signature", payload
    yield "garbage", "not-a-token"


@pytest.mark.parametrize(("case", "token"), list(_bad_tokens()), ids=[c for c, _ in _bad_tokens()])
def test_bad_tokens_get_400_and_change_nothing(
    client: TestClient, engine: sa.Engine, case: str, token: str
) -> None:
    before = snapshot(engine)
    for response in (
        client.get(f"/u/{token}"),
        client.post(f"/u/{token}", data=ONE_CLICK),
        client.post(f"/u/{token}", data={"action": "unsubscribe"}),
    ):
        assert response.status_code == 400, case
        assert "This link is not valid" in response.text
        assert response.headers["cache-control"] == "no-store"
    assert snapshot(engine) == before


def test_a_member_no_longer_on_record_gets_404(client: TestClient, engine: sa.Engine) -> None:
    before = snapshot(engine)
    for response in (client.get(link("gone")), client.post(link("gone"), data=ONE_CLICK)):
        assert response.status_code == 404
        assert "We have no record of you" in response.text
        assert "gone" not in response.text
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=Yes", "application/x-www-form-urlencoded"),
        (b"action=resubscribe", "application/x-www-form-urlencoded"),
        (b'{"List-Unsubscribe": "One-Click"}', "application/json"),
        (b"List-Unsubscribe=One-Click", "text/plain"),
        (b"\xff\xfe=\xff", "application/x-www-form-urlencoded"),
        (b"no parts here", "multipart/form-data; boundary=xyz"),
    ],
)
def test_a_post_that_is_neither_form_gets_400(
    client: TestClient, engine: sa.Engine, content: bytes, content_type: str
) -> None:
    before = snapshot(engine)
    response = client.post(link("ada"), content=content, headers={"content-type": content_type})
    assert response.status_code == 400
    assert "We did not understand that request" in response.text
    assert snapshot(engine) == before


def test_bodies_over_the_limit_get_413(db_url: str, engine: sa.Engine, people: object) -> None:
    app = make_app(db_url, Clock(), web={"max_body_bytes": 1024})
    body = b"List-Unsubscribe=One-Click&pad=" + b"x" * 2000

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    before = snapshot(engine)
    with serve(app) as client:
        form = {"content-type": "application/x-www-form-urlencoded"}
        declared = client.post(link("ada"), content=body, headers=form)
        streamed = client.post(link("ada"), content=chunks(), headers=form)
        within = client.post(link("bob"), content=body[:1000], headers=form)
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "That request was too large" in declared.text
    assert within.status_code == 200
    after = snapshot(engine)
    assert after[0] != before[0]  # bob's unsubscribe, and nothing of ada's
    assert [member for member, _ in events_of(engine, "unsubscribed")] == ["bob"]

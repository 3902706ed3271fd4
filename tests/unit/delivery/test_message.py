"""Building the outgoing message: addresses, the one-click unsubscribe headers, custom
args and categories, and the file outbox's MIME form of it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy

import pytest

from delivery.message import (
    Address,
    MessageError,
    build_message,
    display_name,
    list_unsubscribe_headers,
)
from delivery.render import RenderedEmail
from providers.file_outbox import to_mime
from providers.sendgrid import sendgrid_body

RENDERED = RenderedEmail("Hi Ada", "<p>Hi Ada</p>", "Hi Ada\n")
LINK = "https://shop.example/u/TOKEN123"


def message(**overrides: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {
        "rendered": RENDERED,
        "action_id": "act-1",
        "campaign_id": "loyalist-discount",
        "member_id": "m1",
        "as_of": date(2026, 11, 21),
        "to_email": "ada@example.com",
        "to_name": "Ada Lovelace",
        "from_address": "Shop Team <hello@shop.example>",
        "unsubscribe_url": LINK,
    }
    arguments.update(overrides)
    return build_message(**arguments)  # type: ignore[arg-type]


def test_addresses_subject_and_parts() -> None:
    built = message()
    assert built.sender == Address("hello@shop.example", "Shop Team")
    assert built.recipient == Address("ada@example.com", "Ada Lovelace")
    assert (built.subject, built.html, built.text) == ("Hi Ada", "<p>Hi Ada</p>", "Hi Ada\n")


def test_one_click_unsubscribe_headers() -> None:
    headers = message().headers
    assert headers["List-Unsubscribe"] == (
        f"<{LINK}>, <mailto:unsubscribe@shop.example?subject=unsubscribe%20TOKEN123>"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_mailbox_can_be_given() -> None:
    headers = list_unsubscribe_headers(LINK, "optout@lists.example")
    assert "<mailto:optout@lists.example?" in headers["List-Unsubscribe"]
    assert list_unsubscribe_headers(LINK, None)["List-Unsubscribe"] == f"<{LINK}>"


def test_custom_args_and_category() -> None:
    built = message()
    assert built.custom_args == {"action_id": "act-1", "campaign_id": "loyalist-discount"}
    assert built.categories == ("loyalist-discount",)


def test_bare_from_address_and_no_name() -> None:
    built = message(from_address="hello@shop.example", to_name=None)
    assert built.sender == Address("hello@shop.example", None)
    assert built.recipient.name is None


@pytest.mark.parametrize("bad", ["", "not an address", "a@b@c", "Shop <>"])
def test_unusable_from_address(bad: str) -> None:
    with pytest.raises(MessageError):
        message(from_address=bad)


def test_oversized_custom_args_are_refused() -> None:
    with pytest.raises(MessageError, match="10000"):
        message(action_id="x" * 10_001)


def test_display_name() -> None:
    assert display_name(" Ada ", "Lovelace") == "Ada Lovelace"
    assert display_name(None, "") is None


def test_sendgrid_body_carries_everything() -> None:
    send_at = datetime(2026, 11, 21, 9, tzinfo=UTC)
    body = sendgrid_body(message(send_at=send_at), sandbox_mode=True, unsubscribe_group_id=7)
    assert body["from"] == {"email": "hello@shop.example", "name": "Shop Team"}
    assert body["personalizations"] == [
        {"to": [{"email": "ada@example.com", "name": "Ada Lovelace"}]}
    ]
    assert body["content"] == [
        {"type": "text/plain", "value": "Hi Ada\n"},
        {"type": "text/html", "value": "<p>Hi Ada</p>"},
    ]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["custom_args"] == {"action_id": "act-1", "campaign_id": "loyalist-discount"}
    assert body["categories"] == ["loyalist-discount"]
    assert body["asm"] == {"group_id": 7}
    assert body["send_at"] == int(send_at.timestamp())
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_sendgrid_body_leaves_out_what_is_not_configured() -> None:
    body = sendgrid_body(message())
    assert not {"asm", "send_at", "mail_settings"} & body.keys()


def test_mime_form_has_the_same_headers_and_both_parts() -> None:
    sent = datetime(2026, 11, 21, 2, tzinfo=UTC)
    raw = to_mime(message(send_at=datetime(2026, 11, 21, 9, tzinfo=UTC)), sent).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["From"] == "Shop Team <hello@shop.example>"
    assert parsed["To"] == "Ada Lovelace <ada@example.com>"
    assert parsed["List-Unsubscribe"] == message().headers["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["X-Nudgeflow-Action-Id"] == "act-1"
    assert parsed["X-Nudgeflow-Send-At"] == "Sat, 21 Nov 2026 09:00:00 +0000"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]  # type: ignore[attr-defined]
    assert parts == ["text/plain", "text/html"]

"""The ``.eml`` files carry ``List-Unsubscribe`` as ``<url>, <mailto:…>`` in plain ASCII,
exactly the value SendGrid is given, read from the file's bytes (a parser would decode
RFC 2047 encoded words and hide them)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path

from delivery.message import OutgoingEmail, build_message
from delivery.render import RenderedEmail
from delivery.tokens import member_links
from providers.file_outbox import MIME_POLICY, FileOutboxSender, URLListHeader
from providers.sendgrid import sendgrid_body

SENT = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


def _message(unsubscribe_url: str) -> OutgoingEmail:
    return build_message(
        rendered=RenderedEmail("Ada, 15% off — on us", "<p>Hi Ada</p>", "Hi Ada\n"),
        action_id="0123456789abcdef0123456789abcdef",
        campaign_id="loyalist-discount",
        member_id="m000151",
        as_of=date(2026, 11, 21),
        to_email="ada@example.com",
        to_name="Ada Lovelace",
        from_address="Shop <hello@shop.example>",
        unsubscribe_url=unsubscribe_url,
    )


def _raw_headers(raw: bytes) -> dict[str, str]:
    """The message's own header lines, unfolded, as the file holds them (no decoding)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n[ \t]", " ", head)
    return dict(line.split(": ", 1) for line in unfolded.split("\r\n"))


def _written(tmp_path: Path, message: OutgoingEmail) -> bytes:
    FileOutboxSender(tmp_path, clock=lambda: SENT).send(message)
    return (tmp_path / "2026-11-21" / f"{message.action_id}.eml").read_bytes()


def test_list_unsubscribe_is_written_as_urls_like_sendgrid_sends_it(tmp_path: Path) -> None:
    # A real signed link: long enough that default folding used encoded words.
    link = member_links("https://shop.example", "key", "m000151", "loyalist-discount")
    message = _message(link["unsubscribe"])
    headers = _raw_headers(_written(tmp_path, message))
    token = link["unsubscribe"].rsplit("/", 1)[1]
    expected = (
        f"<{link['unsubscribe']}>, <mailto:unsubscribe@shop.example?subject=unsubscribe%20{token}>"
    )
    assert headers["List-Unsubscribe"] == expected
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "=?" not in headers["List-Unsubscribe"]
    # Exactly what the SendGrid request carries.
    sent = sendgrid_body(message)["headers"]
    assert sent == {
        "List-Unsubscribe": expected,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_a_very_long_list_is_folded_between_urls_never_inside_one(tmp_path: Path) -> None:
    url = "https://shop.example/u/" + "T" * 600
    raw = _written(tmp_path, _message(url))
    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"List-Unsubscribe:"))
    assert lines[start] == f"List-Unsubscribe: <{url}>,".encode()
    assert lines[start + 1].startswith(b" <mailto:unsubscribe@shop.example?subject=")
    assert all(len(line) <= 998 for line in lines)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")


def test_other_headers_keep_the_standard_encoding(tmp_path: Path) -> None:
    raw = _written(tmp_path, _message("https://shop.example/u/TOKEN"))
    headers = _raw_headers(raw)
    assert headers["Subject"].startswith("Ada, 15% off =?utf-8?")  # the dash is not ASCII
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Ada, 15% off — on us"
    # A value that cannot be a URL list (not ASCII) falls back to encoded words.
    header = MIME_POLICY.header_factory("List-Unsubscribe", "<https://shöp.example/u/T>")
    assert isinstance(header, URLListHeader)
    assert header.fold(policy=policy.SMTP).startswith("List-Unsubscribe: =?utf-8?")

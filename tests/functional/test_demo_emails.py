"""The demo's emails as a user opens them: a sample community, imported, run for two nights
with the shipped campaigns (thank-you gifts, credits, discounts and VIP invites all go out),
and every ``.eml`` in the outbox read back. No email shows ``None`` or an empty link, and
``List-Unsubscribe`` is written as ``<https://…>`` in the file itself."""

from __future__ import annotations

import re
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow

pytestmark = pytest.mark.prefect
# One campaign of each reward kind, all of which this community triggers on these nights.
KINDS = {
    "adopter-thank-you-gift": "gift",
    "champions-gift-certificate": "credit",
    "lapsed-loyalist-winback": "discount",
    "vip-inner-circle": "vip_invite",
}


def _raw_header(raw: bytes, name: str) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n[ \t]", " ", head)
    (value,) = [
        line.split(": ", 1)[1] for line in unfolded.split("\r\n") if line.startswith(name + ": ")
    ]
    return value


def _parts(raw: bytes) -> tuple[str, str, str]:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(parsed["Subject"]), text.get_content(), html.get_content()


def test_the_demo_nights_send_no_missing_values(
    nudgeflow: Nudgeflow, prefect_api_url: str, tmp_path: Path
) -> None:
    nudgeflow = nudgeflow.configure(timeout=300, PREFECT_API_URL=prefect_api_url)
    data = tmp_path / "demo"
    made = nudgeflow(
        "demo-data", "--members", "400", "--days", "400", "--seed", "7",
        "--end", "2026-06-30", "--out", str(data),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for kind in ("members", "events"):
        imported = nudgeflow(kind, "import", str(data / f"{kind}.csv"))
        assert imported.returncode == 0, imported.stderr
    checked = nudgeflow("validate")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    night = nudgeflow("run", "--from", "2026-06-29", "--to", "2026-06-30")
    assert night.returncode == 0, night.stdout + night.stderr

    sent: Counter[str] = Counter()
    for path in sorted((tmp_path / "outbox").glob("*/*.eml")):
        raw = path.read_bytes()
        campaign = _raw_header(raw, "X-Nudgeflow-Campaign-Id")
        sent[campaign] += 1
        subject, text, html = _parts(raw)
        for part in (subject, text, html):
            assert not re.search(r"\bNone\b", part), f"{campaign}: {path.name}"
        assert not re.search(r'href=(""|"None")', html), f"{campaign}: {path.name}"
        unsubscribe = _raw_header(raw, "List-Unsubscribe")
        assert unsubscribe.startswith("<https://shop.example/u/"), unsubscribe
        assert ">, <mailto:unsubscribe@shop.example?subject=unsubscribe%20" in unsubscribe
        assert _raw_header(raw, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        if campaign == "vip-inner-circle":
            assert 'href="https://shop.example/vip/' in html
    assert all(sent[campaign] > 0 for campaign in KINDS), sent

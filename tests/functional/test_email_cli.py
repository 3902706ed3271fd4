"""``nudgeflow preview`` and ``nudgeflow unsubscribe`` through the real console script."""

from __future__ import annotations

import re
from email import message_from_string, policy
from pathlib import Path

import pytest

from delivery.tokens import make_unsubscribe_token
from tests.functional.runner import SIGNING_KEY, Nudgeflow

MEMBERS = (
    "member_id,email,first_name,last_name,timezone\n"
    'm1,ann@example.com,"<b>Ann</b>",Lee,America/New_York\n'
)


@pytest.fixture
def imported(nudgeflow: Nudgeflow, tmp_path: Path) -> Path:
    (tmp_path / "members.csv").write_text(MEMBERS)
    result = nudgeflow("members", "import", "members.csv")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_preview_with_a_sample_member(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    result = nudgeflow("preview", "loyalist-discount", "--sample", "--out", "out")
    assert result.returncode == 0, result.stderr
    assert "subject: Ada, 15% off — on us" in result.stdout
    html = (tmp_path / "out" / "loyalist-discount.sample-0001.html").read_text()
    text = (tmp_path / "out" / "loyalist-discount.sample-0001.txt").read_text()
    headers = (tmp_path / "out" / "loyalist-discount.sample-0001.headers").read_text()
    assert "<style>" not in html and 'style="' in html  # CSS inlined
    assert "THANKS-7Q4M2" in html and "THANKS-7Q4M2" in text
    assert "https://shop.example/u/" in html and "https://shop.example/u/" in text
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in headers
    assert "X-Nudgeflow-Preview: the reward shown is a sample" in headers


def test_preview_for_a_real_member_then_unsubscribe(nudgeflow: Nudgeflow, imported: Path) -> None:
    result = nudgeflow("preview", "loyalist-discount", "--member", "m1", "--out", "out")
    assert result.returncode == 0, result.stderr
    html = (imported / "out" / "loyalist-discount.m1.html").read_text()
    text = (imported / "out" / "loyalist-discount.m1.txt").read_text()
    headers = message_from_string(
        (imported / "out" / "loyalist-discount.m1.headers").read_text(), policy=policy.default
    )
    assert "&lt;b&gt;Ann&lt;/b&gt;" in html and "<b>Ann</b>" not in html  # escaped in HTML
    assert text.startswith("Hi <b>Ann</b>,")  # kept as written in text
    assert headers["To"] == '"<b>Ann</b> Lee" <ann@example.com>'  # quoted, not markup
    link = re.search(r"<(https://shop\.example/u/[^>]+)>", headers["List-Unsubscribe"])
    assert link is not None and link.group(1) in html and link.group(1) in text
    token = link.group(1).rsplit("/", 1)[1]
    assert token == make_unsubscribe_token(SIGNING_KEY, "m1", "loyalist-discount")

    first = nudgeflow("unsubscribe", token)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "unsubscribed member m1 (from campaign loyalist-discount)"
    again = nudgeflow("unsubscribe", link.group(1))  # the whole link works too
    assert again.returncode == 0
    assert again.stdout.strip() == "member m1 was already unsubscribed"


def test_preview_usage_and_lookup_errors(nudgeflow: Nudgeflow, imported: Path) -> None:
    neither = nudgeflow("preview", "loyalist-discount")
    assert neither.returncode == 2
    typo = nudgeflow("preview", "loyalist-discont", "--sample")
    assert typo.returncode == 1
    assert typo.stderr.strip() == (
        "error: no campaign with id 'loyalist-discont' (did you mean 'loyalist-discount'?)"
    )
    ghost = nudgeflow("preview", "loyalist-discount", "--member", "ghost")
    assert (ghost.returncode, ghost.stderr.strip()) == (
        1,
        "error: no member with member_id 'ghost'",
    )


@pytest.mark.parametrize("kind", ["tampered", "other-key", "garbage"])
def test_unsubscribe_bad_tokens_exit_1_with_one_line(
    nudgeflow: Nudgeflow, imported: Path, kind: str
) -> None:
    token = make_unsubscribe_token(SIGNING_KEY, "m1", "loyalist-discount")
    bad = {
        "tampered": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "other-key": make_unsubscribe_token("someone-else", "m1", "loyalist-discount"),
        "garbage": "not-a-token",
    }[kind]
    result = nudgeflow("unsubscribe", bad)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid unsubscribe token")
    assert "Traceback" not in result.stderr


def test_unsubscribe_unknown_member_exits_1(nudgeflow: Nudgeflow, imported: Path) -> None:
    result = nudgeflow("unsubscribe", make_unsubscribe_token(SIGNING_KEY, "ghost", "c"))
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "error: no member with member_id 'ghost'",
    )

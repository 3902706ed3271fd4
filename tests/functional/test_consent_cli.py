"""``nudgeflow members import`` keeps withdrawn consent withdrawn and says how often, and
``nudgeflow members consent`` shows consent and restores it explicitly, with who and why."""

from __future__ import annotations

import json
from pathlib import Path

from tests.functional.runner import Nudgeflow

HEADER = "member_id,email,email_opt_in\n"


def test_import_keeps_consent_withdrawn_and_the_command_restores_it(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    (tmp_path / "members.csv").write_text(
        HEADER + "m1,ann@example.com,false\nm2,bob@example.com,\n"
    )
    assert nudgeflow("members", "import", "members.csv").returncode == 0
    (tmp_path / "members.csv").write_text(
        HEADER + "m1,ann@example.com,true\nm2,bob@example.com,true\n"
    )
    again = nudgeflow("members", "import", "members.csv")
    assert again.returncode == 0, again.stderr  # not an error
    assert again.stdout.strip() == (
        "imported 0, updated 0, rejected 0; unchanged 2; consent kept withdrawn for 1 "
        "(rows with email_opt_in=true; an import never restores consent, see nudgeflow "
        "members consent)"
    )

    shown = nudgeflow("members", "consent", "m1")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "m1: consent withdrawn: email_opt_in is false",
        "  only if the member asked for it: nudgeflow members consent m1 --restore --reason TEXT",
    ]

    no_reason = nudgeflow("members", "consent", "m1", "--restore")
    assert no_reason.returncode == 2
    assert "--restore needs --reason" in no_reason.stderr
    assert "Traceback" not in no_reason.stderr
    stray = nudgeflow("members", "consent", "m1", "--reason", "because")
    assert stray.returncode == 2
    assert "--reason and --by go with --restore" in stray.stderr

    restored = nudgeflow(
        "members", "consent", "m1", "--restore", "--reason", "asked by phone", "--by", "alice"
    )
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == (
        "m1: consent restored (it was withdrawn: email_opt_in is false); "
        "recorded as restored by alice: asked by phone"
    )
    document = json.loads(nudgeflow("members", "consent", "m1", "--json").stdout)
    assert document["consent"] == "given" and document["email_opt_in"] is True
    assert document["last_restore"] | {"at": None} == {
        "at": None,
        "by": "alice",
        "reason": "asked by phone",
        "source": "cli",
    }
    given = nudgeflow("members", "consent", "m2", "--restore", "--reason", "x")
    assert given.stdout.strip() == "m2: consent is given; nothing to restore"
    assert nudgeflow("members", "import", "members.csv").stdout.strip() == (
        "imported 0, updated 0, rejected 0; unchanged 2"
    )


def test_consent_of_an_unknown_member_is_one_line(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("members", "consent", "ghost")
    assert result.returncode == 1
    assert result.stderr == "error: no member with member_id 'ghost'\n"

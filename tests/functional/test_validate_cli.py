"""``nudgeflow validate`` and ``nudgeflow schema`` through the real console script.

Each test describes a project as a dict of file contents (the dbt habit), writes it into a
temporary directory and asserts on the exact located lines and the exit status.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow

ROOT = Path(__file__).resolve().parents[2]
NO_EVENTS = "note: skipped the check for event types never seen: the database has no events yet"

LAYOUT = {
    "templates/email/_layout.html.j2": (
        "<html><body>\n{% block content %}{% endblock %}\n"
        '<a href="{{ links.unsubscribe }}">Unsubscribe</a>\n</body></html>\n'
    ),
    "templates/email/_layout.txt.j2": (
        "{% block content %}{% endblock %}\n--\nUnsubscribe: {{ links.unsubscribe }}\n"
    ),
}


def _email(name: str, html: str = "<p>Hi {{ member.first_name }}</p>") -> dict[str, str]:
    return {
        f"templates/email/{name}.html.j2": '{% extends "_layout.html.j2" %}\n'
        "{% block content %}\n" + html + "\n{% endblock %}\n",
        f"templates/email/{name}.txt.j2": '{% extends "_layout.txt.j2" %}\n'
        "{% block content %}\nHi {{ member.first_name }}\n{% endblock %}\n",
    }


def _campaign(id_: str, template: str = "thanks", **lines: str) -> str:
    keys = {
        "id": id_,
        "name": f"Campaign {id_}",
        "audience": "{stage: loyalist}",
        "trigger": "{on: stage_entry}",
        "email": f'{{template: {template}, subject: "Thanks, {{{{ member.first_name }}}}"}}',
        **lines,
    }
    return "".join(f"{key}: {value}\n" for key, value in keys.items())


BASE = {
    "campaigns/lifecycle.yaml": (ROOT / "examples/lifecycles/retention-ladder.yaml").read_text(),
    "campaigns/policy.yaml": "frequency_caps:\n  - {max: 2, per: 7d}\n",
    "campaigns/thanks.yaml": _campaign("thanks"),
    **LAYOUT,
    **_email("thanks"),
}


def _write(root: Path, files: dict[str, str | None]) -> None:
    for name, text in files.items():
        path = root / name
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow) -> Nudgeflow:
    """The console script on the project written in its folder (paths relative to it)."""
    return nudgeflow.configure(
        NUDGEFLOW_CAMPAIGNS_DIR="campaigns", NUDGEFLOW_TEMPLATES_DIR="templates/email"
    )


def _validate(
    nudgeflow: Nudgeflow, files: dict[str, str | None]
) -> subprocess.CompletedProcess[str]:
    _write(nudgeflow.cwd, {**BASE, **files})
    return nudgeflow("validate")


def test_a_good_project_passes(nudgeflow: Nudgeflow) -> None:
    result = _validate(nudgeflow, {})

    assert result.stdout == f"{NO_EVENTS}\nchecked 1 campaign, 1 template: 0 errors, 0 warnings\n"
    assert result.returncode == 0, result.stderr


def test_every_problem_of_every_file_at_once(nudgeflow: Nudgeflow) -> None:
    result = _validate(
        nudgeflow,
        {
            "campaigns/policy.yaml": "frequency_caps:\n  - {max: 0, per: 7 days}\n",
            "campaigns/bad-keys.yaml": _campaign(
                "bad-keys",
                audience="{stage: loyalst, entered_stage: {within: 2x}}",
                eligibility="{once_per_member: true, holdut: {percent: 10, salt: a}}",
            ),
            "campaigns/dup-key.yaml": _campaign("dup-key") + "priority: 5\npriority: 6\n",
            "campaigns/same-id.yaml": _campaign("thanks"),
            "campaigns/reward.yaml": _campaign(
                "reward", reward="{kind: discount, percent_off: 15, amount: '5.00 USD'}"
            ),
            "campaigns/money.yaml": _campaign(
                "money", reward="{kind: credit, amount: '5,00 USD', expires_in: 1 month}"
            ),
            "campaigns/budget.yaml": _campaign(
                "budget", reward="{kind: discount, percent_off: 15}", budget="{total: 5000 USD}"
            ),
            "campaigns/no-template.yaml": _campaign("no-template", template="thanx"),
            "campaigns/typo.yaml": _campaign("typo", template="typo"),
            **_email("typo", "<p>Hi {{ member.frist_name }}</p>"),
        },
    )

    assert result.stdout.splitlines() == [
        "campaigns/bad-keys.yaml:3:12: audience.stage: unknown stage 'loyalst' "
        "(did you mean 'loyalist'?)",
        "campaigns/bad-keys.yaml:3:44: audience.entered_stage.within: expected a duration "
        "such as '14d' or '2w', got '2x'",
        "campaigns/bad-keys.yaml:6:38: eligibility.holdut: unknown key 'holdut' "
        "(did you mean 'holdout'?)",
        "campaigns/budget.yaml:7:1: budget: a budget on a percent discount needs "
        "reward.cost_estimate (what finance reserves per reward)",
        'campaigns/dup-key.yaml:7:1: duplicate key "priority" with value "6" (original value: "5")',
        "campaigns/money.yaml:6:24: reward.amount: expected an amount and a currency such as "
        "'10.00 USD', got '5,00 USD'",
        "campaigns/money.yaml:6:44: reward.expires_in: expected a duration such as '14d' or "
        "'2w', got '1 month'",
        "campaigns/no-template.yaml:5:9: email.template: unknown template 'thanx': no "
        "templates/email/thanx.html.j2 or templates/email/thanx.txt.j2 "
        "(did you mean 'thanks'?)",
        "campaigns/policy.yaml:2:6: frequency_caps[0].max: must be from 1 to 1000000, got 0",
        "campaigns/policy.yaml:2:14: frequency_caps[0].per: expected a duration such as "
        "'14d' or '2w', got '7 days'",
        "campaigns/reward.yaml:6:43: reward.amount: amount does not apply to a discount "
        "reward (amount_off, cost_estimate, expires_in, percent_off)",
        "campaigns/thanks.yaml:1:1: id: campaign id 'thanks' is also used by "
        "campaigns/same-id.yaml",
        "campaigns/typo.yaml:5:9: email.template: templates/email/typo.html.j2:3: unknown "
        "variable 'member.frist_name' (did you mean 'member.first_name'?)",
        NO_EVENTS,
        "checked 9 campaigns, 2 templates: 13 errors, 0 warnings",
    ]
    assert result.returncode == 1
    assert result.stderr == ""


def test_template_syntax_sandbox_and_unsubscribe_problems(nudgeflow: Nudgeflow) -> None:
    result = _validate(
        nudgeflow,
        {
            "campaigns/broken.yaml": _campaign("broken", template="broken"),
            "campaigns/escape.yaml": _campaign("escape", template="escape"),
            "campaigns/no-unsub.yaml": _campaign("no-unsub", template="no_unsub"),
            "campaigns/subject.yaml": _campaign(
                "subject", email='{template: thanks, subject: "Hi {{ member.first_nme }}"}'
            ),
            **_email("broken", "<p>{{ member.first_name }</p>"),
            **_email("escape", "<p>{{ cycler.__init__.__globals__ }}</p>"),
            **_email("no_unsub"),
            "templates/email/no_unsub.txt.j2": "Hi {{ member.first_name }}\n",
        },
    )

    assert result.stdout.splitlines() == [
        "campaigns/escape.yaml:5:9: email.template: templates/email/escape.html.j2:3: "
        "refused by the sandbox: '__globals__' (names starting with '_' are private)",
        "campaigns/escape.yaml:5:9: email.template: templates/email/escape.html.j2:3: "
        "refused by the sandbox: '__init__' (names starting with '_' are private)",
        "campaigns/no-unsub.yaml:5:9: email.template: templates/email/no_unsub.txt.j2: "
        "no visible unsubscribe link: extend the layout or show {{ links.unsubscribe }}",
        "campaigns/subject.yaml:5:27: email.subject: unknown variable 'member.first_nme' "
        "(did you mean 'member.first_name'?)",
        "templates/email/broken.html.j2:3:1: unexpected '}'",
        NO_EVENTS,
        "checked 5 campaigns, 4 templates: 5 errors, 0 warnings",
    ]
    assert result.returncode == 1


def test_event_types_never_seen_are_warnings_and_exit_0(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    _write(
        tmp_path,
        {
            "members.csv": "member_id,email\nm1,ada@example.com\n",
            "events.csv": "event_id,member_id,type,occurred_at\n"
            "e1,m1,purchase,2026-01-02T10:00:00Z\ne2,m1,email_clicked,2026-01-03T10:00:00Z\n",
        },
    )
    assert nudgeflow("members", "import", "members.csv").returncode == 0
    assert nudgeflow("events", "import", "events.csv").returncode == 0

    result = _validate(
        nudgeflow,
        {
            "campaigns/thanks.yaml": _campaign(
                "thanks",
                trigger="{on: event, types: [referral_convertd]}",
                audience="{stage: loyalist, events: {type: reviews_posted, min: 1}}",
            )
        },
    )

    warning = "warning: event type '{}' never occurs in the events table"
    advocacy = ["review_posted", "referral_made", "case_study", "talk_given", "guest_post"]
    columns = [23, 38, 53, 65, 77, 89]
    assert result.stdout.splitlines() == [
        *(
            f"campaigns/lifecycle.yaml:19:{column}: stages[2].when.events.type[{index}]: "
            + warning.format(name)
            for index, (column, name) in enumerate(
                zip(columns, [*advocacy, "answer_posted"], strict=True)
            )
        ),
        "campaigns/lifecycle.yaml:22:26: scoring.points.community_post: "
        + warning.format("community_post"),
        "campaigns/thanks.yaml:3:38: audience.events.type: " + warning.format("reviews_posted"),
        "campaigns/thanks.yaml:4:30: trigger.types[0]: " + warning.format("referral_convertd"),
        "checked 1 campaign, 1 template: 0 errors, 9 warnings",
    ]
    assert result.returncode == 0


@pytest.mark.parametrize(
    "folder",
    [
        "campaigns",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples/campaign-sets").iterdir()),
    ],
)
def test_the_shipped_campaign_sets_pass(nudgeflow: Nudgeflow, folder: str) -> None:
    result = nudgeflow(
        "validate",
        NUDGEFLOW_CAMPAIGNS_DIR=str(ROOT / folder),
        NUDGEFLOW_TEMPLATES_DIR=str(ROOT / "templates/email"),
    )

    assert result.returncode == 0, result.stdout
    assert result.stdout.endswith(" 0 errors, 0 warnings\n")


def test_schema_prints_and_writes_the_committed_schema(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    committed = (ROOT / "docs/schema/campaign.schema.json").read_text(encoding="utf-8")

    printed = nudgeflow("schema")
    written = nudgeflow("schema", "--out", "out/campaign.schema.json")

    assert printed.returncode == 0
    assert printed.stdout == committed
    assert written.stdout == "wrote out/campaign.schema.json\n"
    assert (tmp_path / "out/campaign.schema.json").read_text(encoding="utf-8") == committed


def test_variant_templates_and_subjects_are_checked_at_their_keys(nudgeflow: Nudgeflow) -> None:
    variants = (
        "\n  - {id: plain}"
        "\n  - {id: short, template: thanx}"
        '\n  - {id: bold, subject: "Hi {{ member.frist_name }}"}'
        "\n  - {id: fine, template: short_thanks, subject: Thanks}"
    )
    result = _validate(
        nudgeflow,
        {
            "campaigns/thanks.yaml": _campaign("thanks", variants=variants),
            **_email("short_thanks"),
        },
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "campaigns/thanks.yaml:8:17: variants[1].template: unknown template 'thanx'"
    )
    assert lines[1].startswith("campaigns/thanks.yaml:9:16: variants[2].subject:")
    assert "frist_name" in lines[1]
    assert len([line for line in lines if line.startswith("campaigns/")]) == 2
    assert result.returncode == 1

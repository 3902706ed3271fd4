"""``nudgeflow validate`` as a user and a CI job run it: every problem of every file in one
run (broken YAML, a broken lifecycle, cross-key rules, templates), ``--format json``, and
hostile files and templates refused as problems, quickly, never as a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

NUDGEFLOW = Path(sys.executable).parent / "nudgeflow"
ROOT = Path(__file__).resolve().parents[2]
NOTE = "note: skipped the check for event types never seen: the database has no events yet"
LIFECYCLE = (ROOT / "examples/lifecycles/retention-ladder.yaml").read_text(encoding="utf-8")
LAYOUT = {
    "templates/email/_layout.html.j2": (
        "<html><body>{% block content %}{% endblock %}"
        '<a href="{{ links.unsubscribe }}">Unsubscribe</a></body></html>\n'
    ),
    "templates/email/_layout.txt.j2": (
        "{% block content %}{% endblock %}\nUnsubscribe: {{ links.unsubscribe }}\n"
    ),
}


def _email(name: str, body: str = "Hi {{ member.first_name }}") -> dict[str, str]:
    return {
        f"templates/email/{name}.{suffix}.j2": f'{{% extends "_layout.{suffix}.j2" %}}'
        f"{{% block content %}}{body}{{% endblock %}}\n"
        for suffix in ("html", "txt")
    }


def _campaign(id_: str, **lines: str) -> str:
    keys = {
        "id": id_,
        "name": f"Campaign {id_}",
        "audience": "{stage: loyalist}",
        "trigger": "{on: stage_entry}",
        "email": '{template: thanks, subject: "Thanks, {{ member.first_name }}"}',
        **lines,
    }
    return "".join(f"{key}: {value}\n" for key, value in keys.items())


BASE = {
    "campaigns/lifecycle.yaml": LIFECYCLE,
    "campaigns/thanks.yaml": _campaign("thanks"),
    **LAYOUT,
    **_email("thanks"),
}


def _run(project: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    for name, text in {**BASE, **files}.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    env |= {
        "NUDGEFLOW_CAMPAIGNS_DIR": "campaigns",
        "NUDGEFLOW_TEMPLATES_DIR": "templates/email",
        "NUDGEFLOW_DATABASE_URL": f"sqlite:///{project / 'nudgeflow.db'}",
    }
    return subprocess.run(
        [str(NUDGEFLOW), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_one_run_reports_every_layer_of_every_file(tmp_path: Path) -> None:
    # Before: a broken lifecycle skipped the stage checks, a bad key hid the cross-key
    # rules and the templates of its campaign, and the unknown filter was a traceback.
    result = _run(
        tmp_path,
        {
            "campaigns/lifecycle.yaml": LIFECYCLE.replace(
                "- id: loyalist", "- id: loyalst"
            ).replace("expire_after: 180d", "expire_after: soon"),
            "campaigns/broken.yaml": "id: broken\nname: [unclosed\n",
            "campaigns/layers.yaml": _campaign(
                "layers",
                priority="1.5",
                trigger="{on: schedule}",
                reward="{kind: discount, amount_off: '0.00 USD', item: a card}",
                email='{template: typo, subject: "Hi"}',
            ),
            **_email("typo", "Hi {{ member.frist_name }}"),
            "templates/email/orphan.html.j2": "{{ member.first_name|uper }}\n",
        },
        "validate",
    )

    assert result.stdout.splitlines() == [
        "campaigns/broken.yaml:3:1: expected ',' or ']', but got '<stream end>'",
        "campaigns/layers.yaml:1:1: a schedule campaign needs eligibility.once_per_member or "
        "eligibility.cooldown, or it would nudge the same members every night",
        "campaigns/layers.yaml:3:12: audience.stage: unknown stage 'loyalist' (did you mean "
        "'loyalst'?); also named in 1 other place: campaigns/thanks.yaml:3:12",
        "campaigns/layers.yaml:5:9: email.template: templates/email/typo.html.j2:1: unknown "
        "variable 'member.frist_name' (did you mean 'member.first_name'?)",
        "campaigns/layers.yaml:5:9: email.template: templates/email/typo.txt.j2:1: unknown "
        "variable 'member.frist_name' (did you mean 'member.first_name'?)",
        "campaigns/layers.yaml:6:1: priority: expected a whole number, got 1.5",
        "campaigns/layers.yaml:7:26: reward.amount_off: must be more than zero, got '0.00 USD'",
        "campaigns/layers.yaml:7:50: reward.item: item does not apply to a discount reward "
        "(amount_off, cost_estimate, expires_in, percent_off)",
        "campaigns/lifecycle.yaml:23:3: scoring.expire_after: expected a duration such as "
        "'14d' or '2w', got 'soon'",
        "templates/email/orphan.html.j2:1:1: unknown filter 'uper' (did you mean 'upper'?)",
        NOTE,
        "checked 3 campaigns, 3 templates: 10 errors, 0 warnings",
    ]
    assert result.returncode == 1
    assert result.stderr == ""


def test_format_json_for_tools_and_ci(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        {"campaigns/thanks.yaml": _campaign("thanks", priority="5000")},
        "validate",
        "--format",
        "json",
    )

    assert json.loads(result.stdout) == {
        "ok": False,
        "problems": [
            {
                "path": "campaigns/thanks.yaml",
                "line": 6,
                "column": 1,
                "key": "priority",
                "message": "must be from 0 to 1000, got 5000",
                "severity": "error",
            }
        ],
        "notes": [NOTE],
    }
    assert result.returncode == 1
    assert result.stderr == ""


def test_format_json_of_a_clean_project(tmp_path: Path) -> None:
    result = _run(tmp_path, {}, "validate", "--format", "json")
    assert json.loads(result.stdout) == {"ok": True, "problems": [], "notes": [NOTE]}
    assert result.returncode == 0


def test_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path, {}, "validate", "--format", "xml")
    assert result.returncode == 2
    assert "expected text or json, got 'xml'" in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.stderr


def _billion_laughs() -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    return text


def test_hostile_files_and_templates_are_problems_found_quickly(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run(
        tmp_path,
        {
            "campaigns/bomb.yaml": _billion_laughs(),
            "campaigns/deep.yaml": "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
            "campaigns/huge.yaml": "description: " + "x" * (1024 * 1024) + "\n",
            "campaigns/loops.yaml": _campaign(
                "loops", email='{template: loops, subject: "{{ 9 ** (9 ** 9) }}"}'
            ),
            **_email(
                "loops",
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            ),
        },
        "validate",
    )
    elapsed = time.monotonic() - started

    assert result.stdout.splitlines() == [
        "campaigns/bomb.yaml:1:1: the document holds more than 10,000 values once its "
        "aliases are expanded (a YAML alias bomb?)",
        "campaigns/deep.yaml:1:53: the document is nested more than 50 levels deep",
        "campaigns/huge.yaml:1:1: the file is 1,048,590 bytes; campaign files may be at most "
        "1,048,576 bytes",
        "campaigns/loops.yaml:5:9: email.template: templates/email/loops.html.j2:1: the "
        "template ran more than 100,000 loop iterations and calls",
        "campaigns/loops.yaml:5:9: email.template: templates/email/loops.txt.j2:1: the "
        "template ran more than 100,000 loop iterations and calls",
        "campaigns/loops.yaml:5:26: email.subject: a number larger than 2**4096 is not allowed",
        NOTE,
        "checked 5 campaigns, 2 templates: 6 errors, 0 warnings",
    ]
    assert result.returncode == 1
    assert elapsed < 60, f"validate took {elapsed:.0f} s"


@pytest.mark.parametrize("kind", ["campaign", "lifecycle", "policy"])
def test_schema_prints_each_committed_schema(tmp_path: Path, kind: str) -> None:
    committed = (ROOT / f"docs/schema/{kind}.schema.json").read_text(encoding="utf-8")
    result = _run(tmp_path, {}, "schema", kind)
    assert result.stdout == committed
    assert result.returncode == 0


def test_schema_of_an_unknown_kind_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path, {}, "schema", "templates")
    assert result.returncode == 2
    said = " ".join(result.stderr.replace("│", " ").split())
    assert "expected one of campaign, lifecycle, policy, pathway, got 'templates'" in said

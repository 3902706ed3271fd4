"""``nudgeflow actions resolve ID --sent|--not-sent`` through the real console script, on a
SQLite night whose dispatch died right after two emails went (both now ``unknown``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import ledger
from tests.functional.runner import Nudgeflow
from tests.integration.night.test_dispatch import (
    AS_OF,
    SIGNING_KEY,
    World,
    close_world,
    crash_at,
    crash_while_sending,
    ledger_kinds,
    make_world,
    members_for,
    reward_state,
    states,
)


@pytest.fixture
def unknown(tmp_path: Path) -> tuple[World, dict[str, str]]:
    world = make_world(f"sqlite:///{tmp_path / 'nudgeflow.db'}", tmp_path)
    app = world.app()
    planned = crash_while_sending(world, app, members_for("credit", "discount", n=1))
    dispatcher = app.dispatcher(app.night(AS_OF), crash_at("after_send_accepted"))
    with pytest.raises(Exception, match="after_send_accepted"):
        dispatcher.dispatch(dispatcher.pending())
    assert app.dispatcher(app.night(AS_OF)).recover() == 2
    close_world(world)
    return world, planned


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, unknown: tuple[World, dict[str, str]]) -> Nudgeflow:
    """The console script on the world's database, campaigns and templates, in Paris."""
    world, _ = unknown
    return nudgeflow.configure(
        cwd=world.root,
        NUDGEFLOW_DATABASE_URL=world.db_url,
        NUDGEFLOW_CAMPAIGNS_DIR=str(world.campaigns_dir),
        NUDGEFLOW_TEMPLATES_DIR=str(world.root / "templates"),
        NUDGEFLOW_TIMEZONE="Europe/Paris",
        NUDGEFLOW_SIGNING_KEY=SIGNING_KEY,
    )


def test_resolve_settles_unknown_actions_as_sent_or_not_sent(
    nudgeflow: Nudgeflow, unknown: tuple[World, dict[str, str]]
) -> None:
    world, planned = unknown
    credit, discount = planned["credit-0"], planned["discount-0"]

    for flags in ([], ["--sent", "--not-sent"]):
        refused = nudgeflow("actions", "resolve", credit, *flags)
        assert refused.returncode == 2, refused.stderr
        assert "exactly one of --sent or --not-sent" in refused.stderr

    sent = nudgeflow("actions", "resolve", credit, "--sent")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == f"action {credit}: sent\n"

    not_sent = nudgeflow("actions", "resolve", discount, "--not-sent")
    assert not_sent.returncode == 0, not_sent.stderr
    assert not_sent.stdout == f"action {discount}: failed\n"

    again = nudgeflow("actions", "resolve", credit, "--not-sent")
    assert again.returncode == 1
    assert again.stderr == f"error: action {credit} is sent, not unknown: nothing to resolve\n"
    missing = nudgeflow("actions", "resolve", "nope", "--sent")
    assert missing.returncode == 1
    assert missing.stderr == "error: no action nope\n"

    app = world.app()
    try:
        assert states(app) == {"credit-0": "sent", "discount-0": "failed"}
        assert ledger_kinds(app, credit) == ["reserve", "issue", "redeem"]
        assert ledger_kinds(app, discount) == ["reserve", "issue", "void"]
        assert reward_state(app, discount) == "deactivated"
        with app.engine.connect() as connection:
            assert ledger.verify(connection).ok
    finally:
        close_world(world)
    verified = nudgeflow("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

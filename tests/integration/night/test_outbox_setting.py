"""An outbox path that is not a folder is a configuration error raised when the night's
sender is built, before dispatch touches any action: every action stays planned for the
next run, instead of each one failing for good with "cannot write"."""

from __future__ import annotations

import pytest

from nudgeflow.errors import SettingsError
from tests.integration import nights
from tests.integration.night.test_dispatch import (
    AS_OF,
    World,
    members_for,
    prepare,
    states,
    world,  # noqa: F401 (the fixture)
)


def test_a_file_where_the_outbox_should_be_touches_no_action(world: World) -> None:  # noqa: F811
    world.outbox_dir.write_text("a file where the outbox folder should be")
    app = world.app()
    planned = prepare(world, app, members_for("credit", "plain"))

    with pytest.raises(SettingsError, match=r"NUDGEFLOW_EMAIL__OUTBOX_DIR: .* is not a folder"):
        nights.dispatch(app, AS_OF)

    assert states(app) == dict.fromkeys(planned, "planned")
    # Fixed, the next run sends them.
    world.outbox_dir.unlink()
    assert nights.dispatch(world.app(), AS_OF).result.total("sent") == len(planned)

"""The composition root's checks before anything is sent: the outbox folder (created, or a
settings error naming the variable) and the signing key (empty refused by the settings, the
shipped default refused by the commands that send and only a warning elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bootstrap.app import build_app
from bootstrap.providers import build_sender, outbox_folder
from nudgeflow.errors import SettingsError
from providers.file_outbox import FileOutboxSender
from settings import AppSettings


def settings(tmp_path: Path, **values: object) -> AppSettings:
    base: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'nudgeflow.db'}",
        "email": {"outbox_dir": tmp_path / "outbox"},
        "signing_key": SecretStr("a-real-secret"),
    }
    return AppSettings(_env_file=None, **{**base, **values})  # type: ignore[call-arg, arg-type]


def test_the_outbox_folder_is_created_with_its_parents(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "outbox"
    assert outbox_folder(folder) == folder
    assert folder.is_dir()
    sender = build_sender(settings(tmp_path, email={"outbox_dir": folder}))
    assert isinstance(sender, FileOutboxSender) and sender.outbox_dir == folder


def test_an_outbox_that_is_a_file_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("not a folder")
    with pytest.raises(SettingsError) as caught:
        build_sender(settings(tmp_path))
    assert str(caught.value) == (
        f"NUDGEFLOW_EMAIL__OUTBOX_DIR: {tmp_path / 'outbox'} exists and is not a folder; "
        "remove it or choose another path"
    )


def test_an_outbox_under_a_file_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("not a folder")
    with pytest.raises(SettingsError, match=r"^NUDGEFLOW_EMAIL__OUTBOX_DIR: cannot create"):
        outbox_folder(tmp_path / "var" / "outbox")


def test_the_default_signing_key_is_refused_for_sending_and_warned_about_otherwise(
    tmp_path: Path,
) -> None:
    app = build_app(settings(tmp_path, signing_key=SecretStr("change-me")))
    with pytest.raises(SettingsError, match=r"^NUDGEFLOW_SIGNING_KEY: still the default"):
        app.check_sending()
    assert not (tmp_path / "outbox").exists()  # refused before the sender was built
    warning = app.signing_key_warning()
    assert warning is not None and warning.startswith("warning: NUDGEFLOW_SIGNING_KEY")


def test_a_real_key_and_a_folder_pass(tmp_path: Path) -> None:
    app = build_app(settings(tmp_path))
    app.check_sending()
    assert app.signing_key_warning() is None
    assert (tmp_path / "outbox").is_dir()

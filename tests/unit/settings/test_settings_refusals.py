"""Settings that cannot be used fail at start-up with one line naming the variable or the
file: an empty signing key, a ``.env`` that is not UTF-8 or is a FIFO; a directory named
``.env`` (a virtualenv) is not a settings file and is left alone. ``NUDGEFLOW_DEBUG``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nudgeflow.errors import SettingsError
from settings import load_settings
from settings.app import debug_requested


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("NUDGEFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_signing_key_is_refused(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("NUDGEFLOW_SIGNING_KEY", key)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("NUDGEFLOW_SIGNING_KEY: must not be empty: set a long random")
    assert "secrets.token_urlsafe" in message and "\n" not in message


def test_the_default_signing_key_loads_and_is_known_as_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().signing_key_is_default
    monkeypatch.setenv("NUDGEFLOW_SIGNING_KEY", "a-real-secret")
    assert not load_settings().signing_key_is_default


def test_a_dotenv_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"NUDGEFLOW_TIMEZONE=UTC\n\nNUDGEFLOW_CURRENCY=\xa3\n")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == ".env:3: not UTF-8 text (byte 0xa3); save it as UTF-8"


def test_a_dotenv_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".env")
    with pytest.raises(SettingsError, match=r"^\.env: is a FIFO, not a settings file"):
        load_settings()


def test_a_dotenv_directory_is_not_a_settings_file(tmp_path: Path) -> None:
    (tmp_path / ".env" / "bin").mkdir(parents=True)  # a virtualenv called .env
    assert load_settings().timezone == "UTC"


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        ("no", False),
        ("1", True),
        ("yes", True),
        ("TRUE", True),
    ],
)
def test_debug_is_requested_by_nudgeflow_debug(
    monkeypatch: pytest.MonkeyPatch, value: str | None, wanted: bool
) -> None:
    if value is not None:
        monkeypatch.setenv("NUDGEFLOW_DEBUG", value)
    assert debug_requested() is wanted

"""The ledger key settings: NUDGEFLOW_LEDGER__KEY and __RETIRED_KEYS, secret and long enough."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nudgeflow.errors import SettingsError
from settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("NUDGEFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_no_ledger_key_by_default() -> None:
    assert load_settings().ledger.secrets() == (None, [])


def test_the_current_and_retired_keys_are_read_and_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NUDGEFLOW_LEDGER__KEY", "the-current-ledger-key")
    retired = "an-older-ledger-key1, an-older-ledger-key2"
    monkeypatch.setenv("NUDGEFLOW_LEDGER__RETIRED_KEYS", retired)
    settings = load_settings()
    assert settings.ledger.secrets() == (
        "the-current-ledger-key",
        ["an-older-ledger-key1", "an-older-ledger-key2"],
    )
    assert "ledger-key" not in repr(settings)


@pytest.mark.parametrize("name", ["NUDGEFLOW_LEDGER__KEY", "NUDGEFLOW_LEDGER__RETIRED_KEYS"])
def test_a_short_key_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "long-enough-key-00001,short")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{name}: a ledger key has at least 16 characters")
    assert "\n" not in str(caught.value) and "short" not in str(caught.value)

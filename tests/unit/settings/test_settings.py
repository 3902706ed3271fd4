"""Settings: defaults, nested variables, .env files, and one-line errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudgeflow.errors import SettingsError
from settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("NUDGEFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_run_offline_on_sqlite() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///var/nudgeflow.db"
    assert settings.email.transport == "file"
    assert settings.rewards.provider == "local"
    assert settings.timezone == "UTC"


def test_nested_variables_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NUDGEFLOW_TIMEZONE=Europe/Paris\nNUDGEFLOW_CURRENCY=eur\n")
    monkeypatch.setenv("NUDGEFLOW_EMAIL__TRANSPORT", "sendgrid")
    monkeypatch.setenv("NUDGEFLOW_CURRENCY", "gbp")  # the environment wins over .env
    settings = load_settings()
    assert settings.timezone == "Europe/Paris"
    assert settings.currency == "GBP"
    assert settings.email.transport == "sendgrid"


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGEFLOW_STRIPE__API_KEY", "sk_test_secret")
    settings = load_settings()
    assert "sk_test_secret" not in repr(settings)
    assert settings.stripe.api_key is not None
    assert settings.stripe.api_key.get_secret_value() == "sk_test_secret"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NUDGEFLOW_TIMEZONE", "Mars/Base", "NUDGEFLOW_TIMEZONE: expected an IANA time zone"),
        ("NUDGEFLOW_EMAIL__TRANSPORT", "pigeon", "NUDGEFLOW_EMAIL__TRANSPORT: Input should be"),
        ("NUDGEFLOW_CURRENCY", "dollars", "NUDGEFLOW_CURRENCY: expected a three-letter"),
        ("NUDGEFLOW_DATABASE_URL", "mysql://x", "NUDGEFLOW_DATABASE_URL: expected a SQLAlchemy"),
        ("NUDGEFLOW_STRIPE__MAX_REQUESTS_PER_SECOND", "0", "MAX_REQUESTS_PER_SECOND: Input should"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_documented_env_example_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    settings = load_settings()
    assert settings.import_chunk_size == 5000
    assert settings.schedule.cron == "0 2 * * *"

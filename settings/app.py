"""``AppSettings``: every ``NUDGEFLOW_*`` variable, typed, validated once at start-up.

Nested groups use ``__``: ``NUDGEFLOW_EMAIL__TRANSPORT=file``. A ``.env`` file in the
working directory is read too; real environment variables win over it. A ``.env`` that is
not UTF-8, cannot be read or is a FIFO (reading it would wait for a writer) is a
``SettingsError``; a directory named ``.env`` (a virtualenv, often) is not a settings file
and is ignored.

``NUDGEFLOW_DEBUG`` is read apart (``debug_requested``): it must work even when the
settings themselves cannot be loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nudgeflow.errors import SettingsError
from nudgeflow.money import normalise_currency

ENV_PREFIX = "NUDGEFLOW_"
MIN_KEY_LENGTH = 16  # characters of a ledger key, which is meant to be random
ENV_FILE = ".env"
# What .env.example ships: fine for the demo, refused by the commands that reach members.
DEFAULT_SIGNING_KEY = "change-me"
NEW_KEY_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
DEBUG_VARIABLE = "NUDGEFLOW_DEBUG"


class EmailSettings(BaseModel):
    transport: Literal["file", "sendgrid"] = "file"
    outbox_dir: Path = Path("var/outbox")
    from_address: str = "Nudgeflow <hello@example.com>"


class SendGridSettings(BaseModel):
    api_key: SecretStr | None = None
    # The Event Webhook's verification key, as SendGrid's dashboard shows it (base64 of the
    # public key's DER, no PEM armour): checked here so a bad one fails at start-up.
    webhook_public_key: str | None = None
    base_url: str = "https://api.sendgrid.com"
    unsubscribe_group_id: int | None = None
    sandbox_mode: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_requests_per_second: float = Field(default=100.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)

    @field_validator("webhook_public_key")
    @classmethod
    def _usable_public_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]

        key = "".join(value.split())
        try:
            EventWebhook(key)
        except (ValueError, TypeError):
            raise ValueError(
                "not a public key: paste the Event Webhook's verification key as SendGrid "
                "shows it (Settings > Mail Settings > Signed Event Webhook)"
            ) from None
        return key


class DispatchSettings(BaseModel):
    batch_size: int = Field(default=200, ge=1, le=10000)  # actions per Prefect task
    max_workers: int = Field(default=8, ge=1, le=64)  # threads per batch
    # Processes that work a night's dispatch together (PostgreSQL): the run's and
    # workers - 1 more (`nudgeflow run --workers`, or dispatch-worker flow runs).
    workers: int = Field(default=1, ge=1, le=64)
    # A worker's claim on a batch lasts this long without a heartbeat (beats every quarter).
    claim_seconds: float = Field(default=60.0, ge=2, le=3600)
    # The deployment the nightly flow runs the extra workers from, on a work pool.
    worker_deployment: str = "dispatch-worker/dispatch-worker"


class RewardSettings(BaseModel):
    provider: Literal["local", "stripe"] = "local"


class StripeSettings(BaseModel):
    api_key: SecretStr | None = None
    # The signing secret of the webhook endpoint (whsec_…), from Stripe's dashboard.
    webhook_secret: SecretStr | None = None
    base_url: str = "https://api.stripe.com"
    max_requests_per_second: float = Field(default=20.0, gt=0)


class WebSettings(BaseModel):
    """``nudgeflow web``: where it listens, and how large a request body may be."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)


class IngestSettings(BaseModel):
    """Bearer keys of the ingestion API, comma-separated so a key can be rotated: add the new
    one, move the senders over, remove the old one."""

    api_keys: SecretStr | None = None

    @field_validator("api_keys")
    @classmethod
    def _long_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [key.strip() for key in value.get_secret_value().split(",") if key.strip()]
        if any(len(key) < MIN_KEY_LENGTH for key in keys):
            raise ValueError(
                f"every key has at least {MIN_KEY_LENGTH} characters; make one with {NEW_KEY_HINT}"
            )
        return SecretStr(",".join(keys)) if keys else None

    def keys(self) -> tuple[str, ...]:
        if self.api_keys is None:
            return ()
        return tuple(self.api_keys.get_secret_value().split(","))


class ScheduleSettings(BaseModel):
    cron: str = "0 2 * * *"


class LedgerSettings(BaseModel):
    """The keys of the ledger's hash chain, kept outside the database: ``key`` keys every
    new transaction (HMAC); ``retired_keys`` (comma-separated) are earlier keys, which
    ``ledger verify`` needs for the transactions written with them."""

    key: SecretStr | None = None
    retired_keys: SecretStr | None = None

    @field_validator("key", "retired_keys")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        for secret in value.get_secret_value().split(","):
            if len(secret.strip()) < MIN_KEY_LENGTH:
                raise ValueError(
                    f"a ledger key has at least {MIN_KEY_LENGTH} characters; make one with "
                    "`openssl rand -hex 32`"
                )
        return value

    def secrets(self) -> tuple[str | None, list[str]]:
        """The current key and the retired ones, as text."""
        current = self.key.get_secret_value().strip() if self.key else None
        retired = self.retired_keys.get_secret_value().split(",") if self.retired_keys else []
        return current, [secret.strip() for secret in retired]


class AppSettings(BaseSettings):
    """Everything nudgeflow can be told through the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = "sqlite:///var/nudgeflow.db"
    campaigns_dir: Path = Path("campaigns")
    templates_dir: Path = Path("templates/email")
    # Where the nightly run writes the HTML report of each night (report-<night>.html).
    reports_dir: Path = Path("var/reports")
    timezone: str = "UTC"
    currency: str = "USD"
    public_base_url: str = "http://localhost:8000"
    signing_key: SecretStr = SecretStr(DEFAULT_SIGNING_KEY)
    import_chunk_size: int = Field(default=5000, ge=100, le=50000)
    email: EmailSettings = EmailSettings()
    sendgrid: SendGridSettings = SendGridSettings()
    rewards: RewardSettings = RewardSettings()
    stripe: StripeSettings = StripeSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    dispatch: DispatchSettings = DispatchSettings()
    ledger: LedgerSettings = LedgerSettings()
    web: WebSettings = WebSettings()
    ingest: IngestSettings = IngestSettings()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone such as Europe/Paris, got {value!r}"
            ) from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        return normalise_currency(value)

    @field_validator("signing_key")
    @classmethod
    def _some_signing_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(f"must not be empty: set a long random secret ({NEW_KEY_HINT})")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "expected a SQLAlchemy URL starting sqlite:/// or postgresql+psycopg://, "
                f"got {value.split(':', 1)[0]!r}"
            )
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def signing_key_is_default(self) -> bool:
        return self.signing_key.get_secret_value() == DEFAULT_SIGNING_KEY


def _variable_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def _refuse_a_fifo(env_file: Path) -> None:
    # pydantic-settings reads a FIFO .env too, and reading one nobody writes to never ends.
    if env_file.is_fifo():
        raise SettingsError(
            f"{env_file}: is a FIFO, not a settings file; replace it with a file or remove it"
        )


def load_settings(**overrides: Any) -> AppSettings:
    """Build settings from the environment and ``.env``; a bad value raises ``SettingsError``
    naming it, and so does a ``.env`` that cannot be read."""
    env_file = Path(ENV_FILE)
    _refuse_a_fifo(env_file)
    try:
        return AppSettings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{_variable_name(error['loc'])}: {message}")
        raise SettingsError("; ".join(lines)) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise SettingsError(
            f"{env_file}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
            "save it as UTF-8"
        ) from None
    except OSError as exc:
        raise SettingsError(
            f"{exc.filename or env_file}: cannot read: {exc.strerror or exc}"
        ) from None


def debug_requested() -> bool:
    """Whether ``NUDGEFLOW_DEBUG`` asks for tracebacks (set, and not 0, false, no or off)."""
    value = os.environ.get(DEBUG_VARIABLE, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")

"""The providers' wiring: which email sender and which reward issuers the settings ask for,
built from plain values (``providers/`` itself never reads settings).

The implementations are imported inside each function: a command that sends or issues
nothing should not load the SendGrid or Stripe clients.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from nudgeflow.errors import RewardError, SettingsError
from settings import AppSettings
from settings.app import StripeSettings

if TYPE_CHECKING:
    from providers.email import EmailSender
    from providers.ratelimit import RateLimiter
    from providers.recording import RecordingIssuer
    from providers.stripe_api import StripeApi


def outbox_folder(path: Path) -> Path:
    """The file outbox's folder, created now: a path that cannot be a folder is a settings
    error before a night touches any action, not a send failure for every email."""
    setting = "NUDGEFLOW_EMAIL__OUTBOX_DIR"
    if path.exists() and not path.is_dir():
        raise SettingsError(
            f"{setting}: {path} exists and is not a folder; remove it or choose another path"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"{setting}: cannot create the folder {path} ({exc.strerror or exc}); "
            "choose a path this user can write to"
        ) from None
    return path


def build_sender(settings: AppSettings, engine: sa.Engine | None = None) -> EmailSender:
    """The sender ``NUDGEFLOW_EMAIL__TRANSPORT`` asks for. The file outbox is the default:
    with no SendGrid key nothing leaves the machine."""
    if settings.email.transport == "file":
        from providers.file_outbox import FileOutboxSender

        return FileOutboxSender(outbox_folder(settings.email.outbox_dir))
    sendgrid = settings.sendgrid
    if sendgrid.api_key is None or not sendgrid.api_key.get_secret_value():
        raise SettingsError(
            "NUDGEFLOW_SENDGRID__API_KEY: required when NUDGEFLOW_EMAIL__TRANSPORT=sendgrid "
            "(or set NUDGEFLOW_EMAIL__TRANSPORT=file to write emails to the outbox)"
        )
    from providers.sendgrid import SendGridSender

    return SendGridSender(
        api_key=sendgrid.api_key.get_secret_value(),
        host=sendgrid.base_url,
        timeout_seconds=sendgrid.timeout_seconds,
        sandbox_mode=sendgrid.sandbox_mode,
        unsubscribe_group_id=sendgrid.unsubscribe_group_id,
        max_attempts=sendgrid.max_attempts,
        limiter=shared_limiter(engine, "sendgrid", sendgrid.max_requests_per_second),
    )


def shared_limiter(engine: sa.Engine | None, name: str, per_second: float) -> RateLimiter:
    """The provider's rate limit: kept in the database for every process together on
    PostgreSQL (dispatch workers), in this process on SQLite (one process writes there)."""
    from providers.ratelimit import RateLimiter, SharedRateLimiter

    if engine is not None and engine.dialect.name == "postgresql":
        return SharedRateLimiter(engine, name, per_second)
    return RateLimiter(per_second)


def build_stripe_api(settings: StripeSettings, engine: sa.Engine | None = None) -> StripeApi:
    """A Stripe client with the shared retry policy and the configured rate (shared by
    every process of ``engine``'s PostgreSQL database); close it."""
    if settings.api_key is None:
        raise RewardError(
            "NUDGEFLOW_STRIPE__API_KEY is not set; set it, or use NUDGEFLOW_REWARDS__PROVIDER=local"
        )
    from providers.stripe_api import StripeApi

    return StripeApi(
        settings.api_key.get_secret_value(),
        settings.base_url,
        max_requests_per_second=settings.max_requests_per_second,
        limiter=shared_limiter(engine, "stripe", settings.max_requests_per_second),
    )


def build_issuer(settings: AppSettings, engine: sa.Engine) -> RecordingIssuer:
    """The issuer the settings ask for: Stripe when ``rewards.provider`` is ``stripe``,
    otherwise the offline ``local`` one; gifts and invites are the same either way."""
    from providers.gifts import GiftIssuer
    from providers.invites import InviteIssuer
    from providers.local import LocalIssuer
    from providers.recording import RecordingIssuer
    from providers.rewards import RewardIssuer

    money: RewardIssuer
    if settings.rewards.provider == "stripe":
        from providers.stripe_issuer import StripeIssuer

        money = StripeIssuer(build_stripe_api(settings.stripe, engine))
    else:
        money = LocalIssuer()
    invites = InviteIssuer(settings.signing_key.get_secret_value(), settings.public_base_url)
    return RecordingIssuer(
        engine,
        {"discount": money, "credit": money, "gift": GiftIssuer(engine), "vip_invite": invites},
    )

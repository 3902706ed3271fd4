"""The composition root: builds the store, the email sender (and later issuers) from settings.

``cli/`` and ``flows/`` both start here; nothing else creates ``AppSettings`` or engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from bootstrap.providers import build_issuer, build_sender, build_stripe_api
from settings import AppSettings, load_settings
from store.engine import create_store_engine
from store.migrate import upgrade

if TYPE_CHECKING:
    from providers.email import EmailSender
    from providers.recording import RecordingIssuer
    from providers.stripe_api import StripeApi


@dataclass
class App:
    """What every entry point needs, built once per process."""

    settings: AppSettings

    @cached_property
    def engine(self) -> Engine:
        engine = create_store_engine(self.settings.database_url)
        upgrade(engine)  # migrations are applied on first use
        return engine

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    @cached_property
    def sender(self) -> EmailSender:
        return build_sender(self.settings)

    @cached_property
    def issuer(self) -> RecordingIssuer:
        return build_issuer(self.settings, self.engine)

    def stripe_api(self) -> StripeApi:
        """A Stripe client with our retries and rate limit (sync, reconcile); close it."""
        return build_stripe_api(self.settings.stripe)


def build_app(settings: AppSettings | None = None) -> App:
    return App(settings if settings is not None else load_settings())


@cache
def get_app() -> App:
    """The process-wide ``App``, built from the environment on first use (never at import)."""
    return build_app()

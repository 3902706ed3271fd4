"""The composition root: builds the store, the email sender (and later issuers) from settings.

``cli/`` and ``flows/`` both start here; nothing else creates ``AppSettings`` or engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from settings import AppSettings, load_settings
from store.engine import create_store_engine
from store.migrate import upgrade

if TYPE_CHECKING:
    from providers.issuers import RecordingIssuer
    from providers.senders import EmailSender
    from providers.stripe_issuer import StripeApi


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
        # Imported here: commands that send nothing should not load the SendGrid client.
        from providers.senders import build_sender

        return build_sender(self.settings)

    @cached_property
    def issuer(self) -> RecordingIssuer:
        # Imported here: commands that issue nothing should not load the Stripe client.
        from providers.issuers import build_issuer

        return build_issuer(self.settings, self.engine)

    def stripe_api(self) -> StripeApi:
        """A Stripe client with our retries and rate limit (sync, reconcile); close it."""
        from providers.stripe_issuer import StripeApi

        return StripeApi.from_settings(self.settings.stripe)


def build_app(settings: AppSettings | None = None) -> App:
    return App(settings if settings is not None else load_settings())


@cache
def get_app() -> App:
    """The process-wide ``App``, built from the environment on first use (never at import)."""
    return build_app()

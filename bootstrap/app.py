"""``App``: everything a process needs, built from settings once: the engine (migrated on
first use, given the ledger keys), the clock, the campaign set of a run, the email sender,
the reward issuer, and a night's dispatcher.

Only the entry points (``cli``, ``flows``) build it; they take from it what a use case needs
and pass that down as parameters, so nothing below them reads settings or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cache, cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from bootstrap.providers import build_issuer, build_sender, build_stripe_api
from domain.ledger_keys import LedgerKeys
from night.batch import Checkpoint, DispatchConfig, no_checkpoint
from night.context import Night
from night.provenance import fingerprint
from nudgeflow.errors import SettingsError
from nudgeflow.timeutil import Clock, system_clock
from planning.campaign_files import CampaignSet, load_campaign_set
from settings import AppSettings, load_settings
from settings.app import DEFAULT_SIGNING_KEY, NEW_KEY_HINT
from store import ledger
from store.engine import create_store_engine
from store.migrate import upgrade

if TYPE_CHECKING:
    from night.dispatcher import Dispatcher
    from night.workers import ClaimTerms
    from providers.email import EmailSender
    from providers.recording import RecordingIssuer
    from providers.stripe_api import StripeApi


@dataclass
class App:
    """The composition root's product: what every entry point needs, built once per process."""

    settings: AppSettings
    clock: Clock = field(default=system_clock)

    @cached_property
    def engine(self) -> Engine:
        engine = create_store_engine(self.settings.database_url)
        upgrade(engine)  # migrations are applied on first use
        # Every ledger write through this engine is keyed, and verify checks with the keys.
        ledger.use_keys(engine, self.ledger_keys)
        return engine

    @property
    def ledger_keys(self) -> LedgerKeys:
        current, retired = self.settings.ledger.secrets()
        return LedgerKeys.from_secrets(current, retired)

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    def load_campaigns(self) -> CampaignSet:
        """The campaign, lifecycle and policy files, read and checked: once per run, then
        passed down (a file edited during a run takes effect at the next run)."""
        return load_campaign_set(self.settings.campaigns_dir)

    def night(self, as_of: date, campaigns: CampaignSet | None = None) -> Night:
        """Business night ``as_of`` with the campaign set it runs on (loaded now if not given)."""
        campaign_set = campaigns if campaigns is not None else self.load_campaigns()
        settings = self.settings
        return Night(
            as_of=as_of,
            engine=self.engine,
            campaigns=campaign_set,
            zone=self.zone,
            currency=self.settings.currency,
            clock=self.clock,
            batch_size=self.settings.dispatch.batch_size,
            provenance=fingerprint(settings.campaigns_dir, settings.templates_dir, campaign_set),
        )

    def _shared_engine(self) -> Engine | None:
        """The engine whose database keeps the providers' rate limits for every process
        (PostgreSQL); None on SQLite, where the limits stay in this process."""
        url = str(self.settings.database_url)
        return self.engine if url.startswith("postgresql") else None

    @cached_property
    def sender(self) -> EmailSender:
        return build_sender(self.settings, self._shared_engine())

    def check_signing_key(self) -> None:
        """Refuse the shipped ``change-me`` key: links signed with it (unsubscribe, VIP
        invites) can be forged by anyone who has read ``.env.example``."""
        if self.settings.signing_key_is_default:
            raise SettingsError(
                f"NUDGEFLOW_SIGNING_KEY: still the default {DEFAULT_SIGNING_KEY!r}, which "
                f"anyone can use to forge links; set a long random secret ({NEW_KEY_HINT})"
            )

    def signing_key_warning(self) -> str | None:
        """What to say when a command that is not sending signs or checks links with the
        default key (previews, unsubscribing): allowed, but not for long."""
        if not self.settings.signing_key_is_default:
            return None
        return (
            f"warning: NUDGEFLOW_SIGNING_KEY is the default {DEFAULT_SIGNING_KEY!r}: links "
            "signed with it can be forged, and commands that send refuse it"
        )

    def check_sending(self) -> None:
        """Fail now, before a night touches any action, on what would stop it sending: the
        default signing key, an outbox that cannot be a folder, SendGrid without a key."""
        self.check_signing_key()
        _ = self.sender

    @cached_property
    def issuer(self) -> RecordingIssuer:
        return build_issuer(self.settings, self.engine)

    def stripe_api(self) -> StripeApi:
        """A Stripe client with our retries and rate limit (sync, reconcile); close it."""
        return build_stripe_api(self.settings.stripe, self._shared_engine())

    def claim_terms(self) -> ClaimTerms:
        """How dispatch workers claim batches: ``DISPATCH__CLAIM_SECONDS``, a beat a quarter."""
        from night.workers import ClaimTerms

        seconds = self.settings.dispatch.claim_seconds
        return ClaimTerms(ttl_seconds=seconds, heartbeat_seconds=seconds / 4)

    def dispatcher(self, night: Night, checkpoint: Checkpoint = no_checkpoint) -> Dispatcher:
        """The dispatcher of ``night``: its campaigns, the sender, the issuer, the renderer."""
        from delivery.render import EmailRenderer
        from night.dispatcher import Dispatcher

        settings = self.settings
        return Dispatcher(
            engine=night.engine,
            campaigns={c.id: c for c in night.campaigns.enabled},
            policy=night.campaigns.policy,
            issuer=self.issuer,
            sender=self.sender,
            renderer=EmailRenderer(settings.templates_dir),
            config=DispatchConfig(
                as_of=night.as_of,
                zone=night.zone,
                from_address=settings.email.from_address,
                base_url=settings.public_base_url,
                signing_key=settings.signing_key.get_secret_value(),
                max_workers=settings.dispatch.max_workers,
            ),
            checkpoint=checkpoint,
            clock=self.clock,
        )


def build_app(settings: AppSettings | None = None, clock: Clock = system_clock) -> App:
    """An ``App`` from ``settings`` (by default read from the environment and ``.env``)."""
    return App(settings if settings is not None else load_settings(), clock)


@cache
def process_app() -> App:
    """The process's ``App``, built from the environment on first use: for the entry points
    (a CLI command, a flow started by a scheduler), never for the rooms beneath them."""
    return build_app()

"""The email interface dispatch sends through: ``EmailSender``, what a send returns, and the
errors a sender raises (their place in the tree is drawn in ``nudgeflow.errors``).

The errors tell dispatch what to do with the action: ``SendError`` fails it (the next one
may well succeed); ``RetriesExhausted`` leaves it for a later pass (the provider is in
trouble, not the message); ``OutcomeUnknown`` records it as ``unknown`` and never re-sends
it; ``DeliveryAuthError`` stops the whole dispatch, since every further send would fail too.
Implementations: ``providers.file_outbox`` and ``providers.sendgrid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from nudgeflow.errors import DeliveryError

if TYPE_CHECKING:
    from delivery.message import OutgoingEmail


class SendError(DeliveryError):
    """The provider refused this message for good; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetriesExhausted(SendError):
    """A transient failure (429, 5xx, a failed connection) outlasted every retry."""


class OutcomeUnknown(DeliveryError):
    """The request reached the provider but its answer was lost (a read timeout, a reset or a
    cut-off response): the email may have been accepted. Email has no idempotency key, so
    this is never retried; the dispatcher records the action as ``unknown``."""


class DeliveryAuthError(DeliveryError):
    """The provider refused the API key (401) or its permissions (403): stop the dispatch."""


@dataclass(frozen=True)
class SendResult:
    """What the provider said: SendGrid's ``X-Message-Id`` (or the outbox file's Message-ID)."""

    provider_message_id: str | None


class EmailSender(Protocol):
    """Sends one message; raises a ``DeliveryError`` subclass when it cannot."""

    def send(self, message: OutgoingEmail) -> SendResult: ...

"""A dispatch batch's vocabulary: the crash tests' kill points and the checkpoint hook, the
outcomes an action can have in a batch, the batch's result, the dispatcher's configuration,
and ``DispatchStopped``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from nudgeflow.errors import DeliveryError

Checkpoint = Callable[[str], None]

KILL_POINTS = (
    "after_reserve",
    "after_provider_create",  # (raised by the crash tests' issuer wrapper)
    "after_reward_stored",
    "after_render",
    "after_send_accepted",
    "between_batches",
    "during_ledger_write",
    "during_fatigue_update",
)
# awaiting_approval: reserved, and waiting for a person's approval (``night.approvals``)
OUTCOMES = ("sent", "failed", "unknown", "deferred", "skipped", "awaiting_approval")


def no_checkpoint(_name: str) -> None:
    return None


class DispatchStopped(DeliveryError):
    """A provider refused our credentials: every further call would fail too."""


@dataclass
class BatchResult:
    """What one batch did: outcome counts per campaign, and rewards issued."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    rewards_issued: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.outcomes.update(other.outcomes)
        self.rewards_issued.update(other.rewards_issued)
        self.problems.extend(other.problems)

    def total(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.outcomes.items() if o == outcome)


@dataclass(frozen=True)
class DispatchConfig:
    as_of: date
    zone: ZoneInfo
    from_address: str
    base_url: str
    signing_key: str
    max_workers: int = 8

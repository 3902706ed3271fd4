"""The one exception tree of nudgeflow (subclasses live next to the code that raises them).

::

    NudgeflowError                    anything nudgeflow raises on purpose
    ├── SettingsError                 a bad NUDGEFLOW_* variable or .env line
    ├── CampaignFileError             bad campaign, lifecycle or policy files (all problems)
    ├── ImportFileError               an import file that cannot be read (encoding, columns)
    ├── StoreError                    the database is unreachable, read-only, corrupt or too new
    │   └── DatabaseLocked            another process holds the write lock (store.diagnosis); exit 3
    ├── NotFoundError                 a member, campaign or run that does not exist
    ├── InvalidPreferenceChange       inbound.preferences: an unknown category, a bad pause
    ├── RunInProgress                 another run holds the run lease (store.lease); exit 3
    ├── RewindRefused                 night.runs: a night before nights already run, no --rewind
    ├── ErasureRefused                night.erasure: an outbox file of the member cannot be removed
    │   └── ErasureBlocked            the member has actions still in dispatch; exit 3
    ├── SimulationError               night.simulate: bad dates, a missing or broken folder
    ├── PrefectServerUnavailable      flows.schedule: `serve` found no Prefect server to use
    ├── ApprovalError                 night.approvals: an approval decided otherwise before
    ├── DecisionFileError             night.approvals: a decisions CSV with bad rows; exit 2
    ├── DeliveryError                 email could not be rendered or sent
    │   ├── TemplateRenderError       delivery.sandbox: a template fails (file, line, reason)
    │   ├── HeaderInjectionError      delivery.message: CR/LF in a name, subject or address
    │   ├── MessageError              delivery.message: a message SendGrid would refuse
    │   ├── BadTokenError             delivery.tokens: a tampered or foreign unsubscribe token
    │   ├── SendError                 providers.email: refused for good (carries the status)
    │   │   └── RetriesExhausted      429/5xx/connection failures outlasted every retry
    │   ├── OutcomeUnknown            the request went out, the answer was lost: never resent
    │   ├── DeliveryAuthError         401/403: stop the whole dispatch
    │   ├── DispatchStopped           night.batch: the dispatch stopped on a refused key
    │   └── ResolveError              night.settle: no such action, or it is not unknown
    └── RewardError                   a reward could not be issued or moved in the ledger
        ├── TransientRewardError      providers.rewards: retries ran out; a later run may succeed
        └── InvalidInvite             providers.invites: a bad or expired VIP invite link
            └── InviteExpired         a genuine invite past its expiry (the page answers 410)
                └── InviteWithdrawn   inbound.invites: its reward was deactivated (410 too)

User errors (settings, files, rows, unknown ids) are reported by the CLI as one line per
problem with a non-zero exit; they never print a traceback. A bad import *row* is not an
exception to the user: ``store.rows.RowError`` is caught per row and written to the rejects
file. Errors that come from outside nudgeflow's code (a database that refuses, a file that
cannot be read) are translated into these classes where they arise; anything else that
reaches the CLI is a bug, reported as one "internal error" line.

Exit statuses: 0 done; 1 the command ran and found problems (campaign files, an unknown
id, rejected rows, a broken ledger); 2 it could not start or was used wrongly (a setting,
the database, an argument); 3 someone else is at work (another run holds the lease, or
another process holds the database's write lock): try again later; 70
(``INTERNAL_ERROR_EXIT``, EX_SOFTWARE) a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

INTERNAL_ERROR_EXIT = 70


class NudgeflowError(Exception):
    """Base class: the CLI turns these into one-line messages and an exit code."""

    exit_code = 2


class SettingsError(NudgeflowError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class FileProblem:
    """One problem in a user file, located as precisely as we can."""

    path: str
    line: int
    column: int
    key: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        key = f" {self.key}:" if self.key else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}:{key} {prefix}{self.message}"


class CampaignFileError(NudgeflowError):
    """One or more problems in the marketer-owned files; ``problems`` lists them all."""

    exit_code = 1

    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ImportFileError(NudgeflowError):
    """The import file cannot be read at all (not UTF-8, wrong columns, unknown format)."""


class StoreError(NudgeflowError):
    """The database cannot be used (unreachable, wrong schema, bad URL)."""


class DatabaseLocked(StoreError):
    """Another process held the database's write lock for longer than we wait."""

    exit_code = 3


class NotFoundError(NudgeflowError):
    """A member, campaign or run named by the user does not exist."""

    exit_code = 1


class RunInProgress(NudgeflowError):
    """Another run holds the run lease of this database (``store.lease``).

    ``holder`` and the naive-UTC times come from the lease row; they are all ``None`` when
    only PostgreSQL's advisory lock shows the other run (its row was deleted by hand).
    """

    exit_code = 3

    def __init__(
        self,
        holder: str | None,
        started_at: datetime | None,
        heartbeat_at: datetime | None,
        expires_at: datetime | None,
        now: datetime,
    ) -> None:
        self.holder = holder
        self.started_at = started_at
        self.heartbeat_at = heartbeat_at
        self.expires_at = expires_at
        if holder is None or started_at is None or heartbeat_at is None or expires_at is None:
            detail = (
                "started at an unknown time by an unknown holder: it holds the PostgreSQL"
                " advisory lock but no lease row"
            )
        else:
            ago = max(0, int((now - heartbeat_at).total_seconds()))
            detail = (
                f"started {started_at:%Y-%m-%d %H:%M:%S} UTC by {holder}, heartbeat {ago} s ago,"
                f" lease expires {expires_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        super().__init__(f"another run is in progress ({detail})")


class DeliveryError(NudgeflowError):
    """An email could not be rendered or sent."""


class RewardError(NudgeflowError):
    """A reward could not be issued."""

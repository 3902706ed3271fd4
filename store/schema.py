"""The core tables (SQLAlchemy Core): members, events, profiles, actions, runs and the lease.
The reward and ledger tables live beside their code (``store.reward_tables``,
``store.ledger.tables``); Alembic migrations in ``store/migrations`` build them all.

Instants in hot tables (``events.occurred_at``, ``members.joined_at``) are integer epoch
seconds in UTC: comparisons and day arithmetic are then plain integer maths on SQLite and
PostgreSQL alike. Business dates are ``DATE``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from store.metadata import BigId, Json, metadata

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # members | events
    Column("source", Text, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("imported", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
)

members = Table(
    "members",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("member_id", String(200), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("joined_at", BigInteger),  # epoch seconds, UTC
    Column("birth_year", Integer),
    Column("birth_month", Integer),
    Column("birth_day", Integer),
    Column("country", String(64)),
    Column("timezone", String(64)),
    Column("stripe_customer_id", String(200)),
    Column("email_opt_in", Boolean, nullable=False, default=True),
    Column("attributes", Json),  # other columns: {name: string value}
    Column("row_hash", String(32), nullable=False),  # detects re-imports that change nothing
    Column("import_id", Integer, ForeignKey("imports.id")),
    Column("source_line", Integer),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

member_tags = Table(
    "member_tags",
    metadata,
    Column("member_pk", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("tag", String(100), nullable=False),
    Column("source", String(16), nullable=False),  # import | system
    Column("added_on", Date),  # business date a system tag was set (fatigue rests)
    Column("expires_on", Date),  # business date after which a system tag no longer applies
    UniqueConstraint("member_pk", "tag", "source"),
    Index("ix_member_tags_tag", "tag"),
)

# What happened to system tags over time (fatigue: tagged, cleared), one row per change,
# appended in the transaction that makes the change. ``member_tags`` stays the present: one
# row per member, tag and source, which the planner's guards and the rule language read.
member_tag_history = Table(
    "member_tag_history",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("member_pk", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("tag", String(100), nullable=False),
    Column("source", String(16), nullable=False),
    Column("change", String(16), nullable=False),  # tagged | cleared
    Column("as_of", Date, nullable=False),  # the business night of the change
    Column("rest_until", Date),  # tagged: the last day of the rest
    Column("reason", String(200), nullable=False),
    Index("ix_member_tag_history_member_pk_as_of", "member_pk", "as_of"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("member_pk", Integer, ForeignKey("members.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),  # epoch seconds, UTC
    Column("amount_minor", BigInteger),
    Column("currency", String(3)),
    Column("properties", Json),
    Column("import_id", Integer, ForeignKey("imports.id")),
    Index("ix_events_member_pk_occurred_at", "member_pk", "occurred_at"),
    Index("ix_events_type_occurred_at", "type", "occurred_at"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("member_pk", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("stage", String(64)),
    Column("stage_entered_on", Date),
    Column("first_purchase_at", BigInteger),
    Column("last_purchase_at", BigInteger),
    Column("recency_days", Integer),
    Column("frequency", Integer, nullable=False),
    Column("monetary_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("r", Integer),
    Column("f", Integer),
    Column("m", Integer),
    Column("segment", String(64)),
    Column("score", Float, nullable=False),
    Index("ix_profiles_stage", "stage"),
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("member_pk", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("entered_on", Date, nullable=False),
    Column("left_on", Date),
    # True for the stages found by the very first refresh: the member was already there, so
    # "entered on" is only when nudgeflow first saw it, not a real move.
    Column("initial", Boolean, nullable=False, default=False),
    Index("ix_stage_history_member_pk_left_on", "member_pk", "left_on"),
    Index("ix_stage_history_entered_on", "entered_on"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("kind", String(32), nullable=False),  # nightly
    Column("status", String(16), nullable=False),  # running | completed | failed
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("flow_run_id", String(64)),
    Column("summary", Json),
    Column("error", Text),
    # The campaign and template files the run worked from: a ``sources.digest`` (migration
    # 0014; NULL for runs before it).
    Column("source_digest", String(64)),
    Index("ix_runs_as_of", "as_of"),
)

# One row per planned nudge: a campaign, a member and an occurrence. The id
# is a hash of the three, so planning the same night twice adds nothing.
actions = Table(
    "actions",
    metadata,
    Column("action_id", String(32), primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("member_pk", Integer, ForeignKey("members.id"), nullable=False),
    Column("occurrence", String(16), nullable=False),
    Column("as_of", Date, nullable=False),  # the business night that planned it
    # planned | held_out | awaiting_approval | … (32 since migration 0013)
    Column("state", String(32), nullable=False),
    Column("holdout", Boolean, nullable=False),
    Column("reward", Json),
    Column("cost_minor", BigInteger, nullable=False),
    Column("currency", String(3)),
    Column("template", String(64), nullable=False),
    # The A/B/n variant the member was assigned (migration 0010); NULL without variants and
    # for held-out actions, which are the control group of every variant.
    Column("variant", String(64)),
    # The campaign's response rule as it was when planned (fatigue reads it later).
    Column("response_types", Json, nullable=False),
    Column("response_from", BigInteger, nullable=False),  # epoch s: end of the planning night
    Column("response_until", BigInteger, nullable=False),  # epoch s: when the window closes
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # Dispatch (migration 0005, ): why it failed or is unknown, the reward's
    # provider id, the email's provider id (SendGrid X-Message-Id, or the outbox file), how
    # many dispatch attempts began, and when each state was reached (naive UTC).
    Column("reason", Text),
    Column("reward_ref", String(200)),
    Column("message_id", String(200)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("reserved_at", DateTime),
    Column("issued_at", DateTime),
    Column("sending_at", DateTime),
    Column("sent_at", DateTime),
    Column("finished_at", DateTime),
    # The campaign and template files that planned it: a ``sources.digest`` (migration 0014;
    # NULL for actions planned before it).
    Column("source_digest", String(64)),
    UniqueConstraint("campaign_id", "member_pk", "occurrence"),
    Index("ix_actions_member_pk_as_of", "member_pk", "as_of"),
    Index("ix_actions_as_of", "as_of"),
    Index("ix_actions_state_as_of", "state", "as_of"),
)

# One row per action whose reward costs more than its campaign's ``approval_above``
# (migration 0013): dispatch reserves its budget and asks here; a person decides
# (``nudgeflow approvals``), or the night after ``expires_at`` it expires. Naive UTC times.
approvals = Table(
    "approvals",
    metadata,
    Column("action_id", String(32), ForeignKey("actions.action_id"), primary_key=True),
    Column("threshold", String(40), nullable=False),  # the approval_above it exceeded
    Column("requested_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("decision", String(16)),  # NULL while waiting | approved | rejected | expired
    Column("decided_by", String(200)),
    Column("decided_at", DateTime),
    Column("reason", Text),
    Index("ix_approvals_decision_expires_at", "decision", "expires_at"),
)

# One row per named lease (``nightly``): which process holds the right to run, until when
# (migration 0005). See ``store.lease``.
run_lease = Table(
    "run_lease",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("as_of", Date),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

# Every request the HTTP service accepted, stored before it is answered (migration 0009):
# SendGrid's and Stripe's webhooks as their verified raw JSON, the ingestion API's accepted
# items as checked. Worked by ``inbound.inbox`` (the service's worker, the night's
# ``work-inbox`` step, ``nudgeflow inbox work``): ``pending`` → ``done`` in the transaction of
# its effects, or ``failed`` with its error after too many attempts. See ``store.inbox``.
inbox = Table(
    "inbox",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(16), nullable=False),  # sendgrid | stripe | ingest
    Column("received_at", BigInteger, nullable=False),  # epoch seconds, UTC
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("processed_at", BigInteger),  # epoch seconds, UTC: when it was done or failed
    Index("ix_inbox_state_id", "state", "id"),
)

# Keys of inbox items that take effect once but leave no row keyed by them (an identify call's
# messageId): the item is applied only by the transaction that inserts its key.
inbox_keys = Table(
    "inbox_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("seen_at", BigInteger, nullable=False),  # epoch seconds, UTC
)

# Erasure (migration 0012). One receipt per ``nudgeflow members forget``: when, who, why,
# and what was removed, as counts: never the erased data. ``member_pk`` is the member row
# kept under its pseudonym (``domain.erasure``) so that actions and profiles still count.
erasures = Table(
    "erasures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("member_pk", Integer, ForeignKey("members.id"), nullable=False, unique=True),
    Column("member_ref", String(16), nullable=False),  # the ledger's pseudonym of the member
    Column("erased_at", DateTime, nullable=False),  # naive UTC
    Column("erased_by", String(200), nullable=False),
    Column("reason", Text),
    Column("removed", Json, nullable=False),  # {what: count}
)

# Keyed references of forgotten members' member_ids and emails (HMAC-SHA256 under the
# signing key, ``domain.erasure.forgotten_ref``), never the values: an import refuses a row
# that matches one unless it is run with --allow-returning, which deletes the references
# the returning member matched.
forgotten_refs = Table(
    "forgotten_refs",
    metadata,
    Column("ref", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # member_id | email
    Column("erasure_id", Integer, ForeignKey("erasures.id"), nullable=False),
    Column("key_id", String(16), nullable=False),  # which signing key made the ref
)

# What a run's campaign folder and templates were (migration 0014), one row per distinct
# content: ``digest`` is a SHA-256 over both folders' hashes, which runs and actions carry.
# ``files`` maps each file ("campaigns/<path>", "templates/<path>") to its SHA-256 and
# ``campaign_files`` each campaign id to its file, so an audit finds the exact file behind an
# action; the git commit (and whether the folder had uncommitted changes) when the campaign
# folder was in a git checkout. See ``night.provenance`` and ``store.sources``.
sources = Table(
    "sources",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("campaigns_sha256", String(64), nullable=False),
    Column("templates_sha256", String(64), nullable=False),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("files", Json, nullable=False),
    Column("campaign_files", Json, nullable=False),
    Column("first_seen_at", DateTime, nullable=False),
)

# A night's dispatch shared by several worker processes (migration 0011, PostgreSQL): the
# round of a run (opened when its batches are published, closed when its dispatch is over)
# and its batches, each claimed by one worker at a time with a lease it keeps alive by a
# heartbeat. See ``store.dispatch_claims``.
dispatch_rounds = Table(
    "dispatch_rounds",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("pass_no", Integer, nullable=False),
    Column("opened_at", DateTime, nullable=False),
    Column("closed_at", DateTime),
)

dispatch_batches = Table(
    "dispatch_batches",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("pass_no", Integer, primary_key=True),
    Column("batch_no", Integer, primary_key=True),
    Column("action_ids", Json, nullable=False),
    Column("state", String(16), nullable=False),  # ready | claimed | done | cancelled
    Column("claimed_by", String(200)),
    Column("claimed_at", DateTime),
    Column("expires_at", DateTime),
    Column("claims", Integer, nullable=False, server_default=text("0")),
    Column("result", Json),
    Column("finished_at", DateTime),
    Index("ix_dispatch_batches_run_state", "run_id", "state"),
)

# Shared token buckets (migration 0011): the next instant (epoch seconds, the database's
# clock) at which a request of the named provider may go, so that every process together
# keeps to the configured rate. See ``store.rate_buckets``.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("next_at", Float, nullable=False),
)

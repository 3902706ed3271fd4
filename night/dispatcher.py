"""The dispatcher: carries a night's actions through reserve → issue → render → send,
exactly once, each on the terms it was planned under (``planned_terms``).

Every state change of ``store.outbox``'s state machine is committed before the next outside
call, so a run killed at any instant leaves each action in the last state known to be true
and the next run continues from there (docs/architecture.md, "Dispatch", walks through each
state). A reward that costs more than its campaign's ``approval_above`` is reserved and then
waits in ``awaiting_approval`` (one transaction), untouched until a person approves it
(``night.approvals``; a later dispatch then issues it) or it is rejected. Permanent problems
fail the action (its reward withdrawn, its reservation voided); transient ones leave it
where it was for the next pass; a refused API key stops the whole dispatch
(``DispatchStopped``). ``checkpoint(name)`` marks the crash tests' kill points.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from delivery.message import build_message, display_name
from delivery.render import EmailRenderer
from delivery.sendwindow import SendWindow, send_at_for
from delivery.template_context import member_email_context, reward_context
from domain.campaign import Campaign, Policy
from domain.postings import member_ref
from night.batch import (
    BatchResult,
    Checkpoint,
    DispatchConfig,
    DispatchStopped,
    no_checkpoint,
)
from night.settle import (
    SPENT_WHEN_SENT,
    consent_lost,
    draws_on_budget,
    fail_action,
    issued_reward,
    planned_terms,
    reward_member,
    spend,
)
from nudgeflow.errors import DeliveryError, RewardError
from nudgeflow.money import Money
from nudgeflow.timeutil import Clock
from providers.email import DeliveryAuthError, EmailSender, OutcomeUnknown, RetriesExhausted
from providers.rewards import IssuedReward, RewardIssuer, TransientRewardError
from store import approvals, ledger, outbox
from store.engine import write_turn
from store.outbox import OutboxAction


@dataclass
class _Sending:
    """One thread's request to commit: its action moved from ``state`` to ``sending``, and
    its accepted emails marked ``sent``."""

    accepted: list[tuple[OutboxAction, Campaign, str | None]]
    action_id: str
    state: str
    moved: bool = False
    committed: bool = False
    error: BaseException | None = None


class Dispatcher:
    """Dispatches batches of a night's actions (see the module docstring)."""

    def __init__(
        self,
        *,
        engine: Engine,
        campaigns: Mapping[str, Campaign],
        policy: Policy,
        issuer: RewardIssuer,
        sender: EmailSender,
        renderer: EmailRenderer,
        config: DispatchConfig,
        checkpoint: Checkpoint = no_checkpoint,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.campaigns = dict(campaigns)
        self.issuer = issuer
        self.sender = sender
        self.renderer = renderer
        self.config = config
        self.window = SendWindow.from_policy(policy)
        self.approval_wait = timedelta(days=policy.approval_expires_days)
        self.checkpoint = checkpoint
        self.clock = clock
        self._stopped: str | None = None
        self._stop_lock = threading.Lock()
        # Threads take turns for SQLite writes (the issuers' records too): see write_turn.
        self._write_turn = write_turn(engine)
        # Emails the provider accepted whose `sent` is not committed yet, per thread: each
        # is committed with the thread's next `sending` (one commit per email instead of
        # two), and whatever is left when its batch ends (see `_record_accepted`).
        self._accepted: dict[int, list[tuple[OutboxAction, Campaign, str | None]]] = {}
        # The group commit of `sending` on SQLite (``_commit_sending``): the requests
        # waiting for a commit, and the turn of the thread that commits them.
        self._group_commits = engine.dialect.name == "sqlite"
        self._sending_queue: list[_Sending] = []
        self._sending_lock = threading.Lock()
        self._commit_turn = threading.Lock()

    @contextmanager
    def _write(self, *, ledger_lock: bool = False) -> Iterator[Connection]:
        """A write transaction: ``ledger_transaction`` when the ledger is written."""
        with self._write_turn:
            if ledger_lock:
                with ledger.ledger_transaction(self.engine) as connection:
                    yield connection
            else:
                with self.engine.begin() as connection:
                    yield connection

    # -- the night ---------------------------------------------------------------------

    def recover(self, action_ids: Sequence[str] | None = None) -> int:
        """Turn actions a dead run left in ``sending`` into ``unknown`` (hold the lease);
        with ``action_ids``, those of a batch whose dead worker's claim was taken over."""
        with self._write() as connection:
            return outbox.sending_to_unknown(connection, self.clock(), action_ids)

    def pending(self) -> list[str]:
        with self.engine.connect() as connection:
            return outbox.pending_ids(connection, self.config.as_of)

    def dispatch(self, action_ids: Sequence[str]) -> BatchResult:
        """Dispatch one batch with at most ``max_workers`` threads (its actions that are
        still pending; the others are left alone); raise ``DispatchStopped`` once the batch
        is done if a provider refused our key."""
        with self._write() as connection:
            loaded = outbox.load(
                connection,
                action_ids,
                now=self.clock(),
                categories={cid: c.category for cid, c in self.campaigns.items()},
            )
            # Only what still has work to do: a batch worked again (a Prefect retry, a
            # batch taken over from a dead worker) must not send what was sent or is
            # ``sending``/``unknown`` (every move below starts from the state loaded here).
            batch = [a for a in loaded if a.state in outbox.PENDING]
            outbox.begin_attempt(connection, [a.action_id for a in batch])
        result = BatchResult()
        lock = threading.Lock()

        def work(action: OutboxAction) -> None:
            outcome, issued, problem = self._one(action)
            with lock:
                result.outcomes[(action.campaign_id, outcome)] += 1
                if issued:
                    result.rewards_issued[action.campaign_id] += 1
                if problem:
                    result.problems.append(f"{action.action_id}: {problem}")

        workers = max(1, min(self.config.max_workers, len(batch)))
        try:
            if workers == 1:
                for action in batch:
                    work(action)
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dispatch") as pool:
                    list(pool.map(work, batch))
        finally:
            self._record_accepted(
                [e for t in list(self._accepted) for e in self._accepted.pop(t, [])]
            )
        if self._stopped is not None:
            raise DispatchStopped(self._stopped)
        return result

    # -- one action --------------------------------------------------------------------

    def _one(self, action: OutboxAction) -> tuple[str, bool, str | None]:
        """(outcome, whether a reward was issued now, problem) for one action."""
        if self._stopped is not None:
            return "skipped", False, None
        current = self.campaigns.get(action.campaign_id)
        if current is None:
            reason = f"campaign {action.campaign_id} is no longer enabled in the campaign files"
            return self._fail_before_sending(action, None, reason)
        campaign = planned_terms(current, action)
        if not action.consent:
            reason = consent_lost(action.preference)
            return self._fail_before_sending(action, campaign, reason)
        state = action.state
        issued: IssuedReward | None = None
        newly_issued = False
        try:
            if campaign.reward is not None and state == "planned":
                reserved = self._reserve(action, campaign)
                if reserved is None:
                    return "failed", False, "budget exhausted"
                if reserved == outbox.WAITING:
                    return outbox.WAITING, False, None
                state = "reserved"
            if campaign.reward is not None and state == "reserved":
                issued = self._issue(action, campaign)
                newly_issued = True
                state = "reward_issued"
            elif campaign.reward is not None:
                issued = self._find_issued(action, campaign)
        except TransientRewardError as exc:
            return "deferred", False, str(exc)
        except RewardError as exc:
            self._fail(action, str(exc), None)
            return "failed", False, str(exc)
        return self._send(action, campaign, state, issued, newly_issued)

    def _fail_before_sending(
        self, action: OutboxAction, campaign: Campaign | None, reason: str
    ) -> tuple[str, bool, str | None]:
        """Fail an action that must not be sent, withdrawing a reward an earlier pass issued."""
        try:
            issued = issued_reward(self.engine, self.issuer, action, campaign)
        except TransientRewardError as exc:
            return "deferred", False, str(exc)
        except RewardError as exc:
            issued = None
            reason = f"{reason}; finding its reward failed ({exc}): withdraw it by hand"
        self._fail(action, reason, issued)
        return "failed", False, reason

    def _ledgered(self, action: OutboxAction) -> bool:
        return action.currency is not None

    def _member_ref(self, action: OutboxAction) -> str:
        return member_ref(str(action.member["member_id"]), self.config.signing_key)

    def _cost(self, action: OutboxAction, campaign: Campaign) -> Money | None:
        if action.currency is not None:
            return Money(action.cost_minor, action.currency)
        return campaign.reward.cost if campaign.reward is not None else None

    def _reserve(self, action: OutboxAction, campaign: Campaign) -> str | None:
        """Reserve the action's budget: the state it moved to (``reserved``, or
        ``awaiting_approval`` when its cost needs a person's approval), None when the
        budget cannot cover it (the action failed)."""
        now = self.clock()
        cost = self._cost(action, campaign)
        waits = cost is not None and campaign.needs_approval(cost)
        to_state = outbox.WAITING if waits else "reserved"
        with self._write(ledger_lock=True) as connection:
            if self._ledgered(action):
                assert action.currency is not None
                held = ledger.reserve(
                    connection,
                    action.action_id,
                    campaign.id,
                    Money(action.cost_minor, action.currency),
                    self._member_ref(action),
                    self.config.as_of,
                    fund_shortfall=not draws_on_budget(campaign, action),
                    now=now,
                )
                if not held:
                    outbox.move(
                        connection,
                        action.action_id,
                        ("planned",),
                        "failed",
                        now,
                        reason="budget exhausted: the campaign's budget cannot cover it",
                    )
                    return None
                self.checkpoint("during_ledger_write")
            moved = outbox.move(connection, action.action_id, ("planned",), to_state, now)
            if moved and waits:
                assert campaign.approval_above is not None
                approvals.request(
                    connection,
                    action.action_id,
                    str(campaign.approval_above),
                    now,
                    now + self.approval_wait,
                )
        self.checkpoint("after_reserve")
        return to_state

    def _issue(self, action: OutboxAction, campaign: Campaign) -> IssuedReward:
        assert campaign.reward is not None
        # Loaded as `planned`, the action was reserved by this pass: no earlier attempt got
        # as far as the issuer (it is only called from a committed `reserved`), so nothing
        # can exist to look up. Loaded as `reserved`, an earlier attempt may have reached
        # the provider before it stopped: the issuer looks first.
        issued = self.issuer.issue(
            action.action_id,
            campaign,
            campaign.reward,
            reward_member(action),
            first_attempt=action.state == "planned",
        )
        now = self.clock()
        with self._write(ledger_lock=True) as connection:
            if self._ledgered(action):
                ledger.issue(
                    connection,
                    action.action_id,
                    issued.provider_ref,
                    business_date=self.config.as_of,
                    now=now,
                )
            outbox.move(
                connection,
                action.action_id,
                ("reserved",),
                "reward_issued",
                now,
                reward_ref=issued.provider_ref,
            )
        self.checkpoint("after_reward_stored")
        return issued

    def _find_issued(self, action: OutboxAction, campaign: Campaign) -> IssuedReward:
        assert campaign.reward is not None
        issued = self.issuer.find(
            action.action_id, campaign, campaign.reward, reward_member(action)
        )
        if issued is None:
            raise RewardError(f"the reward recorded for action {action.action_id} is missing")
        return issued

    def _reward_context(self, issued: IssuedReward, campaign: Campaign) -> dict[str, Any]:
        return reward_context(
            kind=campaign.reward.kind if campaign.reward else issued.kind,
            code=issued.code,
            value=issued.value_text,
            expires_at=issued.expires_at,
            link=issued.link,
            zone=self.config.zone,
        )

    def _send(
        self,
        action: OutboxAction,
        campaign: Campaign,
        state: str,
        issued: IssuedReward | None,
        newly_issued: bool,
    ) -> tuple[str, bool, str | None]:
        member = action.member
        try:
            context = member_email_context(
                member=member,
                campaign=campaign,
                reward=self._reward_context(issued, campaign) if issued else None,
                now=self.config.as_of,
                base_url=self.config.base_url,
                signing_key=self.config.signing_key,
            )
            rendered = self.renderer.render_campaign(campaign, context)
            now = self.clock()
            message = build_message(
                rendered=rendered,
                action_id=action.action_id,
                campaign_id=campaign.id,
                member_id=str(member["member_id"]),
                as_of=self.config.as_of,
                to_email=str(member["email"]),
                to_name=display_name(member["first_name"], member["last_name"]),
                from_address=self.config.from_address,
                unsubscribe_url=context["links"]["unsubscribe"],
                send_at=send_at_for(self.window, now, member["timezone"], self.config.zone),
            )
        except DeliveryError as exc:
            self._fail(action, f"cannot build the email: {exc}", issued)
            return "failed", newly_issued, str(exc)
        self.checkpoint("after_render")
        if self._stopped is not None:
            return "skipped", newly_issued, None
        # `sending` is committed before the call, as ever; the `sent` of this thread's
        # previous email rides in the same commit, and so do the other threads' that are
        # waiting for a commit at the same moment (``_commit_sending``).
        accepted = self._accepted.pop(threading.get_ident(), [])
        try:
            moved = self._commit_sending(_Sending(accepted, action.action_id, state))
        except BaseException:
            self._accepted.setdefault(threading.get_ident(), []).extend(accepted)
            raise
        if not moved:
            return "skipped", newly_issued, "moved by someone else"
        try:
            result = self.sender.send(message)
        except DeliveryAuthError as exc:
            with self._stop_lock:
                self._stopped = str(exc)
            self._back_to(action, state, f"not sent: {exc}")
            return "deferred", newly_issued, str(exc)
        except RetriesExhausted as exc:
            # The sender retries only failures that prove nothing was sent.
            self._back_to(action, state, f"not sent, will retry: {exc}")
            return "deferred", newly_issued, str(exc)
        except OutcomeUnknown as exc:
            with self._write() as connection:
                outbox.move(
                    connection,
                    action.action_id,
                    ("sending",),
                    "unknown",
                    self.clock(),
                    reason=str(exc),
                )
            return "unknown", newly_issued, str(exc)
        except DeliveryError as exc:  # refused for good (400, 413, …): it was not sent
            self._fail(action, f"the email was refused: {exc}", issued, sending=True)
            return "failed", newly_issued, str(exc)
        except Exception as exc:  # a bug or an unforeseen error: nobody knows if it went
            with self._write() as connection:
                outbox.move(
                    connection,
                    action.action_id,
                    ("sending",),
                    "unknown",
                    self.clock(),
                    reason=f"{type(exc).__name__}: {exc}",
                )
            return "unknown", newly_issued, f"{type(exc).__name__}: {exc}"
        self.checkpoint("after_send_accepted")
        entry = (action, campaign, result.provider_message_id)
        self._accepted.setdefault(threading.get_ident(), []).append(entry)
        return "sent", newly_issued, None

    def _commit_sending(self, mine: _Sending) -> bool:
        """Commit ``mine`` (its action moved to ``sending``, its accepted emails ``sent``)
        and return whether the action moved; returns once that is committed.

        On SQLite, whose one writer makes the threads take turns anyway, a group commit: a
        thread queues its request and takes the commit turn; the thread that gets it
        commits every request queued by then in one transaction, and the threads whose
        request it took find theirs committed when their turn comes. Each thread still
        returns only after the commit that holds its ``sending``, so the rule of dispatch
        (``sending`` committed before the provider is called) is unchanged; a failed
        transaction fails every request in it. On PostgreSQL the threads' transactions run
        side by side, each its own."""
        if not self._group_commits:
            self._commit_group([mine])
        else:
            with self._sending_lock:
                self._sending_queue.append(mine)
            with self._commit_turn:
                if not mine.committed and mine.error is None:
                    with self._sending_lock:
                        group, self._sending_queue = self._sending_queue, []
                    self._commit_group(group)
        if mine.error is not None:
            raise mine.error
        return mine.moved

    def _commit_group(self, group: Sequence[_Sending]) -> None:
        """One transaction for ``group``'s requests; each is marked committed, or failed."""
        accepted = [entry for request in group for entry in request.accepted]
        try:
            with self._write(ledger_lock=self._spends(accepted)) as connection:
                self._mark_sent(connection, accepted)
                now = self.clock()
                for request in group:
                    request.moved = outbox.move(
                        connection, request.action_id, (request.state,), "sending", now
                    )
        except BaseException as exc:
            for request in group:
                request.error = exc
        else:
            for request in group:
                request.committed = True

    def _spends(self, accepted: Sequence[tuple[OutboxAction, Campaign, str | None]]) -> bool:
        """Whether marking these sent writes the ledger (credits and invites are spent)."""
        return any(
            c.reward is not None and c.reward.kind in SPENT_WHEN_SENT and self._ledgered(a)
            for a, c, _ in accepted
        )

    def _mark_sent(
        self,
        connection: Connection,
        accepted: Sequence[tuple[OutboxAction, Campaign, str | None]],
    ) -> None:
        now = self.clock()
        for action, campaign, message_id in accepted:
            outbox.move(
                connection, action.action_id, ("sending",), "sent", now, message_id=message_id
            )
            kind = campaign.reward.kind if campaign.reward else None
            if kind in SPENT_WHEN_SENT and self._ledgered(action):
                assert action.currency is not None
                cost = Money(action.cost_minor, action.currency)
                spend(connection, action.action_id, cost, now, self.config.as_of)

    def _record_accepted(
        self, accepted: Sequence[tuple[OutboxAction, Campaign, str | None]]
    ) -> None:
        """Commit the `sent` of accepted emails still waiting, in one transaction."""
        if accepted:
            with self._write(ledger_lock=self._spends(accepted)) as connection:
                self._mark_sent(connection, accepted)

    def _back_to(self, action: OutboxAction, state: str, reason: str) -> None:
        with self._write() as connection:
            outbox.move(
                connection, action.action_id, ("sending",), state, self.clock(), reason=reason
            )

    def _fail(
        self,
        action: OutboxAction,
        reason: str,
        issued: IssuedReward | None,
        *,
        sending: bool = False,
    ) -> None:
        fail_action(
            self.engine,
            self.issuer,
            action,
            reason,
            issued,
            self.clock(),
            self.config.as_of,
            from_states=("sending",) if sending else outbox.PENDING,
            turn=self._write_turn,
        )

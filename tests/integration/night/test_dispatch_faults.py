"""The fault test (issue 6): a night of 300+ actions while the Stripe and SendGrid fakes
answer 20 % of all requests with a transient fault (429 with rate-limit headers, 5xx, 409,
timeouts, resets, responses dropped after the work was done). The dispatch is run again
until nothing is pending; then nothing may be doubled, every action must be terminal, only
the emails whose answer SendGrid dropped after accepting may be ``unknown``, the ledger
must verify and ``ledger reconcile`` must find Stripe and the rewards in agreement."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from night.lease import night_lease
from night.reconcile import reconcile
from providers.retry import RetryPolicy
from store.outbox import PENDING
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.fakes.stripe_api import StripeFake
from tests.integration import nights
from tests.integration.night.crash_world import (
    AS_OF,
    add_customers,
    app_from,
    close_app,
    email_action,
    exactly_once_problems,
    ledger_problems,
    prepare,
    read_night,
    settings_env,
    write_campaigns,
)

FAULT_RATE = 0.2
# Our retry policies with short waits, so the test stays fast: the behaviour is the same.
FAST_STRIPE = RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.1)
SENDGRID_TIMEOUT = 1.5  # the client gives up on an answer held back 1.6 s
# SendGrid's faults, weighted: errors to retry, and fewer answers lost after accepting
# (each timeout holds a worker SENDGRID_TIMEOUT seconds; each loss makes an `unknown`).
SENDGRID_FAULTS = ("429", "429", "500", "502", "503", "503", "reset_accepted", "timeout_accepted")
MAX_PASSES = 4


def test_a_night_with_20_percent_transient_faults_completes_once_and_reconciles(
    db_url: str, tmp_path: Path
) -> None:
    with StripeFake() as stripe, FakeSendGrid(timeout_delay=SENDGRID_TIMEOUT + 0.1) as sendgrid:
        add_customers(stripe)
        env = settings_env(
            database_url=db_url,
            campaigns_dir=write_campaigns(tmp_path / "campaigns"),
            stripe_url=stripe.url,
            sendgrid_url=sendgrid.url,
            batch_size=100,
            max_workers=4,
            sendgrid_attempts=8,
            sendgrid_timeout=SENDGRID_TIMEOUT,
        )
        app = app_from(env)
        try:
            assert prepare(app)["new_actions"] >= 300
            app.issuer.providers["discount"].api.retry = FAST_STRIPE  # type: ignore[attr-defined]
            sender = app.sender
            sender.retry = replace(sender.retry, base_delay=0.01)  # type: ignore[attr-defined]
            stripe.fault_rate(FAULT_RATE, seed=6)
            sendgrid.fault_rate(FAULT_RATE, seed=6, kinds=SENDGRID_FAULTS)

            passes = 0
            with night_lease(app.engine, AS_OF, app.clock):
                while passes < MAX_PASSES:
                    passes += 1
                    nights.dispatch(app, AS_OF)
                    if not read_night(app.engine).in_state(*PENDING):
                        break
            state = read_night(app.engine)
            assert state.in_state(*PENDING, "sending") == set(), f"pending after {passes} passes"

            assert exactly_once_problems(state, stripe, sendgrid) == []
            assert ledger_problems(state) == []
            dropped = {email_action(m) for m in sendgrid.dropped}
            assert state.in_state("unknown") == dropped
            assert {a: state.actions[a]["reason"] for a in state.in_state("failed")} == {}
            assert len(state.in_state("sent")) == len(sendgrid.messages) - len(dropped)

            api = app.stripe_api()  # reconcile while the faults go on
            api.retry = FAST_STRIPE
            try:
                assert reconcile(app.engine, api) == []
            finally:
                api.close()
        finally:
            close_app(app)

    # The faults did happen, of every kind, at about the rate asked for.
    stripe_kinds = Counter(kind for kind, _, _ in stripe.injected)
    assert set(stripe_kinds) == {"429", "409", "500", "502", "503", "timeout", "drop", "reset"}
    assert len(stripe.injected) > 0.1 * len(stripe.requests)
    assert set(sendgrid.injected) == set(SENDGRID_FAULTS)
    assert len(sendgrid.injected) > 0.1 * sendgrid.attempts

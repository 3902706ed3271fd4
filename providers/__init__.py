"""Outside services: the email senders (SendGrid, a file outbox) and the reward issuers
(Stripe, gifts, invites), with one retry and rate-limit policy. Dispatch sees only the
interfaces in ``providers.email`` and ``providers.rewards``, which import no implementation."""

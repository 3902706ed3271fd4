"""Outside services: the email senders (SendGrid, a file outbox) and the reward issuers
(Stripe, gifts, invites), behind the interfaces dispatch uses."""

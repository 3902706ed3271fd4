"""What comes back: the use cases behind the HTTP service and the night's inbox step.

Unsubscribes, preference changes and accepted VIP invites from the pages; SendGrid's and
Stripe's webhooks and live events from the ingestion API, stored in the inbox before they
are answered and worked from it, each taking effect once.
"""

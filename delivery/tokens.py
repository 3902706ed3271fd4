"""Unsubscribe tokens: signed, URL-safe, carrying the member and the campaign.

A token is ``itsdangerous``'s URL-safe serialisation of ``[member_id, campaign_id]``,
HMAC-SHA256-signed with ``NUDGEFLOW_SIGNING_KEY``. Tokens do not expire on purpose: an
unsubscribe link in an old email must keep working (CAN-SPAM asks for at least 30 days,
and nobody should find a dead unsubscribe link years later). Rotating the signing key
invalidates every outstanding link, so the key is long-lived.

The same token serves the visible footer link (``/u/TOKEN``), the one-click
``List-Unsubscribe`` URL (RFC 8058 POSTs to the same address), the ``mailto:`` subject and
``nudgeflow unsubscribe TOKEN``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeSerializer
from pydantic import SecretStr

from nudgeflow.errors import DeliveryError

# Domain separation: a token signed for another purpose with the same key (say, a VIP
# invite) can never be replayed as an unsubscribe, and vice versa.
SALT = "nudgeflow.unsubscribe.v1"
UNSUBSCRIBE_PATH = "/u/"
PREFERENCES_PATH = "/preferences/"


class BadTokenError(DeliveryError):
    """An unsubscribe token that is malformed, tampered with or signed with another key."""

    exit_code = 1


@dataclass(frozen=True)
class UnsubscribeToken:
    """What a valid token proves: this member asked to stop, from this campaign's email."""

    member_id: str
    campaign_id: str


def _secret(signing_key: str | SecretStr) -> str:
    return signing_key.get_secret_value() if isinstance(signing_key, SecretStr) else signing_key


def _serializer(signing_key: str | SecretStr) -> URLSafeSerializer:
    return _serializer_for(_secret(signing_key))


@lru_cache(maxsize=8)
def _serializer_for(secret: str) -> URLSafeSerializer:
    # Built once per key: a nightly run signs one token per email.
    return URLSafeSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def make_unsubscribe_token(signing_key: str | SecretStr, member_id: str, campaign_id: str) -> str:
    return str(_serializer(signing_key).dumps([member_id, campaign_id]))


def make_unsubscribe_link(
    base_url: str, signing_key: str | SecretStr, member_id: str, campaign_id: str
) -> str:
    """``{PUBLIC_BASE_URL}/u/TOKEN``: the footer link and the one-click header URL."""
    token = make_unsubscribe_token(signing_key, member_id, campaign_id)
    return f"{base_url.rstrip('/')}{UNSUBSCRIBE_PATH}{token}"


def member_links(
    base_url: str, signing_key: str | SecretStr, member_id: str, campaign_id: str
) -> dict[str, str]:
    """The ``links`` of a real member's template context (one token, signed once)."""
    token = make_unsubscribe_token(signing_key, member_id, campaign_id)
    base = base_url.rstrip("/")
    return {
        "unsubscribe": f"{base}{UNSUBSCRIBE_PATH}{token}",
        "preferences": f"{base}{PREFERENCES_PATH}{token}",
    }


def token_from_text(text: str) -> str:
    """The token in ``text``: the token itself, or a ``…/u/TOKEN`` link pasted whole."""
    value = text.strip()
    if "://" in value:
        path = urlsplit(value).path
        for prefix in (UNSUBSCRIBE_PATH, PREFERENCES_PATH):
            if prefix in path:
                return path.rsplit(prefix, 1)[1].strip("/")
    return value


def read_unsubscribe_token(token: str, signing_key: str | SecretStr) -> UnsubscribeToken:
    """Verify ``token`` (or a link holding it); raise ``BadTokenError`` unless it is genuine."""
    value = token_from_text(token)
    if not value:
        raise BadTokenError("invalid unsubscribe token: it is empty")
    try:
        payload = _serializer(signing_key).loads(value)
    except BadData:
        # One message for every failure: telling a forger *why* helps nobody else.
        raise BadTokenError(
            "invalid unsubscribe token: the signature does not match "
            "(tampered, truncated or signed with another NUDGEFLOW_SIGNING_KEY)"
        ) from None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not all(isinstance(part, str) and part for part in payload)
    ):
        raise BadTokenError("invalid unsubscribe token: unexpected contents")
    return UnsubscribeToken(member_id=payload[0], campaign_id=payload[1])

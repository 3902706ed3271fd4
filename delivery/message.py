"""The outgoing email: one value that every sender turns into its own wire format.

``build_message`` assembles it from a rendered email and the member, and is the one place
that guards the headers: any value that ends up in a header (subject, names, addresses,
custom arguments) is refused if it holds a line break, so a member called
``"Ada\\r\\nBcc: everyone@example.com"`` cannot add recipients or headers. The body parts
are not headers and may hold anything (the renderer has escaped them).

Every message carries the RFC 8058 one-click unsubscribe headers (Gmail and Yahoo require
them from bulk senders)::

    List-Unsubscribe: <https://…/u/TOKEN>, <mailto:unsubscribe@…?subject=unsubscribe%20TOKEN>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parseaddr
from functools import lru_cache
from urllib.parse import quote

from delivery.render import RenderedEmail
from nudgeflow.errors import DeliveryError

# Every character str.splitlines() breaks on, plus NUL: any of them in a header value
# could end the header early in some mail software.
_LINE_BREAK = re.compile("[\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# SendGrid's documented limits (the fake enforces them too).
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORY_LENGTH = 255


class HeaderInjectionError(DeliveryError):
    """A value bound for an email header contains a line break: refused, never cleaned up,
    so the action fails with a reason someone can act on."""

    exit_code = 1


class MessageError(DeliveryError):
    """A message that cannot be sent as built (bad address, custom args too large)."""

    exit_code = 1


@dataclass(frozen=True)
class Address:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class OutgoingEmail:
    """One email to one member, as every sender receives it."""

    action_id: str
    campaign_id: str
    member_id: str
    as_of: date  # the business night that planned it (the outbox folder)
    sender: Address
    recipient: Address
    subject: str
    html: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)  # List-Unsubscribe, …
    custom_args: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    send_at: datetime | None = None  # None: deliver at once


def refuse_line_breaks(what: str, value: str) -> str:
    """``value`` unchanged, or ``HeaderInjectionError`` naming ``what`` if it has a line break."""
    if _LINE_BREAK.search(value):
        raise HeaderInjectionError(f"{what} contains a line break: refused (header injection)")
    return value


_BARE_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+")


@lru_cache(maxsize=64)  # the From address is the same on every email of a run
def parse_address(what: str, text: str) -> Address:
    """``"Name <a@b.example>"`` or ``a@b.example`` → ``Address``; refuse anything else."""
    refuse_line_breaks(what, text)
    if _BARE_ADDRESS.fullmatch(text):  # the common case, without the full RFC 5322 parser
        return Address(email=text)
    name, email = parseaddr(text)
    if not email or email.count("@") != 1 or " " in email:
        raise MessageError(f"{what} is not an email address: {text!r}")
    return Address(email=email, name=name or None)


def _recipient_address(to_email: str) -> Address:
    refuse_line_breaks("the recipient's email address", to_email)
    if _BARE_ADDRESS.fullmatch(to_email):
        return Address(email=to_email)
    # Not cached: one entry per member would only grow.
    return parse_address.__wrapped__("the recipient's email address", to_email)


def _domain(address: Address) -> str:
    return address.email.rsplit("@", 1)[1]


def unsubscribe_mailbox(sender: Address) -> str:
    """Where the ``mailto:`` unsubscribe goes: ``unsubscribe@`` the sender's domain."""
    return f"unsubscribe@{_domain(sender)}"


def list_unsubscribe_headers(unsubscribe_url: str, mailbox: str | None) -> dict[str, str]:
    """The RFC 2369 / RFC 8058 headers. The mailto subject carries the token (the last path
    segment of the link) so a mailbox processor can apply it with ``nudgeflow unsubscribe``."""
    refuse_line_breaks("the unsubscribe link", unsubscribe_url)
    targets = [f"<{unsubscribe_url}>"]
    if mailbox:
        token = unsubscribe_url.rstrip("/").rsplit("/", 1)[-1]
        targets.append(f"<mailto:{mailbox}?subject={quote('unsubscribe ' + token)}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def display_name(first_name: str | None, last_name: str | None) -> str | None:
    name = " ".join(part.strip() for part in (first_name, last_name) if part and part.strip())
    return name or None


def build_message(
    *,
    rendered: RenderedEmail,
    action_id: str,
    campaign_id: str,
    member_id: str,
    as_of: date,
    to_email: str,
    to_name: str | None,
    from_address: str,
    unsubscribe_url: str,
    unsubscribe_mailbox_address: str | None = None,
    send_at: datetime | None = None,
) -> OutgoingEmail:
    """The message for one action; ``HeaderInjectionError``/``MessageError`` when a header
    value is unsafe or an address unusable."""
    sender = parse_address("the From address (NUDGEFLOW_EMAIL__FROM_ADDRESS)", from_address)
    if to_name is not None:
        refuse_line_breaks("the recipient's name", to_name)
    recipient = _recipient_address(to_email)
    recipient = Address(recipient.email, to_name or None)
    subject = refuse_line_breaks("the subject", rendered.subject)
    custom_args = {
        "action_id": refuse_line_breaks("the action id", action_id),
        "campaign_id": refuse_line_breaks("the campaign id", campaign_id),
    }
    if len(json.dumps(custom_args).encode()) > MAX_CUSTOM_ARGS_BYTES:
        raise MessageError(f"custom_args exceed {MAX_CUSTOM_ARGS_BYTES} bytes")
    if len(campaign_id) > MAX_CATEGORY_LENGTH:
        raise MessageError(f"campaign id longer than {MAX_CATEGORY_LENGTH} characters")
    mailbox = unsubscribe_mailbox_address or unsubscribe_mailbox(sender)
    return OutgoingEmail(
        action_id=action_id,
        campaign_id=campaign_id,
        member_id=member_id,
        as_of=as_of,
        sender=sender,
        recipient=recipient,
        subject=subject,
        html=rendered.html,
        text=rendered.text,
        headers=list_unsubscribe_headers(unsubscribe_url, mailbox),
        custom_args=custom_args,
        categories=(campaign_id,),
        send_at=send_at,
    )

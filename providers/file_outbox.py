"""The file outbox: the default sender, which keeps every email on this machine as an
RFC 5322 ``.eml`` file under ``<outbox>/<as_of>/`` that any mail client opens.

``to_mime`` builds that message; ``nudgeflow preview`` writes it too, exactly as it would leave.
Headers that carry URLs (``List-Unsubscribe``) are written as ``<url>``, plain ASCII, as
SendGrid sends them: Python's default folding would turn a long URL into RFC 2047 encoded
words (``=?utf-8?q?=3Chttp…``), which no mail client reads as a link.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from email.headerregistry import Address as MimeAddress
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy, Policy
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from delivery.message import Address, OutgoingEmail
from providers.email import SendError, SendResult

# RFC 2369's headers: each value is a list of <url>s.
URL_HEADERS = (
    "List-Unsubscribe",
    "List-Help",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
)
# RFC 5322's limit for a line; 78 is only a recommendation, and a URL cannot be split.
MAX_LINE = 998


class URLListHeader(UnstructuredHeader, BaseHeader):
    """A header whose value is ``<url>, <url>``: written verbatim on one line (folded only
    between entries, should the line pass ``MAX_LINE``), never as encoded words."""

    def fold(self, *, policy: Policy[Any]) -> str:
        value = str(self)
        if not value.isascii():  # not a valid URL list: the default keeps it readable
            return super().fold(policy=policy)
        line = f"{self.name}: {value}"
        if len(line) > MAX_LINE:
            line = f"{self.name}: " + f",{policy.linesep} ".join(value.split(", "))
        return line + policy.linesep


def _mime_policy() -> EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    for name in URL_HEADERS:
        registry.map_to_type(name, URLListHeader)
    return default_policy.clone(header_factory=registry)


MIME_POLICY = _mime_policy()


def _mime_address(address: Address) -> MimeAddress:
    return MimeAddress(display_name=address.name or "", addr_spec=address.email)


def to_mime(message: OutgoingEmail, sent: datetime) -> EmailMessage:
    """The RFC 5322 message: the headers SendGrid would get, and both parts.

    What SendGrid takes as JSON fields (custom args, categories, send_at) is written as
    ``X-Nudgeflow-*`` headers so that nothing the real send carries is lost from the file.
    """
    mime = EmailMessage(policy=MIME_POLICY)
    mime["From"] = _mime_address(message.sender)
    mime["To"] = _mime_address(message.recipient)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(sent.astimezone(UTC))
    mime["Message-ID"] = make_msgid(
        idstring=message.action_id, domain=message.sender.email.rsplit("@", 1)[1]
    )
    for name, value in message.headers.items():
        mime[name] = value
    for key, value in message.custom_args.items():
        mime[f"X-Nudgeflow-{key.replace('_', '-').title()}"] = value
    if message.categories:
        mime["X-Nudgeflow-Categories"] = ", ".join(message.categories)
    if message.send_at is not None:
        mime["X-Nudgeflow-Send-At"] = format_datetime(message.send_at.astimezone(UTC))
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


def _safe_file_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".") or "email"


def message_path(outbox_dir: Path, as_of: date, action_id: str) -> Path:
    """Where the file outbox keeps the email of ``action_id``, planned on the night ``as_of``."""
    return Path(outbox_dir) / as_of.isoformat() / f"{_safe_file_name(action_id)}.eml"


def remove_messages(outbox_dir: Path, keys: Iterable[tuple[date, str]]) -> int:
    """Delete the outbox files of these (night, action id)s; how many there were. Any
    other ``OSError`` than a missing file is the caller's to report."""
    removed = 0
    for as_of, action_id in keys:
        try:
            message_path(outbox_dir, as_of, action_id).unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


class FileOutboxSender:
    """Writes each message to ``<outbox>/<as_of>/<action_id>.eml`` (like Django's file
    backend). The file appears whole or not at all (written aside, then renamed)."""

    def __init__(self, outbox_dir: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.outbox_dir = Path(outbox_dir)
        self._clock = clock or (lambda: datetime.now(UTC))

    def path_for(self, message: OutgoingEmail) -> Path:
        return message_path(self.outbox_dir, message.as_of, message.action_id)

    def send(self, message: OutgoingEmail) -> SendResult:
        mime = to_mime(message, self._clock())
        path = self.path_for(message)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
            with os.fdopen(fd, "wb") as stream:
                stream.write(mime.as_bytes(policy=SMTP))
            os.replace(temporary, path)
        except OSError as exc:
            raise SendError(f"cannot write {path}: {exc.strerror or exc}") from None
        return SendResult(provider_message_id=str(mime["Message-ID"]))

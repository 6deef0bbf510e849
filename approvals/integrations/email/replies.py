"""Replies to our e-mails become comments on the request, when INBOUND_EMAIL_SECRET is set.

Each e-mail about a request carries `Reply-To: reply+<instance>.<user>.<mac>@<domain>`, the
mac an HMAC-SHA256 of the pair with INBOUND_EMAIL_SECRET (cut to 24 hex digits: the address's
local part must stay under 64 characters). The mail provider's inbound webhook posts each
reply to `/email/inbound/` (Postmark's inbound JSON: `FromFull`, `ToFull`, `TextBody`,
`StrippedTextReply`, `MessageID`), with INBOUND_EMAIL_SECRET as its HTTP Basic password;
`services.comment_from_reply` posts it as the person the address was made for, when it comes
from their address, through the discussion's own service and rules; the same message twice is
posted once."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.conf import settings

from approvals.services.errors import InvalidInput

MAC_DIGITS = 24
_ADDRESS = re.compile(rf"^reply\+(\d+)\.(\d+)\.([0-9a-f]{{{MAC_DIGITS}}})@", re.IGNORECASE)
# Where the quoted message starts in a reply that the provider did not strip.
_QUOTE_STARTS = (
    re.compile(r"^On .+ wrote:\s*$"),
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}", re.IGNORECASE),
    re.compile(r"^From: .+"),
)


def enabled() -> bool:
    return bool(settings.INBOUND_EMAIL_SECRET)


def _mac(instance_id: int, user_id: int) -> str:
    message = f"reply:{instance_id}:{user_id}".encode()
    key = settings.INBOUND_EMAIL_SECRET.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:MAC_DIGITS]


def reply_address(instance_id: int, user_id: int) -> str:
    """The Reply-To of an e-mail about this request sent to this person."""
    domain = settings.INBOUND_EMAIL_DOMAIN or (
        parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    )
    return f"reply+{instance_id}.{user_id}.{_mac(instance_id, user_id)}@{domain}"


@dataclass(frozen=True)
class Reply:
    """What the inbound webhook posted, as far as a comment needs."""

    recipients: list[str]
    sender: str
    body: str
    message_id: str

    @classmethod
    def from_postmark(cls, payload: Any) -> Reply:
        if not isinstance(payload, dict):
            raise InvalidInput("the inbound e-mail must be a JSON object", {})
        recipients = [
            str(item.get("Email", ""))
            for item in payload.get("ToFull") or []
            if isinstance(item, dict)
        ]
        recipients += [str(payload.get("OriginalRecipient") or "")]
        sender = payload.get("FromFull")
        sender = str(sender.get("Email", "")) if isinstance(sender, dict) else ""
        body = str(payload.get("StrippedTextReply") or "").strip() or without_quote(
            str(payload.get("TextBody") or "")
        )
        return cls(
            recipients=[r for r in recipients if r],
            sender=sender or parseaddr(str(payload.get("From") or ""))[1],
            body=body,
            message_id=str(payload.get("MessageID") or ""),
        )


def without_quote(text: str) -> str:
    """The reply's own words: up to the quoted message (`On … wrote:`, `> ` lines...)."""
    kept = []
    for line in text.splitlines():
        if line.startswith(">") or any(p.match(line) for p in _QUOTE_STARTS):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def read_address(recipients: list[str]) -> tuple[int, int] | None:
    """(instance id, user id) of the first of our signed reply addresses among these."""
    for match in map(_ADDRESS.match, recipients):
        if match and hmac.compare_digest(match[3].lower(), _mac(int(match[1]), int(match[2]))):
            return int(match[1]), int(match[2])
    return None

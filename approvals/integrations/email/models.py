"""The e-mail channel's models, defined with the other approvals models (approvals/models.py)."""

from approvals.models import DIGEST_KIND, EmailStatus, OutgoingEmail

__all__ = ["DIGEST_KIND", "EmailStatus", "OutgoingEmail"]

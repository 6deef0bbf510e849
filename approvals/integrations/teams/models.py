"""The Teams channel's models, defined with the other approvals models (approvals/models.py)."""

from approvals.models import CLOSED_KIND, TeamsMessage, TeamsStatus

__all__ = ["CLOSED_KIND", "TeamsMessage", "TeamsStatus"]

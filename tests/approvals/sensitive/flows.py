"""A payment flow whose bank account is a sensitive field."""

from __future__ import annotations

from typing import Any

IBAN = "DE89370400440532013000"
OTHER_IBAN = "FR1420041010050500013M02606"


def payment_flow() -> dict[str, Any]:
    """review (manager) → paid; a German account goes through a check first (a guard reading
    the sensitive field); CORRECT lets finance replace the account (`assign` of it)."""
    return {
        "id": "payment",
        "title": "Payment",
        "initial": "submitted",
        "form": {
            "type": "object",
            "required": ["title", "iban"],
            "properties": {
                "title": {"type": "string", "maxLength": 200},
                "amount": {"type": "number", "minimum": 0},
                "iban": {
                    "type": "string",
                    "title": "Bank account (IBAN)",
                    "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$",
                    "x-sensitive": True,
                },
            },
        },
        "states": {
            "submitted": {
                "always": [
                    {"target": "german_check", "guard": "iban.startsWith('DE')"},
                    {"target": "review"},
                ]
            },
            "german_check": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {
                    "APPROVE": "review",
                    "CORRECT": {"target": "review", "assign": {"iban": "event.iban"}},
                },
            },
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {"APPROVE": "paid", "REJECT": "rejected"},
            },
            "paid": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }

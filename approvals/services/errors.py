"""What a service refuses with. Views map these to a message, 400, 403 or 409; never a 500."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class WorkflowError(Exception):
    """Base: a refused operation; nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(WorkflowError):
    """The actor may not do this (403, or 404 where existence must not leak)."""


class InvalidInput(WorkflowError):
    """Bad input, with messages per field (400)."""

    def __init__(self, message: str, field_errors: Mapping[str, Sequence[str]] | None = None):
        super().__init__(message)
        self.field_errors = {k: list(v) for k, v in (field_errors or {}).items()}


class Conflict(WorkflowError):
    """Valid input that the current state does not allow (409)."""

    def __init__(
        self, message: str, *, current_state: str = "", accepted_events: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.current_state = current_state
        self.accepted_events = list(accepted_events)


class AlreadyDecided(Conflict):
    """Someone else closed the task first; says who and when."""

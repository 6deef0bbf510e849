"""Automated actions a definition may name (`invoke.src`, `entry`, `exit`).

Definitions refer to actions by name only; the code is registered here, so a definition cannot
smuggle code in. An action takes the instance's context and the step's input and returns a
JSON-serialisable output (stored in the context under the state's name on success), or raises:
any exception is retried by the step's policy, `PermanentError` is not. The
built-in actions are in `approvals/automation/builtin.py`; the runner is
`approvals/automation/runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ActionFunc = Callable[["ActionCall"], Mapping[str, Any] | None]


@dataclass(frozen=True)
class ActionCall:
    instance_id: int
    definition_key: str
    state: str
    context: Mapping[str, Any]
    input: Mapping[str, Any]
    settings: Mapping[str, Any]
    idempotency_key: str
    # The form's sensitive fields: plaintext in `context`, to be masked in what leaves.
    sensitive: frozenset[str] = frozenset()
    # The request's callback steps waiting for a report, each with its task token and where
    # to report (approvals/services/callbacks.py): what a `webhook` hands the receiver.
    callbacks: tuple[Mapping[str, Any], ...] = ()


class PermanentError(Exception):
    """An action's failure that another attempt cannot mend until a person changes something:
    a setting is missing, the target refused the request (a 4xx). The step is not retried; it
    goes to its `onError`, or to an operator's manual review, at once. The message is shown to
    people as it is, so say it in words; `advice` is what to do ("set WEBHOOK_SECRET and
    restart the worker")."""

    def __init__(self, message: str, *, advice: str = "") -> None:
        super().__init__(message)
        self.advice = advice


_registry: dict[str, ActionFunc] = {}


def register_action(name: str) -> Callable[[ActionFunc], ActionFunc]:
    def decorator(func: ActionFunc) -> ActionFunc:
        if name in _registry and _registry[name] is not func:
            raise ValueError(f"action {name!r} is registered twice")
        _registry[name] = func
        return func

    return decorator


def action_names() -> set[str]:
    return set(_registry)


def get_action(name: str) -> ActionFunc:
    return _registry[name]

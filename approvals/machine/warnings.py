"""What a valid definition allows but its admin should confirm before publishing: decisions a
guard can refuse with nothing to fall back on, so that a reviewer's button does nothing.

Reads the config through approvals.machine.config, like every other reader of its shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from approvals.machine.config import task_of, transitions_of, walk_states
from approvals.machine.validation import humanize, step_name

__all__ = ["publish_warnings"]


def publish_warnings(config: Mapping[str, Any]) -> list[str]:
    """One sentence per decision of a step's task whose every arrow has a guard: when none
    holds, the decision is refused and the request stays where it is."""
    warnings = []
    for state in walk_states(config):
        if task_of(state.node) is None:
            continue
        by_event: dict[str, list[str | None]] = {}
        for transition in transitions_of(state.node):
            if transition.trigger == "on":
                by_event.setdefault(transition.event, []).append(transition.guard)
        step = step_name(state.path.split("."), config)
        for event, guards in by_event.items():
            if any(guard is None for guard in guards):
                continue
            named = " or ".join(f"`{guard}`" for guard in guards)
            noun = "guard" if len(guards) == 1 else "guards"
            warnings.append(
                f"In *{step}*, *{humanize(event)}* can be blocked by its {noun} {named} and no "
                f"other arrow takes {event} then"
            )
    return warnings

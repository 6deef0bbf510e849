"""What changes between two versions of a definition: states, transitions, guards, tasks
(roles, SLAs, escalation...), automated steps, the form's fields and the top-level settings,
each as a line an admin reads ("Manager approval: roles manager → manager, director"), and
which states and edges of the diagrams are added, removed or changed (`mark_diagram`
colours them).

Both configs are compared in their canonical form (approvals/machine/validation.py), so two
spellings of one definition have no difference.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from approvals.machine.config import (
    ConfigTransition,
    form_fields,
    form_of,
    meta_of,
    target_path,
    transitions_of,
    walk_states,
)

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
# Top-level keys compared as a whole, with their reader's name.
TOP_LEVEL = {
    "title": "title",
    "description": "description",
    "initial": "first step",
    "segregation": "segregation (four eyes)",
    "retention": "retention",
    "inbox_columns": "inbox columns",
    "settings": "settings",
    "schedule": "schedules",
}
_STATE_PARTS = ("type", "entry", "exit", "initial", "description", "on_complete_start")


@dataclass(frozen=True)
class Change:
    kind: str  # ADDED, REMOVED or CHANGED
    what: str  # "state", "transition", "task", "step", "form field", "definition"
    where: str  # a state path, "a → b", a field name, or a top-level key
    details: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        head = f"{self.what.capitalize()} {self.where} {self.kind}"
        return f"{head}: {'; '.join(self.details)}" if self.details else head


@dataclass
class DefinitionDiff:
    changes: list[Change] = field(default_factory=list)
    # What the diagrams mark: state paths, and (from path, to path) edges.
    states: dict[str, str] = field(default_factory=dict)
    edges: dict[tuple[str, str], str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)


def _show(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "(none)"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _compare(old: Mapping[str, Any], new: Mapping[str, Any], keys: Any = None) -> list[str]:
    """'key: old → new' for each key whose value differs."""
    names = keys if keys is not None else sorted({*old, *new})
    return [
        f"{key} {_show(old.get(key))} → {_show(new.get(key))}"
        for key in names
        if old.get(key) != new.get(key)
    ]


def _edges(config: Mapping[str, Any]) -> dict[tuple[str, str], list[str]]:
    """Each (from, to) edge of the diagram with the transitions drawn on it, as words."""
    edges: dict[tuple[str, str], list[str]] = {}
    for state in walk_states(config):
        for transition in transitions_of(state.node):
            target = target_path(state.path, transition.target) if transition.target else state.path
            edges.setdefault((state.path, target), []).append(_transition_words(transition))
    return edges


def _transition_words(transition: ConfigTransition) -> str:
    trigger = {
        "on": transition.event,
        "after": f"after {transition.delay}",
        "always": "always",
        "invoke.onDone": "when the step succeeds",
        "invoke.onError": "when the step fails",
        "onDone": "when all regions are done",
    }[transition.trigger]
    words = trigger
    if transition.guard:
        words += f" if {transition.guard}"
    if transition.assign:
        words += " setting " + ", ".join(sorted(transition.assign))
    return words


def definition_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> DefinitionDiff:
    """The differences from `old` to `new`, two canonical configs."""
    diff = DefinitionDiff()
    for key, name in TOP_LEVEL.items():
        if old.get(key) != new.get(key):
            diff.changes.append(
                Change(
                    CHANGED, "definition", name, (f"{_show(old.get(key))} → {_show(new.get(key))}",)
                )
            )
    _fields(diff, form_of(old), form_of(new))
    before = {state.path: state.node for state in walk_states(old)}
    after = {state.path: state.node for state in walk_states(new)}
    for path in after.keys() - before.keys():
        diff.states[path] = ADDED
        diff.changes.append(Change(ADDED, "state", path))
    for path in before.keys() - after.keys():
        diff.states[path] = REMOVED
        diff.changes.append(Change(REMOVED, "state", path))
    for path in sorted(before.keys() & after.keys()):
        details = _state_details(before[path], after[path])
        if details:
            diff.states[path] = CHANGED
            diff.changes.append(Change(CHANGED, "state", path, tuple(details)))
    old_edges, new_edges = _edges(old), _edges(new)
    for edge in sorted(new_edges.keys() | old_edges.keys()):
        was, now = old_edges.get(edge), new_edges.get(edge)
        where = f"{edge[0]} → {edge[1]}"
        if was is None:
            diff.edges[edge] = ADDED
            diff.changes.append(Change(ADDED, "transition", where, tuple(now or ())))
        elif now is None:
            diff.edges[edge] = REMOVED
            diff.changes.append(Change(REMOVED, "transition", where, tuple(was)))
        elif was != now:
            diff.edges[edge] = CHANGED
            diff.changes.append(
                Change(CHANGED, "transition", where, (f"{'; '.join(was)} → {'; '.join(now)}",))
            )
    order = {ADDED: 0, CHANGED: 1, REMOVED: 2}
    what = {"definition": 0, "form field": 1, "state": 2, "transition": 3}
    diff.changes.sort(key=lambda c: (what.get(c.what, 9), c.where, order[c.kind]))
    return diff


def _fields(diff: DefinitionDiff, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    was, now = form_fields(old), form_fields(new)
    required_was, required_now = set(old.get("required") or []), set(new.get("required") or [])
    for name in sorted(now.keys() - was.keys()):
        diff.changes.append(Change(ADDED, "form field", name))
    for name in sorted(was.keys() - now.keys()):
        diff.changes.append(Change(REMOVED, "form field", name))
    for name in sorted(was.keys() & now.keys()):
        details = _compare(was[name], now[name])
        if (name in required_was) != (name in required_now):
            details.append("now required" if name in required_now else "no longer required")
        if details:
            diff.changes.append(Change(CHANGED, "form field", name, tuple(details)))


def _step(node: Mapping[str, Any]) -> dict[str, Any]:
    """A state's invoke without its transitions (compared as edges)."""
    invoke = node.get("invoke") or {}
    return {k: v for k, v in invoke.items() if k not in ("onDone", "onError")}


def _state_details(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    details = _compare(old, new, _STATE_PARTS)
    old_task = meta_of(old).get("task") or {}
    new_task = meta_of(new).get("task") or {}
    if old_task and not new_task:
        details.append("no longer a task for people")
    elif new_task and not old_task:
        details.append("now a task for people")
    else:
        details += [f"task {line}" for line in _compare(old_task, new_task)]
    old_meta = {k: v for k, v in meta_of(old).items() if k != "task"}
    new_meta = {k: v for k, v in meta_of(new).items() if k != "task"}
    details += [f"meta {line}" for line in _compare(old_meta, new_meta)]
    old_invoke = {
        k: v for k, v in (old.get("invoke") or {}).items() if k not in ("onDone", "onError")
    }
    new_invoke = {
        k: v for k, v in (new.get("invoke") or {}).items() if k not in ("onDone", "onError")
    }
    details += [f"step {line}" for line in _compare(old_invoke, new_invoke)]
    return details


# ----- the diagrams, marked


_SVG = "http://www.w3.org/2000/svg"


def mark_diagram(svg: str, states: Mapping[str, str], edges: Mapping[tuple[str, str], str]) -> str:
    """A diagram (approvals/machine/diagram.py) with its changed states and edges marked: a
    class `df-added`, `df-removed` or `df-changed` (static/css/diagram.css colours them) and
    the change named in the tooltip, so that the marks read without colour too."""
    ET.register_namespace("", _SVG)
    root = ET.fromstring(svg)
    q = f"{{{_SVG}}}"
    for group in root.iter(f"{q}g"):
        classes = set(group.get("class", "").split())
        path = group.get("data-state")
        if path and path in states and {"sd-state", "sd-container"} & classes:
            kind = states[path]
        elif group.get("data-from") is not None and "sd-edge" in classes:
            kind = edges.get((group.get("data-from", ""), group.get("data-to", "")))
        else:
            continue
        if kind is None:
            continue
        group.set("class", f"{group.get('class', '')} df-{kind}")
        _tell(group, q, kind)
    return ET.tostring(root, encoding="unicode")


def _tell(group: Any, q: str, word: str) -> None:
    title = group.find(f"{q}title")
    if title is not None:
        title.text = f"{title.text or ''} ({word} in this version)"

"""The one reader of a machine config's shape.

What type a state is, which states it holds and at which paths, which transitions it owns
under which trigger, what the parts left out of an ``invoke`` or a task come to: the
statechart, the validation and the diagram all read a config through these functions, so
they cannot come to disagree about what a definition says. The format is described in
docs/definition-format.md.

The readers take any config, also one that fails validation (the admin draws the diagram of
a broken draft): a part of the wrong shape is left out, or read as text or as its default,
and never raises. Saying what is wrong with a shape is validation.py's job.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CALLBACK_SRC",
    "STATE_TYPES",
    "SUBFLOW_PREFIX",
    "ConfigState",
    "ConfigTransition",
    "Retry",
    "SubflowRef",
    "Trigger",
    "as_list",
    "child_states",
    "completion_start_of",
    "context_fields",
    "field_label",
    "form_fields",
    "form_of",
    "form_samples",
    "invoke_of",
    "join_path",
    "meta_of",
    "normalize_transitions",
    "output_of",
    "retry_of",
    "schedules_of",
    "state_type",
    "subflow_of",
    "target_path",
    "task_of",
    "task_rule",
    "transitions_of",
    "walk_states",
]

STATE_TYPES = ("atomic", "final", "parallel", "compound")

# What makes a transition happen, named by the key it is written under. The definition rows
# and the audit trail store these names, so they are data, not just labels.
Trigger = Literal["on", "always", "after", "invoke.onDone", "invoke.onError", "onDone"]


def as_list(value: Any) -> list[Any]:
    """A value the format allows as one item or a list (entry, exit, transitions), as a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def form_of(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The request form's JSON Schema; a definition without one takes any object."""
    form = config.get("form")
    return form if isinstance(form, Mapping) and form else {"type": "object"}


def form_fields(form: Mapping[str, Any]) -> Mapping[str, Any]:
    """The form's fields by name (its JSON Schema `properties`)."""
    properties = form.get("properties")
    return properties if isinstance(properties, Mapping) else {}


SENSITIVE = "x-sensitive"


def sensitive_fields(form: Mapping[str, Any]) -> frozenset[str]:
    """The form's fields marked `x-sensitive: true`: stored encrypted, masked wherever they
    leave the system (approvals/sensitive.py)."""
    return frozenset(
        name
        for name, prop in form_fields(form).items()
        if isinstance(prop, Mapping) and prop.get(SENSITIVE) is True
    )


def field_label(form: Mapping[str, Any], name: str) -> str:
    """A form field as people read it: its `title`, else its name in words."""
    prop = form_fields(form).get(name)
    title = prop.get("title") if isinstance(prop, Mapping) else None
    return title if isinstance(title, str) and title else name.replace("_", " ").capitalize()


# ---------------------------------------------------------------------------------------
# States


def state_type(node: Mapping[str, Any]) -> str:
    """The type of a state node: its ``type``, else compound with ``states``, else atomic."""
    declared = node.get("type")
    if isinstance(declared, str) and declared:
        return declared
    return "compound" if "states" in node else "atomic"


def join_path(parent: str | None, name: Any) -> str:
    """The dotted path of ``name`` inside ``parent``; a top-level name is its own path."""
    return f"{parent}.{name}" if parent else str(name)


def target_path(source: str, target: str) -> str:
    """The path of the state that a transition of the state at ``source`` goes to.

    A target names a sibling of the state that owns the transition, never a path.
    """
    return join_path(source.rpartition(".")[0], target)


@dataclass(frozen=True)
class ConfigState:
    """A state of a config with where it stands: ``fulfillment.inventory.picking``."""

    path: str
    name: str
    parent: str | None
    node: Mapping[str, Any]

    @property
    def type(self) -> str:
        return state_type(self.node)


def child_states(node: Mapping[str, Any], parent: str | None = None) -> list[ConfigState]:
    """The states directly inside ``node``, in the order written.

    ``node`` is a state at path ``parent``, or the whole config (its top-level states) with
    no parent. A child that is not a mapping reads as an empty atomic state.
    """
    states = node.get("states")
    if not isinstance(states, Mapping):
        return []
    return [
        ConfigState(
            path=join_path(parent, name),
            name=str(name),
            parent=parent,
            node=child if isinstance(child, Mapping) else {},
        )
        for name, child in states.items()
    ]


def walk_states(node: Mapping[str, Any], parent: str | None = None) -> Iterator[ConfigState]:
    """Every state below ``node`` (a state at ``parent``, or the whole config), each before
    the states inside it."""
    for state in child_states(node, parent):
        yield state
        yield from walk_states(state.node, state.path)


def meta_of(node: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = node.get("meta")
    return meta if isinstance(meta, Mapping) else {}


# ---------------------------------------------------------------------------------------
# Transitions


@dataclass(frozen=True)
class ConfigTransition:
    """One transition of a state as the config says it, whichever way it is spelled."""

    trigger: Trigger
    event: str  # the event of an `on` transition, else ""
    delay: str  # the delay of an `after` transition as written, else ""
    position: int  # among the transitions of its trigger (and event or delay)
    target: str | None  # a sibling's name; None stays in the state
    guard: str | None
    assign: Mapping[str, str]  # context field -> expression
    description: str


def normalize_transitions(value: Any) -> list[dict[str, Any]]:
    """Any way of writing transitions (a target, a dict, a list of either) as a list of dicts.

    The dicts are copies; an item that is neither a target nor a mapping is left out.
    """
    result = []
    for item in as_list(value):
        if isinstance(item, str):
            result.append({"target": item})
        elif isinstance(item, Mapping):
            result.append(copy.deepcopy(dict(item)))
    return result


def transitions_of(node: Mapping[str, Any]) -> list[ConfigTransition]:
    """Every transition a state owns: on, always, after, invoke.onDone, invoke.onError, onDone,
    and within one trigger in the order written (the first whose guard holds wins)."""
    sources: list[tuple[Trigger, str, str, Any]] = []
    on = node.get("on")
    if isinstance(on, Mapping):
        sources.extend(("on", str(event), "", value) for event, value in on.items())
    sources.append(("always", "", "", node.get("always")))
    after = node.get("after")
    if isinstance(after, Mapping):
        sources.extend(("after", "", str(delay), value) for delay, value in after.items())
    invoke = invoke_of(node)
    if invoke is not None:
        sources.append(("invoke.onDone", "", "", invoke.get("onDone")))
        sources.append(("invoke.onError", "", "", invoke.get("onError")))
    sources.append(("onDone", "", "", node.get("onDone")))
    return [
        _transition(trigger, event, delay, position, item)
        for trigger, event, delay, value in sources
        for position, item in enumerate(normalize_transitions(value))
    ]


def _transition(
    trigger: Trigger, event: str, delay: str, position: int, item: Mapping[str, Any]
) -> ConfigTransition:
    target, guard, assign, description = (
        item.get(key) for key in ("target", "guard", "assign", "description")
    )
    return ConfigTransition(
        trigger=trigger,
        event=event,
        delay=delay,
        position=position,
        target=str(target) if target else None,
        guard=str(guard) if guard else None,
        assign=(
            {str(name): str(source) for name, source in assign.items()}
            if isinstance(assign, Mapping)
            else {}
        ),
        description=str(description) if description else "",
    )


def context_fields(config: Mapping[str, Any]) -> set[str]:
    """The names a guard may read: the request form's fields and those an `assign` sets."""
    properties = form_of(config).get("properties")
    fields = {str(name) for name in properties} if isinstance(properties, Mapping) else set()
    for state in walk_states(config):
        for transition in transitions_of(state.node):
            fields.update(transition.assign)
    return fields


_SAMPLES = {"string": "", "number": 0.5, "integer": 0, "boolean": False, "array": [], "object": {}}


def form_samples(config: Mapping[str, Any]) -> dict[str, Any]:
    """A value of each form field's kind (its default, its first enum value, or one of its
    JSON Schema type), for trying a guard out; fields of no single known kind are left out."""
    properties = form_of(config).get("properties")
    samples: dict[str, Any] = {}
    for name, schema in properties.items() if isinstance(properties, Mapping) else ():
        if not isinstance(schema, Mapping):
            continue
        enum = schema.get("enum")
        if "default" in schema:
            samples[str(name)] = copy.deepcopy(schema["default"])
        elif isinstance(enum, list) and enum:
            samples[str(name)] = copy.deepcopy(enum[0])
        elif isinstance(schema.get("type"), str) and schema["type"] in _SAMPLES:
            samples[str(name)] = copy.deepcopy(_SAMPLES[schema["type"]])
    return samples


# ---------------------------------------------------------------------------------------
# Automated actions and tasks


@dataclass(frozen=True)
class Retry:
    """How a failed invoke is tried again; the defaults are those of a config without retry."""

    max_attempts: int = 3
    backoff: str = "exponential"
    delay: str | int = "PT10S"  # before the first retry: ISO 8601, or whole milliseconds


def invoke_of(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    invoke = node.get("invoke")
    return invoke if isinstance(invoke, Mapping) else None


# `invoke.src` of a step that starts a child request of another workflow, rather than an action.
SUBFLOW_PREFIX = "workflow:"
# `invoke.src` of a step that waits for an outside system to report back with a task token.
CALLBACK_SRC = "callback"


@dataclass(frozen=True)
class SubflowRef:
    """The workflow an invoke starts a child request of: ``workflow:vendor-onboarding`` (its
    published version when the child starts) or ``workflow:vendor-onboarding@3`` (version 3).
    ``version_text`` is what follows ``@`` as written (empty when not pinned)."""

    key: str
    version: int | None
    version_text: str = ""

    @property
    def pinned(self) -> bool:
        return bool(self.version_text)

    def __str__(self) -> str:
        return f"{self.key}@{self.version}" if self.version else self.key


def subflow_of(invoke: Mapping[str, Any] | None) -> SubflowRef | None:
    """The sub-workflow an invoke starts, or None when its src names an action."""
    src = invoke.get("src") if invoke is not None else None
    if not isinstance(src, str) or not src.startswith(SUBFLOW_PREFIX):
        return None
    key, _, version = src[len(SUBFLOW_PREFIX) :].partition("@")
    number = int(version) if version.isdigit() and int(version) > 0 else None
    return SubflowRef(key=key.strip(), version=number, version_text=version)


def output_of(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """A final state's ``meta.output``: what a child request ending there hands its parent,
    output name -> expression over the child's context."""
    output = meta_of(node).get("output")
    return output if isinstance(output, Mapping) else {}


def retry_of(invoke: Mapping[str, Any]) -> Retry:
    retry = invoke.get("retry")
    if not isinstance(retry, Mapping):
        return Retry()
    default = Retry()
    attempts = retry.get("max_attempts")
    backoff = retry.get("backoff")
    delay = retry.get("delay")
    return Retry(
        max_attempts=attempts if _is_whole(attempts) else default.max_attempts,
        backoff=backoff if isinstance(backoff, str) else default.backoff,
        delay=delay if isinstance(delay, str) or _is_whole(delay) else default.delay,
    )


def task_of(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A state's human task (``meta.task``), or None."""
    task = meta_of(node).get("task")
    return task if isinstance(task, Mapping) else None


def task_rule(task: Mapping[str, Any]) -> tuple[str, int]:
    """The task's rule with the quorum it needs: ``("any", 1)`` when left out, ``("all", 1)``,
    ``("everyone", 1)`` (written ``everyone`` or ``{everyone: true}``), ``("quorum", N)``. A
    quorum that is not a whole number (a broken draft) reads as 0."""
    rule = task.get("rule", "any")
    if isinstance(rule, Mapping) and "everyone" in rule:
        return "everyone", 1
    if isinstance(rule, Mapping):
        quorum = rule.get("quorum")
        return "quorum", quorum if _is_whole(quorum) else 0
    return str(rule), 1


def _is_whole(value: Any) -> bool:
    # YAML's true and false are ints to Python, and never a count.
    return isinstance(value, int) and not isinstance(value, bool)


def approval_steps(config: Mapping[str, Any]) -> list[str]:
    """The paths of the states whose task is offered to roles (not the requester's own)."""
    return [
        state.path
        for state in walk_states(config)
        if (task := task_of(state.node)) is not None
        and (task.get("roles") or task.get("roles_from"))
    ]


def default_segregation(config: Mapping[str, Any]) -> str:
    """Four eyes unless said otherwise: a definition with more than one approval step has
    distinct approvers by default."""
    return "distinct_approvers" if len(approval_steps(config)) > 1 else "none"


def segregation_of(config: Mapping[str, Any]) -> str:
    """`segregation` as written, else the default for this definition."""
    written = config.get("segregation")
    return written if isinstance(written, str) else default_segregation(config)


# ---------------------------------------------------------------------------------------
# Start triggers


def schedules_of(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The definition's `schedule` entries (cron, tz, context, catch_up, name, run_as), the
    mappings among them; each entry's name is its own or ``schedule-<n>`` (from 1)."""
    written = config.get("schedule")
    entries = [e for e in written if isinstance(e, Mapping)] if isinstance(written, list) else []
    return [
        {**entry, "name": entry.get("name") or f"schedule-{position}"}
        for position, entry in enumerate(entries, start=1)
    ]


def completion_start_of(node: Mapping[str, Any]) -> tuple[SubflowRef, Mapping[str, Any]] | None:
    """A final state's `on_complete_start: {workflow, input}`: the workflow (``key`` or
    ``key@version``) a request ending there starts, and its input (form field -> expression
    over the ended request's context); None when the state has none."""
    trigger = node.get("on_complete_start")
    if not isinstance(trigger, Mapping) or not isinstance(trigger.get("workflow"), str):
        return None
    ref = subflow_of({"src": SUBFLOW_PREFIX + trigger["workflow"]})
    assert ref is not None
    given = trigger.get("input")
    return ref, given if isinstance(given, Mapping) else {}

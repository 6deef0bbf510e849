"""Checking a definition (an XState-style machine config) and putting it in canonical form.

Every message says in words what is wrong and where, then gives the dotted path of the place
from the top of the file in parentheses, so an admin can find it in a file or in the admin's
inlines: ``Step *Review*: the *Reject* arrow points to *nowhere*, which does not exist
(states.review.on.REJECT[0].target)``. Names are set off with asterisks. All problems are
reported in one pass, each once: a part too broken to check further is skipped, and the
whole-machine checks (reachability, completion) still run around it.

The format is described in docs/definition-format.md.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonschema

from approvals.machine import expressions
from approvals.machine.artifacts import problems as artifact_problems
from approvals.machine.calendar import calendar_problems
from approvals.machine.config import (
    CALLBACK_SRC,
    SENSITIVE,
    STATE_TYPES,
    SUBFLOW_PREFIX,
    SubflowRef,
    Trigger,
    as_list,
    completion_start_of,
    default_segregation,
    form_fields,
    form_of,
    invoke_of,
    join_path,
    normalize_transitions,
    schedules_of,
    segregation_of,
    sensitive_fields,
    state_type,
    subflow_of,
    target_path,
    task_of,
    transitions_of,
    walk_states,
)
from approvals.machine.durations import (
    DurationError,
    is_delay_name,
    parse_duration,
    parse_period,
)
from approvals.machine.expressions import ExpressionError
from approvals.machine.loader import DefinitionError, nesting_problem
from approvals.machine.schedules import cron_problem, tz_problem
from approvals.machine.titles import REQUESTER, placeholders, stray_brace

__all__ = ["ChildWorkflow", "canonical_config", "problem_text", "validate_config"]

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
STATE_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EVENT_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
FIELD_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_EVENT_PREFIXES = ("done.", "error.", "xstate.")

# Sizes of the columns the definitions are stored in (approvals.models); a longer value
# must be refused here with a message, not by the database with an exception.
MAX_ID = 100
MAX_TITLE = 200
MAX_STATE_NAME = 100
MAX_STATE_PATH = 200
MAX_EVENT_NAME = 100
MAX_DELAY = 50
MAX_RETRY_ATTEMPTS = 20

TOP_KEYS = (
    "id",
    "title",
    "description",
    "initial",
    "form",
    "inbox_columns",
    "segregation",
    "retention",
    "settings",
    "states",
    "scenarios",
    "schedule",
)
SCHEDULE_KEYS = ("name", "cron", "tz", "context", "catch_up", "run_as")
MAX_SCHEDULE_NAME = 100
MAX_USERNAME = 150
COMPLETION_START_KEYS = ("workflow", "input")
SEGREGATIONS = ("distinct_approvers", "none")
SCENARIO_KEYS = (
    "name",
    "description",
    "context",
    "start_at",
    "outputs",
    "failures",
    "steps",
    "expect",
)
SCENARIO_STEP_KEYS = ("event", "decide", "advance", "as_role", "data")
EXPECT_KEYS = ("state", "status", "context", "tasks")
EXPECT_TASK_KEYS = ("state", "roles", "level", "requester")
# What a request's status may be (approvals.models.InstanceStatus).
INSTANCE_STATUSES = ("active", "completed", "rejected", "cancelled", "failed", "withdrawn")
# A scenario's decision taken by the person who asked (a `requester: true` task).
REQUESTER_ROLE = "requester"
MAX_SCENARIO_NAME = 200
# The inbox shows at most this many of a workflow's fields as columns.
MAX_INBOX_COLUMNS = 5
STATE_KEYS = (
    "type",
    "description",
    "initial",
    "entry",
    "exit",
    "invoke",
    "meta",
    "on",
    "always",
    "after",
    "onDone",
    "states",
    "on_complete_start",
)
# A transition's description is read in a diagram's label and inside a sentence.
MAX_TRANSITION_DESCRIPTION = 120
TRANSITION_KEYS = ("target", "guard", "assign", "description")
INVOKE_KEYS = (
    "src",
    "input",
    "timeout",
    "heartbeat",
    "foreach",
    "limit",
    "retry",
    "cancel_children",
    "onDone",
    "onError",
)
RETRY_KEYS = ("max_attempts", "backoff", "delay")
TASK_KEYS = (
    "roles",
    "roles_from",
    "requester",
    "rule",
    "sla",
    "sla_from",
    "remind",
    "escalate_to",
    "forbid_requester",
    "label",
    "distinct_from",
    "signature",
    "assignee",
    "manager_of",
    "skip_levels",
)
MAX_SIGNATURE_MEANING = 200
MANAGER_OF_REQUESTER = "manager_of_requester"
MAX_SKIP_LEVELS = 5
BACKOFFS = ("exponential", "fixed")

# Names from XState (v4 and v5) and from other workflow tools that people will reach for.
_KEY_HINTS = {
    "cond": "XState v4's cond is called guard here",
    "actions": "transitions have no actions here; use assign, or entry/exit on a state",
    "transitions": "transitions go under on",
    "events": "transitions go under on",
    "context": "the context is the request form's data; declare fields in form",
    "id": "state ids are not supported; states are named by their key",
    "tags": "tags are not supported; use meta",
    "history": "history states are not supported",
    "reenter": "reenter is not supported",
}

# Which keys each kind of state may have, besides type and description.
_ALLOWED_BY_KIND = {
    "atomic": {"entry", "exit", "invoke", "meta", "on", "always", "after"},
    "final": {"entry", "exit", "meta", "on_complete_start"},
    "parallel": {"entry", "exit", "meta", "on", "after", "onDone", "states"},
    "region": {"entry", "exit", "meta", "initial", "states"},
}


# ---------------------------------------------------------------------------------------
# Messages: words first, the path after


def problem_text(where: str, message: str, config: Any = None, *, place: str | None = None) -> str:
    """A problem as the admin reads it: the place in words (``Step *Review*, the *Approve*
    arrow``, or ``place`` when the message names the part itself), the message, then the
    dotted path. ``config`` gives the steps' labels (meta.label)."""
    if not where:
        return message
    words = place if place is not None else place_words(where, config)
    return f"{words}: {message} ({where})"


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_PLACES = {
    "top level": "The definition",
    "id": "The definition's id",
    "title": "The definition's title",
    "description": "The definition's description",
    "initial": "The definition's initial step",
    "inbox_columns": "The inbox columns",
    "states": "The steps",
    "scenarios": "The scenarios",
    "schedule": "The schedules",
}
_STATE_PARTS = {
    "type": "its type",
    "description": "its description",
    "initial": "its initial step",
    "states": "its steps",
    "entry": "its entry actions",
    "exit": "its exit actions",
    "invoke": "its action",
    "meta": "its meta",
    "on": "its arrows",
    "after": "its timers",
    "on_complete_start": "the workflow it starts when a request ends here",
}
_TASK_PARTS = {
    "roles": "its task's roles",
    "requester": "its task's requester",
    "rule": "its task's rule",
    "sla": "its task's SLA",
    "remind": "its task's reminders",
    "escalate_to": "its task's escalation",
    "forbid_requester": "its task's forbid_requester",
    "label": "its task's label",
}
_TRANSITION = re.compile(
    r"(?P<kind>\.on\.(?P<event>[^.\[]+)|\.always|\.onDone|\.invoke\.onDone|\.invoke\.onError"
    r"|\.after\.(?P<delay>.+?))"
    r"(?P<index>\[\d+\])?(?P<key>\.(?:target|guard|assign|description)(?:\..*)?)?$"
)


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def humanize(name: str) -> str:
    """A state or event name as words: ``manager_review`` Manager review, ``APPROVE`` Approve."""
    words = name.replace("_", " ").strip()
    if words.isupper():
        words = words.lower()
    return words[:1].upper() + words[1:]


def step_name(path: list[str], config: Any) -> str:
    """A step's name for messages: its meta.label, else its name in words."""
    node: Any = config.get("states") if isinstance(config, Mapping) else None
    for index, name in enumerate(path):
        node = node.get(name) if isinstance(node, Mapping) else None
        if index < len(path) - 1:
            node = node.get("states") if isinstance(node, Mapping) else None
    meta = node.get("meta") if isinstance(node, Mapping) else None
    label = meta.get("label") if isinstance(meta, Mapping) else None
    return label if isinstance(label, str) and label.strip() else humanize(path[-1])


def _split_state_path(where: str) -> tuple[list[str], str] | None:
    """``states.a.states.b.on.X`` as (["a", "b"], ".on.X"); None outside the states."""
    if not where.startswith("states."):
        return None
    path: list[str] = []
    rest = where[len("states") :]
    while rest.startswith("."):
        match = _NAME.match(rest, 1)
        if match is None:
            break
        path.append(match.group())
        rest = rest[match.end() :]
        if not rest.startswith(".states."):
            break
        rest = rest[len(".states") :]
    return (path, rest) if path else None


def arrow_words(tail: str) -> str | None:
    """The arrow a path's tail points at (``.on.REJECT[0]``: the *Reject* arrow), or None."""
    match = _TRANSITION.match(tail)
    if match is None:
        return None
    kind = match.group("kind")
    if match.group("event"):
        arrow = f"the *{humanize(match.group('event'))}* arrow"
    elif match.group("delay"):
        arrow = f"the arrow after *{match.group('delay')}*"
    elif kind == ".always":
        arrow = "the *always* arrow"
    elif kind == ".onDone":
        arrow = "the arrow taken when every region is done"
    elif kind == ".invoke.onDone":
        arrow = "the arrow taken when its action succeeds"
    else:
        arrow = "the arrow taken when its action fails"
    index = int((match.group("index") or "[0]")[1:-1])
    if index:
        ordinal = _ORDINALS[index] if index < len(_ORDINALS) else f"no. {index + 1}"
        arrow = f"the {ordinal} {arrow[len('the ') :]}"
    key = (match.group("key") or "").lstrip(".").split(".")[0]
    return f"{arrow}'s {key}" if key in ("guard", "assign", "description") else arrow


def place_words(where: str, config: Any = None) -> str:
    """Where a path points, in words: ``states.review.meta.task.sla`` is
    ``Step *Review*, its task's SLA``."""
    split = _split_state_path(where)
    if split is None:
        head = re.split(r"[.\[]", where, maxsplit=1)[0]
        if head == "form":
            return "The request form"
        if where.startswith("settings.calendar"):
            return "The business calendar"
        if head == "settings":
            return "The settings"
        return _TOP_PLACES.get(head, where)
    path, tail = split
    step = f"Step *{step_name(path, config)}*"
    if not tail:
        return step
    arrow = arrow_words(tail)
    if arrow is not None:
        return f"{step}, {arrow}"
    if tail.startswith(".meta.outcome"):
        return f"{step}, its outcome"
    if tail.startswith(".meta.task"):
        key = re.split(r"[.\[]", tail[len(".meta.task.") :], maxsplit=1)[0]
        return f"{step}, {_TASK_PARTS.get(key, 'its task')}"
    key = re.split(r"[.\[]", tail[1:], maxsplit=1)[0]
    part = _STATE_PARTS.get(key)
    return f"{step}, {part}" if part else step


# ---------------------------------------------------------------------------------------
# Validation


@dataclass
class _Node:
    """A state as the graph checks see it."""

    address: str  # e.g. fulfillment.inventory.picking
    where: str  # e.g. states.fulfillment.states.inventory.states.picking
    level: str  # top | region | leaf
    kind: str
    config: Mapping[str, Any]
    parallel: str | None = None  # for regions and leaves
    region: str | None = None  # for leaves
    children: list[str] = field(default_factory=list)
    initial_child: str | None = None
    edges: set[str] = field(default_factory=set)
    # Some of its transitions could not be read: it may lead anywhere in its scope.
    opaque: bool = False
    # Some of its targets are unknown: it is not blamed for having no way to a final state.
    unsure: bool = False


@dataclass
class _Transition:
    where: str
    target: str | None
    guarded: bool
    valid: bool = True
    # For an unknown target, the state it was probably meant to name: the graph checks follow
    # it, so that a typo is one problem, not also the states behind it.
    guess: str | None = None


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _suggest(word: str, candidates: Iterable[str]) -> str:
    match = _closest(word, candidates)
    return f" (did you mean '{match}'?)" if match else ""


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    match = _closest(word, candidates)
    return f"; did you mean *{match}*?" if match else ""


def _ordinal(index: int) -> str:
    return _ORDINALS[index] if index < len(_ORDINALS) else f"#{index + 1}"


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class ChildWorkflow:
    """What validation knows of a workflow that a sub-workflow step starts: its form and the
    sub-workflows it starts in turn (for circles)."""

    key: str
    version: int
    form: Mapping[str, Any]
    subflows: tuple[SubflowRef, ...] = ()


# Looks a sub-workflow step's workflow up: None when it has no such published (or, pinned,
# published or retired) version.
WorkflowLookup = Callable[[SubflowRef], ChildWorkflow | None]

# What a foreach's input expressions read besides the context: the item and its position.
FOREACH_NAMES = ("item", "index")

_JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


def _json_types(schema: Any) -> set[str]:
    """The JSON types a field's schema declares (integer counts as a number too)."""
    if not isinstance(schema, Mapping):
        return set()
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or ())
    types = {t for t in types if t in _JSON_TYPES}
    if "integer" in types:
        types.add("number")
    if "number" in types:
        types.add("integer")
    return types


class _Validator:
    def __init__(
        self,
        roles: Collection[str] | None,
        actions: Collection[str] | None,
        workflows: WorkflowLookup | None = None,
    ) -> None:
        self.errors: list[str] = []
        self.workflows = workflows
        self.roles = set(roles) if roles is not None else None
        self.actions = set(actions) if actions is not None else None
        self.config: Any = None
        self.nodes: dict[str, _Node] = {}
        # States that could not be read (a bad name, not a mapping...): where they lead is
        # unknown, so the reachability checks neither blame what may lie behind them nor the
        # states that lead to them.
        self.opaque: set[str] = set()
        # What the transitions of the state being checked turned out to be (check_state).
        self.unreadable = False
        self.unsure = False
        # Roles that scenarios decide as and no step is offered to: role -> (where, place).
        self.unoffered: dict[str, list[tuple[str, str]]] = {}

    def error(self, where: str, message: str, *, place: str | None = None) -> None:
        text = problem_text(where, message, self.config, place=place)
        if text not in self.errors:
            self.errors.append(text)

    # -- small typed checks ------------------------------------------------------------

    def expect_str(self, where: str, value: Any, *, allow_empty: bool = False) -> bool:
        if not isinstance(value, str):
            self.error(where, f"expected a string, got {_type_name(value)}")
            return False
        if not allow_empty and not value.strip():
            self.error(where, "must not be empty")
            return False
        return True

    def check_transition_description(self, where: str, value: Any) -> bool:
        """Plain words that people read in place of the guard ("the amount is 10,000 or
        more"): one line, short enough for a diagram's label and a sentence of history."""
        if not self.expect_str(where, value, allow_empty=True):
            return False
        if len(value) > MAX_TRANSITION_DESCRIPTION:
            self.error(
                where,
                f"is {len(value)} characters long; at most {MAX_TRANSITION_DESCRIPTION} "
                "(say the condition in a few words)",
            )
            return False
        if "\n" in value.strip():
            self.error(where, "must be one line")
            return False
        return True

    def expect_mapping(self, where: str, value: Any) -> bool:
        if not isinstance(value, Mapping):
            self.error(where, f"expected a mapping, got {_type_name(value)}")
            return False
        return True

    def expect_bool(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.error(where, f"expected true or false, got {_type_name(value)}")
            return False
        return True

    def unknown_keys(self, where: str, mapping: Mapping[Any, Any], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in mapping:
            if key in allowed:
                continue
            if not isinstance(key, str):
                self.error(where, f"unexpected key {key!r}")
                continue
            hint = _KEY_HINTS.get(key)
            suffix = f" ({hint})" if hint else _suggest(key, allowed)
            self.error(where, f"unknown key '{key}'{suffix}")

    def check_expression(self, where: str, source: Any) -> bool:
        if not isinstance(source, str):
            self.error(where, f"expected an expression string, got {_type_name(source)}")
            return False
        try:
            expressions.check_expression(source)
        except ExpressionError as error:
            self.error(where, str(error))
            return False
        return True

    def check_duration(self, where: str, value: Any) -> Any:
        try:
            return parse_duration(value)
        except DurationError as error:
            self.error(where, str(error))
            return None

    def check_names(self, where: str, value: Any, known: set[str] | None, what: str) -> list[str]:
        """A non-empty list of distinct names, checked against ``known`` when given."""
        if not isinstance(value, list):
            self.error(where, f"expected a list of {what} names, got {_type_name(value)}")
            return []
        if not value:
            self.error(where, f"expected at least one {what}")
            return []
        names = []
        for index, name in enumerate(value):
            item = f"{where}[{index}]"
            if not self.expect_str(item, name):
                continue
            if name in names:
                self.error(item, f"{what} '{name}' is listed twice")
                continue
            names.append(name)
            if known is not None and name not in known:
                self.error(where, f"the {what} *{name}* does not exist{_did_you_mean(name, known)}")
        return names

    def check_action(self, where: str, name: Any) -> None:
        if not self.expect_str(where, name):
            return
        if self.actions is not None and name not in self.actions:
            self.error(
                where,
                f"the action *{name}* does not exist{_did_you_mean(name, self.actions)}",
            )

    def check_callback(self, where: str, invoke: Mapping[str, Any]) -> None:
        """`src: callback`: how long to wait for the report (`timeout`, required) and, where
        the outside system must show it is alive meanwhile, how often (`heartbeat`)."""
        if "timeout" not in invoke:
            self.error(
                where,
                "a callback step needs a timeout: how long it waits for the outside system's "
                "report before its retry or onError (timeout: PT1H)",
            )
            return
        timeout = self.check_duration(f"{where}.timeout", invoke["timeout"])
        if "heartbeat" in invoke:
            heartbeat = self.check_duration(f"{where}.heartbeat", invoke["heartbeat"])
            if timeout is not None and heartbeat is not None and heartbeat >= timeout:
                self.error(
                    f"{where}.heartbeat",
                    f"the heartbeat ({invoke['heartbeat']}) must be shorter than the timeout "
                    f"({invoke['timeout']}), or it is never missed",
                )

    # -- sub-workflows ------------------------------------------------------------------

    def check_subflow(self, where: str, invoke: Mapping[str, Any], ref: SubflowRef) -> None:
        """`src: "workflow:<key>[@<version>]"`: the key's shape, and where the installation's
        workflows are known (`self.workflows`), that it can be started with this input."""
        src_where = f"{where}.src"
        if not ref.key or not ID_PATTERN.fullmatch(ref.key):
            self.error(
                src_where,
                f"'{invoke['src']}' does not name a workflow: write "
                f"{SUBFLOW_PREFIX}<key>, or {SUBFLOW_PREFIX}<key>@<version> for one version",
            )
            return
        if ref.pinned and ref.version is None:
            self.error(
                src_where,
                f"the version after '@' must be a whole number from 1, not '{ref.version_text}'",
            )
            return
        if "retry" in invoke:
            self.error(
                f"{where}.retry",
                "a sub-workflow is started once and has no retry (its onError says what then)",
            )
        for key in ("onDone", "onError"):
            if key not in invoke:
                self.error(
                    where,
                    f"a sub-workflow needs {key}: where this request goes when the child "
                    + ("is approved" if key == "onDone" else "is rejected, cancelled or fails"),
                )
        given = invoke.get("input")
        given = given if isinstance(given, Mapping) else {}
        for name, source in given.items():
            self.check_expression(f"{where}.input.{name}", source)
        self.check_foreach(where, invoke)
        if ref.key == self.config.get("id"):
            self.error(src_where, f"the workflow *{ref.key}* cannot start a request of itself")
            return
        if self.workflows is None:
            return
        child = self.workflows(ref)
        if child is None:
            self.error(
                src_where,
                f"there is no published workflow *{ref.key}*"
                if ref.version is None
                else f"the workflow *{ref.key}* has no version {ref.version} that is published "
                "or retired",
            )
            return
        self.check_child_input(where, given, child)
        circle = self.subflow_circle(ref)
        if circle:
            self.error(
                src_where,
                "sub-workflows start each other in a circle: " + " → ".join(circle),
            )

    def check_foreach(self, where: str, invoke: Mapping[str, Any]) -> None:
        """`foreach: <context field>` holding a list, `limit: N` children running at once."""
        if "limit" in invoke:
            limit = invoke["limit"]
            if "foreach" not in invoke:
                self.error(f"{where}.limit", "limit is for foreach (how many children at once)")
            elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                self.error(f"{where}.limit", f"expected a whole number from 1, got {limit!r}")
        if "foreach" not in invoke:
            return
        field_name = invoke["foreach"]
        if not isinstance(field_name, str) or not FIELD_NAME_PATTERN.fullmatch(field_name):
            self.error(
                f"{where}.foreach",
                f"expected the name of a context field that holds a list, got {field_name!r}",
            )
            return
        declared = _json_types(form_fields(form_of(self.config)).get(field_name))
        if declared and "array" not in declared:
            self.error(
                f"{where}.foreach",
                f"*{field_name}* is {' or '.join(sorted(declared))} in the form, not a list",
            )

    def check_child_input(self, where: str, given: Mapping[str, Any], child: ChildWorkflow) -> None:
        fields = form_fields(child.form)
        if fields and child.form.get("additionalProperties", False) is False:
            for name in given:
                if name not in fields:
                    self.error(
                        f"{where}.input",
                        f"*{name}* is not a field of the form of *{child.key}*"
                        f"{_did_you_mean(str(name), fields)}",
                    )
        required = child.form.get("required")
        for name in required if isinstance(required, list) else ():
            field_schema = fields.get(name)
            has_default = isinstance(field_schema, Mapping) and "default" in field_schema
            if name not in given and not has_default:
                self.error(
                    f"{where}.input",
                    f"the form of *{child.key}* requires *{name}*; give it here",
                )
        parent_fields = form_fields(form_of(self.config))
        for name, source in given.items():
            if not isinstance(source, str) or not FIELD_NAME_PATTERN.fullmatch(source.strip()):
                continue
            if source.strip() in FOREACH_NAMES:
                continue
            mine, theirs = parent_fields.get(source.strip()), fields.get(name)
            ours = _json_types(mine)
            wanted = _json_types(theirs)
            if ours and wanted and not ours & wanted:
                self.error(
                    f"{where}.input.{name}",
                    f"*{source.strip()}* is {' or '.join(sorted(ours))} here, but *{name}* of "
                    f"*{child.key}* takes {' or '.join(sorted(wanted))}",
                )

    def subflow_circle(self, start: SubflowRef) -> list[str]:
        """The chain of workflows from this one back to itself through `start`, if any."""
        assert self.workflows is not None
        own = str(self.config.get("id"))
        seen: set[str] = set()
        stack: list[tuple[SubflowRef, list[str]]] = [(start, [own, start.key])]
        while stack:
            ref, chain = stack.pop()
            child = self.workflows(ref)
            if child is None or str(ref) in seen:
                continue
            seen.add(str(ref))
            for grandchild in child.subflows:
                if grandchild.key == own:
                    return [*chain, own]
                stack.append((grandchild, [*chain, grandchild.key]))
        return []

    # -- top level ----------------------------------------------------------------------

    def run(self, config: Any) -> list[str]:
        self.config = config
        if not isinstance(config, Mapping):
            self.error("", f"a definition must be a mapping, got {_type_name(config)}")
            return self.errors
        self.unknown_keys("top level", config, TOP_KEYS)
        for key in ("id", "title", "initial", "states"):
            if key not in config:
                self.error("top level", f"missing required key '{key}'")
        if "id" in config and self.expect_str("id", config["id"]):
            identifier = config["id"]
            if not ID_PATTERN.fullmatch(identifier):
                self.error(
                    "id",
                    f"'{identifier}' is not a valid id: use lowercase letters, digits, "
                    "'-' and '_', starting with a letter or digit (like 'purchase-order')",
                )
            elif len(identifier) > MAX_ID:
                self.error("id", f"longer than {MAX_ID} characters")
        title = config.get("title")
        if "title" in config and self.expect_str("title", title) and len(title) > MAX_TITLE:
            self.error("title", f"longer than {MAX_TITLE} characters")
        if "description" in config:
            self.expect_str("description", config["description"], allow_empty=True)
        if "form" in config:
            self.check_form(config["form"])
        fields = set(form_fields(form_of(config)))
        hidden = sensitive_fields(form_of(config))
        if isinstance(title, str):
            self.check_title_template(title, fields)
            if "title" in hidden:
                self.error(
                    "form.properties.title.x-sensitive",
                    "the form's `title` field names the request in lists, e-mails and "
                    "notifications, so it cannot be sensitive",
                )
            for name in sorted(hidden & set(placeholders(title))):
                self.error(
                    "title",
                    f"placeholder '{{{name}}}' is a sensitive field (x-sensitive): a title is "
                    "shown in lists, e-mails and notifications, so it cannot hold one",
                )
        if "inbox_columns" in config:
            self.check_inbox_columns(config["inbox_columns"], fields)
            columns = config["inbox_columns"] if isinstance(config["inbox_columns"], list) else []
            for name in sorted(hidden & {c for c in columns if isinstance(c, str)}):
                self.error(
                    "inbox_columns",
                    f"'{name}' is a sensitive field (x-sensitive): it is stored encrypted, so the "
                    "inbox cannot show, sort or filter by it",
                )
        if "segregation" in config and config["segregation"] not in SEGREGATIONS:
            self.error(
                "segregation",
                f"expected {' or '.join(SEGREGATIONS)}, got {config['segregation']!r}",
            )
        if "retention" in config:
            try:
                parse_period(config["retention"])
            except DurationError as exc:
                self.error("retention", str(exc))
        if "settings" in config and self.expect_mapping("settings", config["settings"]):
            for key in config["settings"]:
                if not isinstance(key, str):
                    self.error("settings", f"keys must be text, got {key!r}")
            for key, verb in (("scenarios", "go"), ("retention", "goes")):
                if key in config["settings"]:
                    self.error(
                        f"settings.{key}",
                        f"{key} {verb} at the top level of the definition, not under settings",
                    )
            if "calendar" in config["settings"]:
                for key, message in calendar_problems(config["settings"]["calendar"]):
                    self.error(f"settings.calendar{'.' + key if key else ''}", message)

        states = config.get("states")
        top_names: set[str] = set()
        if "states" in config and self.expect_mapping("states", states):
            if not states:
                self.error("states", "a definition needs at least one state")
            top_names = {name for name in states if isinstance(name, str)}
            self.check_states(states, "states", level="top", scope=top_names)

        initial = config.get("initial")
        if (
            "initial" in config
            and self.expect_str("initial", initial)
            and top_names
            and initial not in top_names
        ):
            self.error(
                "initial",
                f"the first step *{initial}* does not exist{_did_you_mean(initial, top_names)}",
            )
            initial = _closest(initial, top_names)

        if self.nodes and isinstance(initial, str) and initial in self.nodes:
            self.check_graph(initial)
        self.check_distinct_from()
        if "scenarios" in config:
            self.check_scenarios(config["scenarios"])
        if "schedule" in config:
            self.check_schedules(config["schedule"])
        return self.errors

    # -- start triggers -----------------------------------------------------------------

    def check_schedules(self, schedules: Any) -> None:
        """`schedule: [{cron, tz, context, catch_up, name, run_as}]`: each entry's cron and
        time zone parse, names are distinct (a schedule's ticks are counted by its name)."""
        if not isinstance(schedules, list):
            self.error("schedule", f"expected a list of schedules, got {_type_name(schedules)}")
            return
        names: set[str] = set()
        for index, entry in enumerate(schedules):
            where = f"schedule[{index}]"
            if not self.expect_mapping(where, entry):
                continue
            self.unknown_keys(where, entry, SCHEDULE_KEYS)
            for key in ("cron", "tz"):
                if key not in entry:
                    self.error(where, f"missing required key '{key}'")
            if "cron" in entry and (problem := cron_problem(entry["cron"])):
                self.error(f"{where}.cron", problem)
            if "tz" in entry and (problem := tz_problem(entry["tz"])):
                self.error(f"{where}.tz", problem)
            if "context" in entry:
                self.expect_mapping(f"{where}.context", entry["context"])
            if "catch_up" in entry:
                self.expect_bool(f"{where}.catch_up", entry["catch_up"])
            run_as = entry.get("run_as", "")
            if self.expect_str(f"{where}.run_as", run_as, allow_empty=True) and (
                len(run_as) > MAX_USERNAME
            ):
                self.error(f"{where}.run_as", f"longer than {MAX_USERNAME} characters")
            name = entry.get("name", f"schedule-{index + 1}")
            if "name" in entry and not (
                isinstance(name, str)
                and ID_PATTERN.fullmatch(name)
                and len(name) <= MAX_SCHEDULE_NAME
            ):
                self.error(
                    f"{where}.name",
                    f"{name!r} is not a valid name: lowercase letters, digits, '-' and '_' "
                    f"(at most {MAX_SCHEDULE_NAME})",
                )
                continue
            if name in names:
                self.error(f"{where}.name", f"another schedule is named '{name}'")
            names.add(str(name))

    def check_completion_start(self, where: str, trigger: Any) -> None:
        """`on_complete_start: {workflow: <key>[@<version>], input: {field: expression}}` on
        a final state; where the installation's workflows are known, the input fits the
        started workflow's form as a sub-workflow's does."""
        if not self.expect_mapping(where, trigger):
            return
        self.unknown_keys(where, trigger, COMPLETION_START_KEYS)
        if "workflow" not in trigger:
            self.error(where, "missing required key 'workflow' (the workflow to start)")
            return
        if not self.expect_str(f"{where}.workflow", trigger["workflow"]):
            return
        given = trigger.get("input", {})
        if not self.expect_mapping(f"{where}.input", given):
            given = {}
        for name, source in given.items():
            if not isinstance(name, str):
                self.error(f"{where}.input", f"keys must be text, got {name!r}")
                continue
            self.check_expression(f"{where}.input.{name}", source)
        found = completion_start_of({"on_complete_start": trigger})
        assert found is not None
        ref = found[0]
        if not ref.key or not ID_PATTERN.fullmatch(ref.key) or (ref.pinned and ref.version is None):
            self.error(
                f"{where}.workflow",
                f"'{trigger['workflow']}' does not name a workflow: write its key, or "
                "<key>@<version> for one version",
            )
            return
        if ref.key == self.config.get("id"):
            self.error(f"{where}.workflow", f"the workflow *{ref.key}* cannot start itself")
            return
        if self.workflows is None:
            return
        started = self.workflows(ref)
        if started is None:
            self.error(
                f"{where}.workflow",
                f"there is no published workflow *{ref.key}*"
                if ref.version is None
                else f"the workflow *{ref.key}* has no version {ref.version} that is published "
                "or retired",
            )
            return
        self.check_child_input(where, given, started)

    def check_distinct_from(self) -> None:
        """`distinct_from` names other steps of the definition that people decide."""
        steps = {
            address
            for address, node in self.nodes.items()
            if isinstance(task := task_of(node.config), Mapping)
            and (task.get("roles") or task.get("roles_from"))
        }
        for address, node in self.nodes.items():
            task = task_of(node.config)
            if not isinstance(task, Mapping) or "distinct_from" not in task:
                continue
            where = f"{node.where}.meta.task.distinct_from"
            others = steps - {address}
            for name in self.check_names(where, task["distinct_from"], None, "step"):
                if name == address:
                    self.error(where, f"a step cannot be distinct from itself (*{name}*)")
                elif name not in others:
                    self.error(
                        where,
                        f"*{name}* is not a step people decide{_did_you_mean(name, others)}",
                    )

    def check_title_template(self, title: str, fields: set[str]) -> None:
        if stray_brace(title):
            self.error(
                "title",
                "a brace that is not part of a placeholder: write placeholders as "
                "{field}, a field of the start form (form.properties), or {requester}",
            )
        for name in placeholders(title):
            if name != REQUESTER and name not in fields:
                self.error(
                    "title",
                    f"placeholder '{{{name}}}' is not a field of the start form "
                    f"(form.properties){_suggest(name, fields | {REQUESTER})}",
                )

    def check_inbox_columns(self, columns: Any, fields: set[str]) -> None:
        names = self.check_names("inbox_columns", columns, fields, "form field")
        if len(names) > MAX_INBOX_COLUMNS:
            self.error("inbox_columns", f"at most {MAX_INBOX_COLUMNS} columns")

    # -- scenarios ------------------------------------------------------------------------

    def check_scenarios(self, scenarios: Any) -> None:
        """The shapes of the definition's scenarios (approvals/machine/scenarios.py runs them):
        each names a start context, steps and what to expect, with states, events and roles
        that the definition has."""
        if not isinstance(scenarios, list):
            self.error("scenarios", f"expected a list of scenarios, got {_type_name(scenarios)}")
            return
        states = {s.path for s in walk_states(self.config)}
        events = {
            t.event for s in walk_states(self.config) for t in transitions_of(s.node) if t.event
        }
        names: set[str] = set()
        self.unoffered = {}
        for index, scenario in enumerate(scenarios):
            where = f"scenarios[{index}]"
            if not self.expect_mapping(where, scenario):
                continue
            name = scenario.get("name")
            place = (
                f"The scenario *{name}*"
                if isinstance(name, str) and name.strip()
                else (f"The {_ordinal(index)} scenario")
            )
            self.unknown_keys(where, scenario, SCENARIO_KEYS)
            if "name" not in scenario:
                self.error(where, "missing required key 'name'", place=place)
            elif self.expect_str(f"{where}.name", name):
                if len(name) > MAX_SCENARIO_NAME:
                    self.error(
                        f"{where}.name", f"longer than {MAX_SCENARIO_NAME} characters", place=place
                    )
                if name in names:
                    self.error(f"{where}.name", f"the name *{name}* is used twice", place=place)
                names.add(name)
            if "context" in scenario:
                self.expect_mapping(f"{where}.context", scenario["context"])
            if "start_at" in scenario:
                self.check_instant(f"{where}.start_at", scenario["start_at"], place)
            if "outputs" in scenario:
                self.check_outputs(f"{where}.outputs", scenario["outputs"], states, place)
            if "failures" in scenario:
                self.check_outputs(
                    f"{where}.failures", scenario["failures"], states, place, errors=True
                )
            steps = scenario.get("steps", [])
            if not isinstance(steps, list):
                self.error(
                    f"{where}.steps",
                    f"expected a list of steps, got {_type_name(steps)}",
                    place=place,
                )
                steps = []
            for number, step in enumerate(steps):
                self.check_scenario_step(
                    f"{where}.steps[{number}]", step, events, place, number + 1
                )
            if "expect" not in scenario:
                self.error(
                    where, "missing required key 'expect' (what the run ends with)", place=place
                )
            else:
                self.check_expectation(f"{where}.expect", scenario["expect"], states, place)
        # A role no step is offered to is one problem, where it is first used: a role renamed
        # in a step would otherwise be one for each decision of every scenario.
        offered = self.offered_roles() or set()
        for role, places in self.unoffered.items():
            where, place = places[0]
            others = f" (and {len(places) - 1} more step(s))" if len(places) > 1 else ""
            self.error(
                where,
                f"no step is offered to the role *{role}*{others}"
                f"{_did_you_mean(role, offered | {REQUESTER_ROLE})}",
                place=place,
            )

    def offered_roles(self) -> set[str] | None:
        """The roles the definition's steps are offered to (escalations included); None when a
        step takes its roles from the request (roles_from), which only a request knows."""
        roles: set[str] = set()
        for state in walk_states(self.config):
            task = task_of(state.node)
            if task is None:
                continue
            if task.get("roles_from"):
                return None
            for key in ("roles", "escalate_to"):
                names = task.get(key)
                if isinstance(names, list):
                    roles.update(n for n in names if isinstance(n, str))
        return roles

    def check_instant(self, where: str, value: Any, place: str) -> None:
        when = value
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                when = None
        if not isinstance(when, datetime) or when.tzinfo is None:
            self.error(
                where,
                f"expected a date and time with its offset (2026-01-05T09:00:00+01:00), got "
                f"{value!r}",
                place=place,
            )

    def check_outputs(
        self, where: str, outputs: Any, states: set[str], place: str, *, errors: bool = False
    ) -> None:
        """`outputs`: each step's stubbed action output; `failures` (errors): the error text
        its action fails with."""
        if not self.expect_mapping(where, outputs):
            return
        invoking = {s.path for s in walk_states(self.config) if invoke_of(s.node) is not None}
        for path, output in outputs.items():
            item = f"{where}.{path}"
            if path not in invoking:
                what = "has no action" if path in states else "does not exist"
                self.error(
                    item,
                    f"the step *{path}* {what}{_did_you_mean(str(path), invoking)}; "
                    f"{'failures' if errors else 'outputs'} stand for the automated actions "
                    "of steps",
                    place=place,
                )
            elif errors:
                if not isinstance(output, str) or not output.strip():
                    self.error(
                        item,
                        f"expected the action's error (text), got {_type_name(output)}",
                        place=place,
                    )
            elif not isinstance(output, Mapping):
                self.error(
                    item,
                    f"expected the action's output (a mapping), got {_type_name(output)}",
                    place=place,
                )

    def check_scenario_step(
        self, where: str, step: Any, events: set[str], place: str, number: int
    ) -> None:
        place = f"{place}, step {number}"
        if not isinstance(step, Mapping):
            self.error(where, f"expected a mapping, got {_type_name(step)}", place=place)
            return
        self.unknown_keys(where, step, SCENARIO_STEP_KEYS)
        kinds = [key for key in ("event", "decide", "advance") if key in step]
        if len(kinds) != 1:
            self.error(
                where,
                "a step is one of event: NAME, decide: NAME (with as_role) or advance: "
                f"DURATION, got {' and '.join(kinds) if kinds else 'none of them'}",
                place=place,
            )
            return
        kind = kinds[0]
        if kind == "advance":
            if self.expect_str(f"{where}.advance", step["advance"]):
                try:
                    parse_duration(step["advance"])
                except DurationError as error:
                    self.error(f"{where}.advance", str(error), place=place)
            for key in ("as_role", "data"):
                if key in step:
                    self.error(f"{where}.{key}", "an advance step takes no " + key, place=place)
            return
        event = step[kind]
        if not isinstance(event, str) or not EVENT_NAME_PATTERN.fullmatch(event):
            self.error(f"{where}.{kind}", f"expected an event name, got {event!r}", place=place)
        elif event not in events:
            self.error(
                f"{where}.{kind}",
                f"the event *{event}* is accepted by no step{_did_you_mean(event, events)}",
                place=place,
            )
        if "as_role" in step:
            if kind != "decide":
                self.error(
                    f"{where}.as_role",
                    "as_role goes with decide (a task's decision); "
                    "an event is sent by no one in particular",
                    place=place,
                )
            elif self.expect_str(f"{where}.as_role", step["as_role"]):
                role = step["as_role"]
                offered = self.offered_roles()
                if role != REQUESTER_ROLE and offered is not None and role not in offered:
                    self.unoffered.setdefault(role, []).append((f"{where}.as_role", place))
        if "data" in step:
            self.expect_mapping(f"{where}.data", step["data"])

    def check_expectation(self, where: str, expect: Any, states: set[str], place: str) -> None:
        if not self.expect_mapping(where, expect):
            return
        self.unknown_keys(where, expect, EXPECT_KEYS)
        if not expect:
            self.error(where, f"expect at least one of {', '.join(EXPECT_KEYS)}", place=place)
        if "state" in expect:
            expected = expect["state"]
            paths = expected if isinstance(expected, list) else [expected]
            for path in paths:
                if not isinstance(path, str):
                    self.error(
                        f"{where}.state",
                        "expected a state's path (or a list of them, "
                        f"the active steps of parallel regions), got {path!r}",
                        place=place,
                    )
                elif path not in states:
                    self.error(
                        f"{where}.state",
                        f"the state *{path}* does not exist{_did_you_mean(path, states)}",
                        place=place,
                    )
        if "status" in expect and (
            not isinstance(expect["status"], str) or expect["status"] not in INSTANCE_STATUSES
        ):
            self.error(
                f"{where}.status",
                f"expected one of {', '.join(INSTANCE_STATUSES)}, got {expect['status']!r}",
                place=place,
            )
        if "context" in expect:
            self.expect_mapping(f"{where}.context", expect["context"])
        if "tasks" in expect:
            tasks = expect["tasks"]
            if not isinstance(tasks, list):
                self.error(
                    f"{where}.tasks",
                    f"expected a list of the open tasks, got {_type_name(tasks)}",
                    place=place,
                )
                return
            for number, task in enumerate(tasks):
                item = f"{where}.tasks[{number}]"
                if not self.expect_mapping(item, task):
                    continue
                self.unknown_keys(item, task, EXPECT_TASK_KEYS)
                if "state" in task and not isinstance(task["state"], str):
                    self.error(f"{item}.state", "expected a state's path", place=place)
                elif "state" in task and task["state"] not in states:
                    self.error(
                        f"{item}.state",
                        f"the state *{task['state']}* does not exist"
                        f"{_did_you_mean(str(task['state']), states)}",
                        place=place,
                    )
                if "roles" in task and (
                    not isinstance(task["roles"], list)
                    or not all(isinstance(r, str) for r in task["roles"])
                ):
                    self.error(f"{item}.roles", "expected a list of role names", place=place)
                if "level" in task and not _is_count(task["level"]):
                    self.error(
                        f"{item}.level", "expected the escalation level (0, 1, ...)", place=place
                    )

    def check_form(self, form: Any) -> None:
        if not self.expect_mapping("form", form):
            return
        meta_validator = jsonschema.Draft202012Validator(
            jsonschema.Draft202012Validator.META_SCHEMA
        )
        try:
            schema_errors = sorted(
                meta_validator.iter_errors(form), key=lambda e: [str(p) for p in e.absolute_path]
            )
        except RecursionError:
            self.error("form", "the schema is nested too deeply")
            return
        for schema_error in schema_errors:
            where = "form"
            for part in schema_error.absolute_path:
                where = f"{where}[{part}]" if isinstance(part, int) else join_path(where, part)
            message = schema_error.message
            self.error(where, message if len(message) <= 200 else message[:197] + "...")
        if schema_errors:
            return
        if form.get("type") != "object":
            self.error(
                "form.type", "must be 'object': the form describes the fields of one request"
            )
        self.check_artifacts("form.meta", form.get("meta"))
        properties = form.get("properties")
        if not isinstance(properties, Mapping):
            return
        self.check_sensitive(properties)
        # The engine fills the defaults into a new request's context, so they must be
        # values the field itself accepts.
        for name, schema in properties.items():
            if not isinstance(schema, Mapping) or "default" not in schema:
                continue
            validator = jsonschema.Draft202012Validator(schema)
            for problem in validator.iter_errors(schema["default"]):
                self.error(f"form.properties.{name}.default", problem.message[:200])

    def check_sensitive(self, properties: Mapping[str, Any]) -> None:
        """`x-sensitive` is true or false, on a field of the form itself: a whole field is
        encrypted, never a part of one."""

        def nested(where: str, schema: Any) -> None:
            if isinstance(schema, Mapping):
                for key, value in schema.items():
                    if key == SENSITIVE:
                        self.error(
                            f"{where}.{SENSITIVE}",
                            "only a field of the form itself (form.properties.<field>) can be "
                            "sensitive; mark the whole field",
                        )
                    else:
                        nested(join_path(where, key), value)
            elif isinstance(schema, list):
                for index, item in enumerate(schema):
                    nested(f"{where}[{index}]", item)

        for name, schema in properties.items():
            if not isinstance(schema, Mapping):
                continue
            where = f"form.properties.{name}"
            if SENSITIVE in schema and not isinstance(schema[SENSITIVE], bool):
                self.error(
                    f"{where}.{SENSITIVE}",
                    f"expected true or false, got {_type_name(schema[SENSITIVE])}",
                )
            for key, value in schema.items():
                if key != SENSITIVE:
                    nested(join_path(where, key), value)

    def check_artifacts(self, where: str, meta: Any) -> None:
        """`meta.artifacts`: the documents the form or step asks for (machine/artifacts.py)."""
        if not isinstance(meta, Mapping) or "artifacts" not in meta:
            return
        for place, message in artifact_problems(meta["artifacts"]):
            self.error(
                join_path(f"{where}.artifacts", place) if place else f"{where}.artifacts", message
            )

    # -- states -------------------------------------------------------------------------

    def check_states(
        self,
        states: Mapping[Any, Any],
        where: str,
        *,
        level: str,
        scope: set[str],
        parallel: str | None = None,
        region: str | None = None,
    ) -> None:
        prefix = ".".join(part for part in (parallel, region) if part)
        for name, node in states.items():
            address = join_path(prefix, name)
            self.check_named_state(name, node, where, address, level, scope, parallel, region)
            if address not in self.nodes:
                self.opaque.add(address)

    def check_named_state(
        self,
        name: Any,
        node: Any,
        where: str,
        address: str,
        level: str,
        scope: set[str],
        parallel: str | None,
        region: str | None,
    ) -> None:
        if not isinstance(name, str) or not STATE_NAME_PATTERN.fullmatch(name):
            self.error(
                where,
                f"invalid state name {name!r}: use letters, digits and _, not starting "
                "with a digit (no dots: the engine joins names with dots)",
            )
            return
        node_where = join_path(where, name)
        if len(name) > MAX_STATE_NAME:
            self.error(node_where, f"the name is longer than {MAX_STATE_NAME} characters")
            return
        if not isinstance(node, Mapping):
            hint = " (write {type: final} for a final state)" if node is None else ""
            self.error(node_where, f"expected a mapping, got {_type_name(node)}{hint}")
            return
        if len(address) > MAX_STATE_PATH:
            self.error(node_where, f"the full path is longer than {MAX_STATE_PATH} characters")
        self.check_state(
            name,
            node,
            node_where,
            address=address,
            level=level,
            scope=scope,
            parallel=parallel,
            region=region,
        )

    def check_state(
        self,
        name: str,
        node: Mapping[str, Any],
        where: str,
        *,
        address: str,
        level: str,
        scope: set[str],
        parallel: str | None,
        region: str | None,
    ) -> None:
        self.unknown_keys(where, node, STATE_KEYS)
        declared = node.get("type")
        if "type" in node and declared not in STATE_TYPES:
            self.error(
                f"{where}.type",
                f"unknown type {declared!r}; use one of {', '.join(STATE_TYPES)}"
                + (_suggest(declared, STATE_TYPES) if isinstance(declared, str) else ""),
            )
            return
        kind = state_type(node)
        if "description" in node:
            self.expect_str(f"{where}.description", node["description"], allow_empty=True)

        # Where a kind may appear: the engine supports exactly one level of nesting, a
        # parallel state at the top whose regions hold atomic and final states.
        if level == "top" and kind == "compound":
            self.error(
                where,
                "top-level compound states are not supported; use a parallel state or flatten it",
            )
            return
        if level == "region" and kind != "compound":
            self.error(
                where,
                "a region of a parallel state must be a compound state with initial and states",
            )
            return
        if level == "leaf" and kind not in ("atomic", "final"):
            self.error(where, "nested parallel/compound states are not supported below a region")
            return

        rules = "region" if kind == "compound" else kind
        allowed = _ALLOWED_BY_KIND[rules]
        for key in STATE_KEYS:
            if key in ("type", "description") or key not in node or key in allowed:
                continue
            self.error(where, self.misplaced_key_message(kind, key))

        info = _Node(
            address=address,
            where=where,
            level=level,
            kind=kind,
            config=node,
            parallel=parallel,
            region=region,
        )
        self.nodes[address] = info

        for key in ("entry", "exit"):
            if key in node:
                value = node[key]
                if isinstance(value, list):
                    if not value:
                        self.error(f"{where}.{key}", "expected at least one action")
                    for index, action in enumerate(value):
                        self.check_action(f"{where}.{key}[{index}]", action)
                else:
                    self.check_action(f"{where}.{key}", value)

        if "meta" in node and self.expect_mapping(f"{where}.meta", node["meta"]):
            meta = node["meta"]
            for key in meta:
                if not isinstance(key, str):
                    self.error(f"{where}.meta", f"keys must be text, got {key!r}")
            self.check_artifacts(f"{where}.meta", meta)
            if "output" in meta:
                self.check_output(f"{where}.meta.output", meta["output"], kind)
            if "task" in meta:
                if kind == "atomic":
                    self.check_task(f"{where}.meta.task", meta["task"])
                elif kind == "final":
                    self.error(where, "a final state cannot have meta.task")
                else:
                    self.error(
                        f"{where}.meta.task",
                        f"a task can only be on an atomic state, not a {kind} state",
                    )

        if kind == "final" and "on_complete_start" in node:
            if level != "top":
                self.error(
                    f"{where}.on_complete_start",
                    "only a top-level final state ends a request (a region's final state "
                    "ends its region)",
                )
            else:
                self.check_completion_start(f"{where}.on_complete_start", node["on_complete_start"])

        transitions: list[tuple[str, _Transition]] = []
        self.unreadable = self.unsure = False
        if kind in ("atomic", "parallel"):
            transitions += self.check_events(where, node, scope)
        if kind == "atomic" and "always" in node:
            transitions += self.check_transition_list(
                f"{where}.always", node["always"], scope, trigger="always", own=name
            )
        if kind in ("atomic", "parallel") and "after" in node:
            transitions += self.check_after(where, node["after"], scope)
        if kind == "parallel" and "onDone" in node:
            transitions += self.check_transition_list(
                f"{where}.onDone", node["onDone"], scope, trigger="onDone"
            )
        if kind == "atomic" and "invoke" in node:
            transitions += self.check_invoke(where, node, scope)
        for _, transition in transitions:
            target = transition.target or transition.guess
            if target is not None:
                info.edges.add(target_path(address, target))
        info.opaque, info.unsure = self.unreadable, self.unsure or self.unreadable

        if kind == "atomic":
            ways_out = [key for key in ("on", "always", "after", "invoke") if node.get(key)]
            if not ways_out:
                self.error(
                    where,
                    "no way out (add on, always, after or invoke, or make it type: final)",
                )
            elif ways_out == ["always"] and isinstance(node["always"], list | Mapping):
                items = as_list(node["always"])
                if items and all(isinstance(i, Mapping) and "guard" in i for i in items):
                    self.error(
                        f"{where}.always",
                        "every transition has a guard, so a request is stuck here when none "
                        "holds; add a last one without a guard",
                    )
        elif kind == "parallel":
            self.check_parallel(name, node, where, address)
        elif kind == "compound":
            self.check_region(node, where, info)

    def check_output(self, where: str, output: Any, kind: str) -> None:
        """`meta.output` of a final state: output name -> expression over the context."""
        if kind != "final":
            self.error(where, "only a final state has an output (what a child hands its parent)")
            return
        if not self.expect_mapping(where, output):
            return
        for name, source in output.items():
            if not isinstance(name, str) or not FIELD_NAME_PATTERN.fullmatch(name):
                self.error(where, f"invalid output name {name!r}: use letters, digits and _")
                continue
            self.check_expression(f"{where}.{name}", source)

    @staticmethod
    def misplaced_key_message(kind: str, key: str) -> str:
        if kind == "final":
            return f"a final state cannot have {key}"
        if kind == "compound":
            if key in ("on", "always", "after", "onDone"):
                return (
                    f"a region cannot have {key}; put transitions on its states or on the "
                    "parallel state"
                )
            return f"a region cannot have {key}"
        if kind == "parallel":
            if key == "initial":
                return "a parallel state has no initial: all its regions start together"
            if key == "invoke":
                return "invoke is only allowed on atomic states"
            return f"a parallel state cannot have {key}"
        # atomic
        if key == "states":
            return "an atomic state cannot have states (did you mean type: parallel?)"
        if key == "onDone":
            return "onDone is only for parallel states (for an invoke, use invoke.onDone)"
        return f"an atomic state cannot have {key}"

    def check_parallel(self, name: str, node: Mapping[str, Any], where: str, address: str) -> None:
        regions = node.get("states")
        if "onDone" not in node:
            self.error(where, "a parallel state needs onDone (it is how the state is left)")
        if not isinstance(regions, Mapping):
            if "states" in node:
                self.expect_mapping(f"{where}.states", regions)
            else:
                self.error(where, "a parallel state needs states (its regions)")
            return
        if len(regions) < 2:
            self.error(f"{where}.states", "a parallel state needs at least 2 regions")
        names = {key for key in regions if isinstance(key, str)}
        self.check_states(regions, f"{where}.states", level="region", scope=names, parallel=address)
        self.nodes[address].children = [
            f"{address}.{key}" for key in regions if f"{address}.{key}" in self.nodes
        ]

    def check_region(self, node: Mapping[str, Any], where: str, info: _Node) -> None:
        children = node.get("states")
        if not isinstance(children, Mapping) or not children:
            if isinstance(children, Mapping) or "states" not in node:
                self.error(where, "a region needs states")
            else:
                self.expect_mapping(f"{where}.states", children)
            return
        names = {key for key in children if isinstance(key, str)}
        self.check_states(
            children,
            f"{where}.states",
            level="leaf",
            scope=names,
            parallel=info.parallel,
            region=info.address.rpartition(".")[2],
        )
        info.children = [
            f"{info.address}.{key}" for key in children if f"{info.address}.{key}" in self.nodes
        ]
        initial = node.get("initial")
        if "initial" not in node:
            self.error(where, "a region needs initial (the name of its first state)")
        elif self.expect_str(f"{where}.initial", initial):
            if initial in names:
                info.initial_child = f"{info.address}.{initial}"
            else:
                self.error(
                    f"{where}.initial", f"unknown state '{initial}'{_suggest(initial, names)}"
                )
                guess = _closest(initial, names)
                info.initial_child = f"{info.address}.{guess}" if guess else None
        finals = [
            key
            for key, child in children.items()
            if isinstance(child, Mapping) and state_type(child) == "final"
        ]
        if not finals:
            self.error(
                where,
                "a region needs at least one final state (the parallel state's onDone "
                "waits for every region to reach one)",
            )

    # -- transitions --------------------------------------------------------------------

    def check_events(
        self, where: str, node: Mapping[str, Any], scope: set[str]
    ) -> list[tuple[str, _Transition]]:
        if "on" not in node:
            return []
        if not self.expect_mapping(f"{where}.on", node["on"]):
            self.unreadable = True
            return []
        result = []
        for event, value in node["on"].items():
            # The transitions of a badly named event are still checked: their targets are
            # part of the graph, and their mistakes are worth reporting now.
            self.check_event_name(f"{where}.on", event)
            result += self.check_transition_list(f"{where}.on.{event}", value, scope, trigger="on")
        return result

    def check_event_name(self, where: str, event: Any) -> bool:
        if not isinstance(event, str):
            self.error(where, f"invalid event name {event!r}: event names are text")
            return False
        for prefix in RESERVED_EVENT_PREFIXES:
            if event.startswith(prefix):
                self.error(
                    where,
                    f"event names starting with '{prefix}' are reserved "
                    "(use onDone, invoke.onDone or invoke.onError)",
                )
                return False
        if event == "*":
            self.error(where, "wildcard events are not supported; name each event")
            return False
        if not EVENT_NAME_PATTERN.fullmatch(event):
            self.error(
                where,
                f"invalid event name '{event}': use letters, digits and _, starting with a "
                "letter (like APPROVE)",
            )
            return False
        if len(event) > MAX_EVENT_NAME:
            self.error(where, f"event name '{event[:20]}...' is longer than {MAX_EVENT_NAME}")
            return False
        return True

    def check_after(self, where: str, after: Any, scope: set[str]) -> list[tuple[str, _Transition]]:
        if not self.expect_mapping(f"{where}.after", after):
            self.unreadable = True
            return []
        result = []
        for delay, value in after.items():
            delay_where = f"{where}.after.{delay}"
            if isinstance(delay, bool) or not isinstance(delay, str | int):
                self.error(f"{where}.after", f"invalid delay {delay!r}")
            elif len(str(delay)) > MAX_DELAY:
                self.error(delay_where, f"the delay is longer than {MAX_DELAY} characters")
            elif is_delay_name(str(delay)):
                self.check_delay_name(delay_where, str(delay))
            else:
                self.check_duration(delay_where, delay)
            result += self.check_transition_list(delay_where, value, scope, trigger="after")
        return result

    def check_invoke(
        self, where: str, node: Mapping[str, Any], scope: set[str]
    ) -> list[tuple[str, _Transition]]:
        invoke = node["invoke"]
        invoke_where = f"{where}.invoke"
        if isinstance(invoke, list):
            self.error(invoke_where, "expected a mapping (one invoke per state)")
            self.unreadable = True
            return []
        if not self.expect_mapping(invoke_where, invoke):
            self.unreadable = True
            return []
        self.unknown_keys(invoke_where, invoke, INVOKE_KEYS)
        subflow = subflow_of(invoke)
        if "src" not in invoke:
            self.error(invoke_where, "missing required key 'src' (the action to run)")
        elif subflow is not None:
            self.check_subflow(invoke_where, invoke, subflow)
        elif invoke["src"] == CALLBACK_SRC:
            self.check_callback(invoke_where, invoke)
        else:
            self.check_action(f"{invoke_where}.src", invoke["src"])
        for key in ("timeout", "heartbeat"):
            if key in invoke and invoke.get("src") != CALLBACK_SRC:
                self.error(
                    f"{invoke_where}.{key}",
                    f"only a callback step (src: {CALLBACK_SRC}) waits, so only it has a {key}",
                )
        for key in ("foreach", "limit"):
            if key in invoke and subflow is None:
                self.error(
                    f"{invoke_where}.{key}",
                    f"only a sub-workflow ({SUBFLOW_PREFIX}<key>) starts children {key}",
                )
        if "cancel_children" in invoke:
            if subflow is None:
                self.error(
                    f"{invoke_where}.cancel_children",
                    f"only a sub-workflow ({SUBFLOW_PREFIX}<key>) has children to cancel",
                )
            else:
                self.expect_bool(f"{invoke_where}.cancel_children", invoke["cancel_children"])
        if "input" in invoke and self.expect_mapping(f"{invoke_where}.input", invoke["input"]):
            for key in invoke["input"]:
                if not isinstance(key, str):
                    self.error(f"{invoke_where}.input", f"keys must be text, got {key!r}")
        if "retry" in invoke and subflow is None:
            self.check_retry(f"{invoke_where}.retry", invoke["retry"])
        result = []
        invoke_triggers: tuple[tuple[str, Trigger], ...] = (
            ("onDone", "invoke.onDone"),
            ("onError", "invoke.onError"),
        )
        for key, trigger in invoke_triggers:
            if key in invoke:
                result += self.check_transition_list(
                    f"{invoke_where}.{key}", invoke[key], scope, trigger=trigger
                )
        other_ways = any(node.get(key) for key in ("on", "always", "after"))
        if not other_ways:
            if "onDone" not in invoke and "onError" not in invoke:
                self.error(
                    invoke_where,
                    "needs onDone or onError, or the state needs another way out "
                    "(on, always or after)",
                )
            elif "onDone" not in invoke:
                self.error(
                    invoke_where,
                    "has no onDone, so a request would be stuck here once the action succeeds",
                )
        return result

    def check_retry(self, where: str, retry: Any) -> None:
        if not self.expect_mapping(where, retry):
            return
        self.unknown_keys(where, retry, RETRY_KEYS)
        if "max_attempts" in retry:
            attempts = retry["max_attempts"]
            if (
                isinstance(attempts, bool)
                or not isinstance(attempts, int)
                or not 1 <= attempts <= MAX_RETRY_ATTEMPTS
            ):
                self.error(
                    f"{where}.max_attempts",
                    f"expected a whole number from 1 to {MAX_RETRY_ATTEMPTS}, got {attempts!r}",
                )
        if "backoff" in retry and retry["backoff"] not in BACKOFFS:
            self.error(
                f"{where}.backoff",
                f"expected {' or '.join(BACKOFFS)}, got {retry['backoff']!r}",
            )
        if "delay" in retry:
            self.check_duration(f"{where}.delay", retry["delay"])

    def check_transition_list(
        self,
        where: str,
        value: Any,
        scope: set[str],
        *,
        trigger: Trigger,
        own: str | None = None,
    ) -> list[tuple[str, _Transition]]:
        if isinstance(value, list):
            if not value:
                self.error(where, "expected at least one transition")
                return []
            items = [(f"{where}[{index}]", item) for index, item in enumerate(value)]
        else:
            items = [(where, value)]
        result = []
        for item_where, item in items:
            transition = self.check_transition(item_where, item, scope, trigger=trigger, own=own)
            if transition is None:
                self.unreadable = True
            else:
                result.append((item_where, transition))
        for item_where, transition in result:
            if not transition.guarded and item_where != items[-1][0]:
                self.error(
                    item_where,
                    "has no guard, so the transitions after it can never be taken",
                )
        return result

    def check_transition(
        self, where: str, item: Any, scope: set[str], *, trigger: Trigger, own: str | None
    ) -> _Transition | None:
        if isinstance(item, str):
            target = self.check_target(where, item, scope)
            if target is None:
                return _Transition(
                    where, None, guarded=False, valid=False, guess=self.guess(item, scope)
                )
            if trigger == "always" and target == own:
                self.error(where, "an always transition to its own state loops forever")
                return _Transition(where, target, guarded=False, valid=False)
            return _Transition(where, target, guarded=False)
        if not isinstance(item, Mapping):
            self.error(
                where,
                f"expected a target state name or a mapping with target/guard/assign, got "
                f"{_type_name(item)}",
            )
            return None
        self.unknown_keys(where, item, TRANSITION_KEYS)
        ok = True
        target = guess = None
        if "target" in item:
            if isinstance(item["target"], str):
                target = self.check_target(f"{where}.target", item["target"], scope)
                if target is None:
                    ok, guess = False, self.guess(item["target"], scope)
            else:
                self.error(
                    f"{where}.target", f"expected a string, got {_type_name(item['target'])}"
                )
                self.unreadable = True
                ok = False
        elif trigger == "always":
            self.error(
                where, "an always transition needs a target (without one it would run forever)"
            )
            ok = False
        guarded = "guard" in item
        if guarded:
            ok = self.check_expression(f"{where}.guard", item["guard"]) and ok
        if "assign" in item:
            ok = self.check_assign(f"{where}.assign", item["assign"]) and ok
        if "description" in item:
            ok = (
                self.check_transition_description(f"{where}.description", item["description"])
                and ok
            )
        if trigger == "always" and target == own and not guarded:
            self.error(where, "an always transition to its own state loops forever")
            ok = False
        return _Transition(where, target, guarded, valid=ok, guess=guess)

    def check_target(self, where: str, target: str, scope: set[str]) -> str | None:
        if target in scope:
            return target
        self.unsure = True
        item = where.removesuffix(".target")
        split = _split_state_path(item)
        arrow = (arrow_words(split[1]) if split else None) or "the arrow"
        step = place_words(item, self.config).partition(", ")[0]
        if "." in target or target.startswith("#"):
            self.error(
                where,
                f"{arrow} points to *{target}*, but an arrow names a step beside its own, "
                f"without a path{_did_you_mean(target.rpartition('.')[2].lstrip('#'), scope)}",
                place=step,
            )
        else:
            self.error(
                where,
                f"{arrow} points to *{target}*, which does not exist{_did_you_mean(target, scope)}",
                place=step,
            )
        return None

    @staticmethod
    def guess(target: str, scope: set[str]) -> str | None:
        return _closest(target.rpartition(".")[2].lstrip("#"), scope)

    def check_assign(self, where: str, assign: Any) -> bool:
        if not self.expect_mapping(where, assign):
            return False
        if not assign:
            self.error(where, "expected at least one field")
            return False
        ok = True
        for name, source in assign.items():
            if not isinstance(name, str) or not FIELD_NAME_PATTERN.fullmatch(name):
                self.error(
                    where,
                    f"invalid field name {name!r}: use letters, digits and _ so that guards "
                    "can read it",
                )
                ok = False
                continue
            if name == "event":
                self.error(where, "cannot assign to 'event': guards could never read it")
                ok = False
                continue
            if not isinstance(source, str):
                self.error(
                    f"{where}.{name}",
                    f"expected an expression string, got {_type_name(source)} "
                    f'(quote it: "{source}")'
                    if isinstance(source, int | float | bool)
                    else f"expected an expression string, got {_type_name(source)}",
                )
                ok = False
                continue
            ok = self.check_expression(f"{where}.{name}", source) and ok
        return ok

    # -- tasks --------------------------------------------------------------------------

    def check_delay_name(self, where: str, name: str) -> None:
        """A named delay: a form field that holds the duration (XState's named delays)."""
        fields = set(form_fields(form_of(self.config)))
        if name in fields:
            return
        try:
            parse_duration(name)
        except DurationError as error:
            self.error(
                where,
                f"{error}; or, as a named delay, the name of a form field that holds one"
                f"{_did_you_mean(name, fields)}",
            )

    def check_field_name(self, where: str, name: Any, what: str) -> None:
        """`name` must be a field of the request form: what a named delay, roles_from and
        sla_from read when the step opens."""
        if not self.expect_str(where, name):
            return
        fields = (
            set(form_fields(form_of(self.config))) if isinstance(self.config, Mapping) else set()
        )
        if name not in fields:
            self.error(
                where,
                f"{what} reads the form field *{name}*, which the form does not have"
                f"{_did_you_mean(name, fields)}",
            )

    def check_task(self, where: str, task: Any) -> None:
        if not self.expect_mapping(where, task):
            return
        self.unknown_keys(where, task, TASK_KEYS)
        if "roles" in task and "roles_from" in task:
            self.error(where, "a task takes roles or roles_from, not both")
        if "sla" in task and "sla_from" in task:
            self.error(where, "a task takes sla or sla_from, not both")
        if "roles_from" in task:
            self.check_field_name(f"{where}.roles_from", task["roles_from"], "roles_from")
            rule = task.get("rule", "any")
            if rule in ("all", "everyone"):
                self.error(
                    f"{where}.rule",
                    f"rule {rule} needs the roles written in the definition, not roles_from",
                )
        if "sla_from" in task:
            self.check_field_name(f"{where}.sla_from", task["sla_from"], "sla_from")
        has_roles = "roles" in task or "roles_from" in task
        requester = task.get("requester")
        if "requester" in task:
            self.expect_bool(f"{where}.requester", requester)
        for_requester = requester is True
        if has_roles and for_requester:
            self.error(
                where, "a task is for roles or for the requester (requester: true), not both"
            )
        elif not has_roles and not for_requester:
            self.error(where, "a task needs roles, or requester: true")
        if "roles" in task:
            self.check_names(f"{where}.roles", task["roles"], self.roles, "role")

        if "rule" in task:
            rule = task["rule"]
            rule_where = f"{where}.rule"
            if isinstance(rule, Mapping) and "everyone" in rule:
                self.unknown_keys(rule_where, rule, ("everyone",))
                if rule["everyone"] is not True:
                    self.error(
                        f"{rule_where}.everyone",
                        f"expected true (or the rule any, all or {{quorum: N}}), "
                        f"got {rule['everyone']!r}",
                    )
            elif isinstance(rule, Mapping):
                self.unknown_keys(rule_where, rule, ("quorum",))
                quorum = rule.get("quorum")
                if isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 1:
                    self.error(
                        f"{rule_where}.quorum",
                        f"expected a whole number of at least 1, got {quorum!r}",
                    )
            elif rule not in ("any", "all", "everyone"):
                self.error(
                    rule_where, f"expected any, all, everyone or {{quorum: N}}, got {rule!r}"
                )
            if for_requester and rule != "any":
                self.error(rule_where, "a requester task has one person deciding; only any applies")

        sla = None
        if "sla" in task:
            sla = self.check_duration(f"{where}.sla", task["sla"])
        if "remind" in task:
            remind = task["remind"]
            if not isinstance(remind, list) or not remind:
                self.error(f"{where}.remind", "expected a list of durations (like [P1D])")
            else:
                for index, value in enumerate(remind):
                    item_where = f"{where}.remind[{index}]"
                    delay = self.check_duration(item_where, value)
                    if delay is not None and sla is not None and delay >= sla:
                        self.error(
                            item_where,
                            f"{value} is not shorter than the sla {task['sla']}: the reminder "
                            "would come after the deadline",
                        )
        if "escalate_to" in task:
            self.check_names(f"{where}.escalate_to", task["escalate_to"], self.roles, "role")
            if "sla" not in task and "sla_from" not in task:
                self.error(
                    f"{where}.escalate_to",
                    "needs an sla: escalation happens when the sla runs out",
                )
        forbid = task.get("forbid_requester")
        if (
            "forbid_requester" in task
            and self.expect_bool(f"{where}.forbid_requester", forbid)
            and for_requester
            and forbid
        ):
            self.error(f"{where}.forbid_requester", "cannot be true on a task for the requester")
        if "label" in task:
            self.expect_str(f"{where}.label", task["label"])
        if "signature" in task:
            self.check_signature(f"{where}.signature", task["signature"])
        self.check_org_chart(where, task, for_requester)

    def check_org_chart(self, where: str, task: Mapping[str, Any], for_requester: bool) -> None:
        """`assignee: manager_of_requester` or `manager_of: <field>`, with `skip_levels`: one
        person from the org chart decides; the roles are who decides where there is none."""
        chosen = [key for key in ("assignee", "manager_of") if key in task]
        if len(chosen) == 2:
            self.error(where, "a task takes assignee or manager_of, not both")
        if "assignee" in task and task["assignee"] != MANAGER_OF_REQUESTER:
            self.error(
                f"{where}.assignee",
                f"expected {MANAGER_OF_REQUESTER} (the requester's manager), "
                f"got {task['assignee']!r}",
            )
        if "manager_of" in task:
            self.check_field_name(f"{where}.manager_of", task["manager_of"], "manager_of")
        if "skip_levels" in task:
            levels = task["skip_levels"]
            if not chosen:
                self.error(
                    f"{where}.skip_levels",
                    "skip_levels goes with assignee: manager_of_requester or manager_of",
                )
            elif (
                isinstance(levels, bool)
                or not isinstance(levels, int)
                or not 0 <= levels <= MAX_SKIP_LEVELS
            ):
                self.error(
                    f"{where}.skip_levels",
                    f"expected a whole number from 0 to {MAX_SKIP_LEVELS}, got {levels!r}",
                )
        if not chosen:
            return
        if for_requester:
            self.error(where, "a task for the requester cannot go to a manager as well")
        elif "roles" not in task:
            self.error(
                where,
                "a task that goes to a manager needs roles: they decide where there is no manager",
            )
        if task.get("rule", "any") != "any":
            self.error(f"{where}.rule", "a task that goes to one manager has rule any")

    def check_signature(self, where: str, signature: Any) -> None:
        """`signature: {meaning: "Approved as Director"}`: what the signer's signature means."""
        if not self.expect_mapping(where, signature):
            return
        self.unknown_keys(where, signature, ("meaning",))
        meaning = signature.get("meaning")
        if not isinstance(meaning, str) or not meaning.strip():
            self.error(
                f"{where}.meaning",
                'say what the signature means, like "Approved as Director"',
            )
        elif len(meaning) > MAX_SIGNATURE_MEANING:
            self.error(f"{where}.meaning", f"at most {MAX_SIGNATURE_MEANING} characters")

    # -- the graph ----------------------------------------------------------------------

    def check_graph(self, initial: str) -> None:
        """Reachability and completion, around the parts too broken to follow: a typo'd
        target is followed to the state it probably meant, a state whose transitions could
        not be read may lead anywhere (nothing behind it is called unreachable) and is not
        blamed for having no way to a final state, nor are the states that lead to it."""
        reached = self.reachable(initial)
        blind = any(
            address in self.opaque or (address in self.nodes and self.nodes[address].opaque)
            for address in reached
        )
        top = [node for node in self.nodes.values() if node.level == "top"]
        if not blind:
            for node in top:
                if node.address not in reached:
                    self.error(node.where, "cannot be reached from the first step")
            for node in self.nodes.values():
                if (
                    node.level == "leaf"
                    and node.parallel in reached
                    and node.address not in reached
                    and getattr(
                        self.nodes.get(f"{node.parallel}.{node.region}"), "initial_child", None
                    )
                ):
                    self.error(node.where, "cannot be reached from the first step of its region")

        # From every reachable state a request must be able to finish.
        unsure = {node.address for node in self.nodes.values() if node.unsure} | self.opaque
        top_finals = {node.address for node in top if node.kind == "final"}
        if not top_finals and not any(address.count(".") == 0 for address in self.opaque):
            self.error("states", "there is no final step, so no request can ever finish")
            return
        finishing = self.co_reachable(top, top_finals | unsure)
        for node in top:
            if node.address in reached and node.kind != "final" and node.address not in finishing:
                self.error(
                    node.where, "a request here can never finish: no way leads on to a final step"
                )
        for region in (node for node in self.nodes.values() if node.level == "region"):
            if region.parallel not in reached:
                continue
            leaves = [self.nodes[address] for address in region.children]
            finals = {leaf.address for leaf in leaves if leaf.kind == "final"}
            if not finals:
                continue  # already reported: a region needs a final state
            finishing = self.co_reachable(leaves, finals | unsure)
            for leaf in leaves:
                if (
                    leaf.address in reached
                    and leaf.kind != "final"
                    and leaf.address not in finishing
                ):
                    self.error(
                        leaf.where,
                        "a request here can never finish: no way leads on to a final step of "
                        "its region",
                    )

    def reachable(self, initial: str) -> set[str]:
        reached: set[str] = set()
        queue = deque([initial])
        while queue:
            address = queue.popleft()
            if address in reached:
                continue
            reached.add(address)
            if address not in self.nodes:
                continue
            node = self.nodes[address]
            queue.extend(node.edges)
            if node.kind == "parallel":
                for region_address in node.children:
                    region = self.nodes[region_address]
                    reached.add(region_address)
                    if region.initial_child is not None:
                        queue.append(region.initial_child)
        return reached

    @staticmethod
    def co_reachable(nodes: list[_Node], seeds: set[str]) -> set[str]:
        """The states of ``nodes`` from which one of ``seeds`` can be reached."""
        incoming: dict[str, set[str]] = {}
        for node in nodes:
            for target in node.edges:
                incoming.setdefault(target, set()).add(node.address)
        seen = set(seeds)
        queue = deque(seeds)
        while queue:
            for source in incoming.get(queue.popleft(), ()):
                if source not in seen:
                    seen.add(source)
                    queue.append(source)
        return seen


def validate_config(
    config: Mapping[str, Any],
    *,
    roles: Collection[str] | None = None,
    actions: Collection[str] | None = None,
    workflows: WorkflowLookup | None = None,
) -> list[str]:
    """Every problem in a definition, each prefixed by the dotted path of its place.

    An empty list means the definition is valid. Role names are checked only when
    ``roles`` is given, action names (entry, exit, invoke.src) only when ``actions`` is, the
    workflows sub-workflow steps start (their form, circles) only when ``workflows`` is.
    A config nested deeper than files may be (loader.MAX_DEPTH) gets that one problem: the
    other checks, and canonical_config, would follow it as deep as it goes.
    """
    problem = nesting_problem(config)
    if problem:
        return [problem]
    return _Validator(roles, actions, workflows).run(config)


# ---------------------------------------------------------------------------------------
# Canonical form


def canonical_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical form of a valid definition, for comparing definitions and for export.

    Keys in a fixed order, empty optional parts left out, ``type`` written for every state
    but atomic ones, entry/exit as lists, transitions in their shortest unambiguous
    spelling, ``after`` keys as strings. Raises DefinitionError for an invalid config.
    Idempotent.
    """
    errors = validate_config(config)
    if errors:
        raise DefinitionError(errors)
    result: dict[str, Any] = {"id": config["id"], "title": config["title"]}
    if config.get("description"):
        result["description"] = config["description"]
    result["initial"] = config["initial"]
    result["form"] = copy.deepcopy(dict(form_of(config)))
    if config.get("inbox_columns"):
        result["inbox_columns"] = list(config["inbox_columns"])
    if segregation_of(config) != default_segregation(config):
        result["segregation"] = config["segregation"]
    if config.get("retention"):
        result["retention"] = config["retention"].strip().upper()
    if config.get("settings"):
        result["settings"] = copy.deepcopy(dict(config["settings"]))
    result["states"] = {name: _canonical_state(node) for name, node in config["states"].items()}
    if config.get("scenarios"):
        result["scenarios"] = [_canonical_scenario(s) for s in config["scenarios"]]
    if config.get("schedule"):
        result["schedule"] = [_canonical_schedule(entry) for entry in schedules_of(config)]
    return result


def _canonical_schedule(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Every entry named; catch_up written only when it is false (true is the default)."""
    result: dict[str, Any] = {"name": entry["name"], "cron": entry["cron"], "tz": entry["tz"]}
    if entry.get("context"):
        result["context"] = copy.deepcopy(dict(entry["context"]))
    if entry.get("catch_up") is False:
        result["catch_up"] = False
    if entry.get("run_as"):
        result["run_as"] = entry["run_as"]
    return result


def _canonical_scenario(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """Keys in the documented order; a start time as ISO 8601 text (YAML reads it as a date)."""
    result = {key: copy.deepcopy(scenario[key]) for key in SCENARIO_KEYS if key in scenario}
    if isinstance(result.get("start_at"), datetime):
        result["start_at"] = result["start_at"].isoformat()
    return result


def _canonical_state(node: Mapping[str, Any]) -> dict[str, Any]:
    kind = state_type(node)
    parts: dict[str, Any] = {}
    if kind != "atomic":
        parts["type"] = kind
    if node.get("description"):
        parts["description"] = node["description"]
    if node.get("initial"):
        parts["initial"] = node["initial"]
    for key in ("entry", "exit"):
        value = node.get(key)
        if value:
            parts[key] = as_list(value)
    if "invoke" in node:
        parts["invoke"] = _canonical_invoke(node["invoke"])
    meta = node.get("meta")
    if meta:
        canonical_meta: dict[str, Any] = {}
        for key, value in meta.items():
            if key == "task":
                canonical_meta[key] = {
                    name: copy.deepcopy(value[name]) for name in TASK_KEYS if name in value
                }
            else:
                canonical_meta[key] = copy.deepcopy(value)
        parts["meta"] = canonical_meta
    if node.get("on"):
        parts["on"] = {event: _canonical_transitions(value) for event, value in node["on"].items()}
    if "always" in node:
        parts["always"] = _canonical_transitions(node["always"])
    if node.get("after"):
        parts["after"] = {
            str(delay): _canonical_transitions(value) for delay, value in node["after"].items()
        }
    if "onDone" in node:
        parts["onDone"] = _canonical_transitions(node["onDone"])
    if node.get("states"):
        parts["states"] = {name: _canonical_state(child) for name, child in node["states"].items()}
    if "on_complete_start" in node:
        trigger = node["on_complete_start"]
        parts["on_complete_start"] = {"workflow": trigger["workflow"]}
        if trigger.get("input"):
            parts["on_complete_start"]["input"] = copy.deepcopy(dict(trigger["input"]))
    return {key: parts[key] for key in STATE_KEYS if key in parts}


def _canonical_invoke(invoke: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"src": invoke["src"]}
    if invoke.get("input"):
        result["input"] = copy.deepcopy(dict(invoke["input"]))
    if invoke.get("retry"):
        retry = invoke["retry"]
        result["retry"] = {key: retry[key] for key in RETRY_KEYS if key in retry}
    for key in ("timeout", "heartbeat", "foreach", "limit", "cancel_children"):
        if key in invoke:
            result[key] = invoke[key]
    for key in ("onDone", "onError"):
        if key in invoke:
            result[key] = _canonical_transitions(invoke[key])
    return result


def _canonical_transition(item: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if item.get("target"):
        result["target"] = item["target"]
    if "guard" in item:
        result["guard"] = item["guard"]
    if item.get("assign"):
        result["assign"] = dict(item["assign"])
    if item.get("description"):
        result["description"] = item["description"]
    return result


def _canonical_transitions(value: Any) -> str | dict[str, Any] | list[dict[str, Any]]:
    items = [_canonical_transition(item) for item in normalize_transitions(value)]
    if len(items) == 1:
        only = items[0]
        if set(only) == {"target"}:
            return str(only["target"])
        return only
    return items

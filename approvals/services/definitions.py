"""Definitions: import/export as machine-config files, publish, new versions.

The rows (edited as admin inlines) are the source of truth; `definition_config` turns them into
the file format, and every check and the compiled statechart start from that config, so a file
and an admin edit are validated by the same code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jsonschema
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Max

from approvals.actions import action_names
from approvals.integrations.http import target_problem
from approvals.machine.config import (
    SubflowRef,
    as_list,
    form_of,
    invoke_of,
    meta_of,
    schedules_of,
    segregation_of,
    state_type,
    subflow_of,
    transitions_of,
    walk_states,
)
from approvals.machine.loader import MAX_DEPTH, DefinitionError, load_document, nesting_problem
from approvals.machine.scenarios import ScenarioResult, run_scenarios
from approvals.machine.statechart import OUTCOMES, Statechart
from approvals.machine.validation import (
    ChildWorkflow,
    canonical_config,
    problem_text,
    validate_config,
)
from approvals.models import (
    DefinitionStatus,
    Schedule,
    StateDefinition,
    TransitionDefinition,
    Trigger,
    WorkflowDefinition,
)
from approvals.request_schema import form_errors, with_defaults
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.storable import json_problem

_STATE_KEYS = ("description", "initial", "entry", "exit")
# A definition's scenarios and its retention period are kept with its settings (the
# `settings` column) under these keys, and are the file's top-level `scenarios` and
# `retention`; validation refuses them under `settings`.
SCENARIOS = "scenarios"
RETENTION = "retention"
_TOP_LEVEL_SETTINGS = (SCENARIOS, RETENTION)


def stored_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a config's `settings` column holds: its settings, its scenarios and retention."""
    stored = dict(config.get("settings") or {})
    for key in _TOP_LEVEL_SETTINGS:
        if config.get(key):
            stored[key] = config[key]
    return stored


def definition_config(definition: WorkflowDefinition) -> dict[str, Any]:
    """The definition's rows as a machine config (canonical form)."""
    states = list(definition.states.all())
    by_source: dict[str, list[TransitionDefinition]] = defaultdict(list)
    for row in definition.transitions.all():
        by_source[row.source].append(row)

    nodes: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for state in states:
        node: dict[str, Any] = {}
        if state.type != "atomic":
            node["type"] = state.type
        for key in _STATE_KEYS:
            value = getattr(state, key)
            if value:
                node[key] = value
        rows = by_source.get(state.path, [])
        if state.invoke:
            invoke = dict(state.invoke)
            for trigger, key in (
                (Trigger.INVOKE_DONE, "onDone"),
                (Trigger.INVOKE_ERROR, "onError"),
            ):
                items = [_transition_item(r) for r in rows if r.trigger == trigger]
                if items:
                    invoke[key] = items
            node["invoke"] = invoke
        meta = dict(state.meta or {})
        if state.task:
            meta["task"] = state.task
        if meta:
            node["meta"] = meta
        if state.on_complete_start:
            node["on_complete_start"] = state.on_complete_start
        on: dict[str, list[dict[str, Any]]] = {}
        after: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row.trigger == Trigger.ON:
                on.setdefault(row.event, []).append(_transition_item(row))
            elif row.trigger == Trigger.AFTER:
                after.setdefault(row.delay, []).append(_transition_item(row))
        always = [_transition_item(r) for r in rows if r.trigger == Trigger.ALWAYS]
        done = [_transition_item(r) for r in rows if r.trigger == Trigger.DONE]
        if on:
            node["on"] = on
        if always:
            node["always"] = always
        if after:
            node["after"] = after
        if done:
            node["onDone"] = done
        nodes[state.path] = node
    for path, node in nodes.items():
        parent, _, name = path.rpartition(".")
        if parent in nodes:
            nodes[parent].setdefault("states", {})[name] = node
        else:
            # A top-level state, or a row whose parent was deleted: kept under its full path so
            # validation names it ("states.a.b: ...") instead of the page failing.
            top[path] = node

    config: dict[str, Any] = {
        "id": definition.key,
        "title": definition.title,
        "description": definition.description,
        "initial": definition.initial,
        "form": definition.form_schema or {"type": "object"},
        "settings": {
            k: v for k, v in (definition.settings or {}).items() if k not in _TOP_LEVEL_SETTINGS
        },
        "states": top,
    }
    for key in _TOP_LEVEL_SETTINGS:
        if (definition.settings or {}).get(key):
            config[key] = definition.settings[key]
    if definition.inbox_columns:
        config["inbox_columns"] = definition.inbox_columns
    config["segregation"] = definition.segregation
    schedules = [_schedule_item(row) for row in definition.schedules.all()]
    if schedules:
        config["schedule"] = schedules
    try:
        return canonical_config(config)
    except Exception:
        return config


def _schedule_item(row: Schedule) -> dict[str, Any]:
    item: dict[str, Any] = {"name": row.name, "cron": row.cron, "tz": row.tz}
    if row.context:
        item["context"] = row.context
    if not row.catch_up:
        item["catch_up"] = False
    if row.run_as:
        item["run_as"] = row.run_as
    return item


def _transition_item(row: TransitionDefinition) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if row.target:
        item["target"] = row.target
    if row.guard:
        item["guard"] = row.guard
    if row.assign:
        item["assign"] = row.assign
    if row.description:
        item["description"] = row.description
    return item


def definition_problems(config: Mapping[str, Any]) -> list[str]:
    """Every problem of a config against this installation's roles and actions, in one pass,
    each once, in words with its path after (approvals.machine.validation.problem_text)."""
    if not isinstance(config, Mapping) or nesting_problem(config):
        # Not a definition at all, or the other checks would follow it as deep as it goes.
        return validate_config(config)
    roles = set(Group.objects.values_list("name", flat=True))
    looked_up: dict[str, ChildWorkflow | None] = {}

    def workflows(ref: SubflowRef) -> ChildWorkflow | None:
        if str(ref) not in looked_up:
            looked_up[str(ref)] = _child_workflow(ref)
        return looked_up[str(ref)]

    found = [
        *validate_config(config, roles=roles, actions=action_names(), workflows=workflows),
        *(
            problem_text(where, message, config)
            for where, message in (
                *_outcome_problems(config),
                *_webhook_target_problems(config),
                *_schedule_problems(config),
            )
        ),
    ]
    unstorable = json_problem(config, max_depth=MAX_DEPTH)
    if unstorable:
        where, message = unstorable
        found.append(problem_text(where or "top level", message, config))
    return list(dict.fromkeys(found))


def child_definition(ref: SubflowRef) -> WorkflowDefinition | None:
    """The version a sub-workflow step starts its child on: the key's published version, or
    the pinned version where that is published or retired (a draft may still change)."""
    rows = WorkflowDefinition.objects.filter(key=ref.key)
    if ref.version is None:
        return rows.filter(status=DefinitionStatus.PUBLISHED).first()
    return rows.filter(version=ref.version).exclude(status=DefinitionStatus.DRAFT).first()


def _child_workflow(ref: SubflowRef) -> ChildWorkflow | None:
    definition = child_definition(ref)
    if definition is None:
        return None
    subflows = tuple(
        found
        for invoke in definition.states.exclude(invoke=None).values_list("invoke", flat=True)
        if (found := subflow_of(invoke)) is not None
    )
    return ChildWorkflow(
        key=definition.key,
        version=definition.version,
        form=definition.form_schema or {"type": "object"},
        subflows=subflows,
    )


def definition_scenarios(config: Mapping[str, Any]) -> list[ScenarioResult]:
    """Each scenario of a valid config run in memory (approvals/machine/scenarios.py): nothing
    is read or written but the config."""
    scenarios = config.get(SCENARIOS) or []
    if not scenarios:
        return []
    return run_scenarios(Statechart(config), scenarios)


def publish_problems(config: Mapping[str, Any]) -> list[str]:
    """What stops a config from being published: its problems, else its failing scenarios
    (each with its first difference)."""
    problems = definition_problems(config)
    if problems:
        return problems
    return [
        f"Scenario *{r.name}* fails: {r.difference}"
        for r in definition_scenarios(config)
        if not r.passed
    ]


def _webhook_target_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The `webhook` action's URLs written in the definition must be public addresses. Names
    are not looked up here (validation runs on every admin page of a definition); the call
    checks what they resolve to."""
    urls: list[tuple[str, Any]] = []
    settings_ = config.get("settings")
    if isinstance(settings_, Mapping) and "webhook_url" in settings_:
        urls.append(("settings.webhook_url", settings_["webhook_url"]))
    for state in walk_states(config):
        invoke = invoke_of(state.node)
        given = invoke.get("input") if invoke else None
        if (
            invoke
            and invoke.get("src") == "webhook"
            and isinstance(given, Mapping)
            and "url" in given
        ):
            where = "states." + ".states.".join(state.path.split("."))
            urls.append((f"{where}.invoke.input.url", given["url"]))
    problems = []
    for where, url in urls:
        if not isinstance(url, str):
            problems.append((where, f"expected a URL, got {url!r}"))
            continue
        problem = target_problem(
            url, allow_private=settings.ALLOW_PRIVATE_WEBHOOK_TARGETS, resolve=False
        )
        if problem:
            problems.append((where, f"{url} is refused: {problem}"))
    return problems


def _schedule_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A schedule's requests start as a user of this installation (`run_as`) and its context
    must fill the request form, or every tick would fail."""
    problems: list[tuple[str, str]] = []
    entries = config.get("schedule")
    if not isinstance(entries, list):
        return problems
    form = form_of(config)
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        where = f"schedule[{index}]"
        run_as = entry.get("run_as")
        if isinstance(run_as, str) and run_as:
            user = get_user_model().objects.filter(username=run_as).first()
            if user is None or not user.is_active:
                problems.append(
                    (f"{where}.run_as", f"there is no active user *{run_as}* to start requests as")
                )
        context = entry.get("context", {})
        if not isinstance(context, Mapping):
            continue
        try:
            errors = form_errors(form, with_defaults(form, context))
        except (jsonschema.SchemaError, TypeError, ValueError):
            continue  # a form that is no JSON Schema is validation's own message
        for name, messages in errors.items():
            problems.append((f"{where}.context", f"{name}: {' '.join(str(m) for m in messages)}"))
    return problems


def _outcome_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    for state in walk_states(config):
        outcome = meta_of(state.node).get("outcome")
        if outcome is None:
            continue
        where = "states." + ".states.".join(state.path.split(".")) + ".meta.outcome"
        if state_type(state.node) != "final":
            problems.append((where, "only final states end a request"))
        elif outcome not in OUTCOMES:
            problems.append((where, f"{outcome!r} is not one of {', '.join(OUTCOMES)}"))
    return problems


def _write_rows(definition: WorkflowDefinition, config: Mapping[str, Any]) -> None:
    states: list[StateDefinition] = []
    transitions: list[TransitionDefinition] = []
    for state in walk_states(config):
        node = state.node
        meta = dict(meta_of(node))
        task = meta.pop("task", None)
        invoke = invoke_of(node)
        if invoke is not None:
            invoke = {k: v for k, v in invoke.items() if k not in ("onDone", "onError")}
        trigger = node.get("on_complete_start")
        states.append(
            StateDefinition(
                definition=definition,
                path=state.path,
                type=state_type(node),
                description=node.get("description", ""),
                initial=node.get("initial", ""),
                entry=as_list(node.get("entry")),
                exit=as_list(node.get("exit")),
                invoke=invoke or None,
                task=task,
                meta=meta,
                on_complete_start=dict(trigger) if isinstance(trigger, Mapping) else None,
                position=len(states),
            )
        )
        first = len(transitions)
        transitions.extend(
            TransitionDefinition(
                definition=definition,
                source=state.path,
                trigger=t.trigger,
                event=t.event,
                delay=t.delay,
                target=t.target or "",
                guard=t.guard or "",
                assign=dict(t.assign),
                description=t.description,
                position=first + n,
            )
            for n, t in enumerate(transitions_of(node))
        )
    definition.states.all().delete()
    definition.transitions.all().delete()
    definition.schedules.all().delete()
    StateDefinition.objects.bulk_create(states)
    TransitionDefinition.objects.bulk_create(transitions)
    Schedule.objects.bulk_create(
        Schedule(
            definition=definition,
            name=entry["name"],
            cron=entry["cron"],
            tz=entry["tz"],
            context=dict(entry.get("context") or {}),
            catch_up=entry.get("catch_up", True) is not False,
            run_as=entry.get("run_as") or "",
            position=position,
        )
        for position, entry in enumerate(schedules_of(config))
    )


def definition_parse(text: str, *, filename: str = "<definition>") -> dict[str, Any]:
    """A definition file's text as a config; InvalidInput names the line of a syntax error."""
    try:
        return load_document(text, filename=filename)
    except DefinitionError as exc:
        raise InvalidInput(str(exc), {"definition": exc.errors}) from None


@transaction.atomic
def definition_import(
    *, config: Mapping[str, Any], actor: Any, publish: bool = False, now: datetime
) -> WorkflowDefinition:
    """Import a config as the key's draft (replacing an existing draft), optionally publishing.

    Importing what is already the published version changes nothing and returns it, so loading
    the shipped examples twice creates no new versions.
    """
    problems = definition_problems(config)
    if problems:
        raise InvalidInput(
            f"{len(problems)} problem(s) in the definition", {"definition": problems}
        )
    config = canonical_config(config)
    key = config["id"]
    existing = list(WorkflowDefinition.objects.select_for_update().filter(key=key))
    published = next((d for d in existing if d.status == DefinitionStatus.PUBLISHED), None)
    if published is not None and definition_config(published) == config:
        return published
    draft = next((d for d in existing if d.status == DefinitionStatus.DRAFT), None)
    if draft is None:
        version = max((d.version for d in existing), default=0) + 1
        draft = WorkflowDefinition(key=key, version=version, created_by=actor)
    draft.title = config["title"]
    draft.description = config.get("description", "")
    draft.initial = config["initial"]
    draft.form_schema = config.get("form") or {"type": "object"}
    draft.settings = stored_settings(config)
    draft.inbox_columns = config.get("inbox_columns") or []
    draft.segregation = segregation_of(config)
    draft.save()
    _write_rows(draft, config)
    if publish:
        return definition_publish(definition_id=draft.pk, actor=actor, now=now)
    return draft


def _lock_definition(definition_id: int) -> WorkflowDefinition:
    try:
        return WorkflowDefinition.objects.select_for_update().get(pk=definition_id)
    except WorkflowDefinition.DoesNotExist:
        raise NotAllowed("no such workflow definition") from None


@transaction.atomic
def definition_publish(*, definition_id: int, actor: Any, now: datetime) -> WorkflowDefinition:
    """Publish a valid draft; the key's previous published version is retired (its instances
    finish on it)."""
    definition = _lock_definition(definition_id)
    if definition.status != DefinitionStatus.DRAFT:
        raise Conflict(f"{definition} is not a draft; only drafts can be published")
    config = definition_config(definition)
    problems = definition_problems(config)
    if problems:
        raise InvalidInput(
            f"{definition} cannot be published: {len(problems)} problem(s)",
            {"definition": problems},
        )
    failing = [r for r in definition_scenarios(config) if not r.passed]
    if failing:
        first = failing[0]
        raise InvalidInput(
            f"{definition} cannot be published: the scenario '{first.name}' fails: "
            f"{first.difference}",
            {"scenarios": [str(r) for r in failing]},
        )
    for previous in WorkflowDefinition.objects.select_for_update().filter(
        key=definition.key, status=DefinitionStatus.PUBLISHED
    ):
        previous.retire()
        previous.save(update_fields=["status"])
    definition.publish()
    definition.published_at = now
    definition.save(update_fields=["status", "published_at"])
    return definition


@transaction.atomic
def definition_new_version(*, definition_id: int, actor: Any) -> WorkflowDefinition:
    """A draft copy of a published or retired version to edit (or the key's existing draft)."""
    source = _lock_definition(definition_id)
    existing_draft = WorkflowDefinition.objects.filter(
        key=source.key, status=DefinitionStatus.DRAFT
    ).first()
    if existing_draft is not None:
        raise Conflict(f"{existing_draft} already exists; edit it or delete it first")
    version = (
        WorkflowDefinition.objects.filter(key=source.key).aggregate(m=Max("version"))["m"] or 0
    ) + 1
    config = definition_config(source)
    draft = WorkflowDefinition.objects.create(
        key=source.key,
        version=version,
        title=source.title,
        description=source.description,
        initial=source.initial,
        form_schema=source.form_schema,
        settings=source.settings,
        inbox_columns=source.inbox_columns,
        segregation=source.segregation,
        created_by=actor,
    )
    _write_rows(draft, config)
    return draft


@transaction.atomic
def definition_retire(*, definition_id: int, actor: Any) -> WorkflowDefinition:
    definition = _lock_definition(definition_id)
    if definition.status != DefinitionStatus.PUBLISHED:
        raise Conflict(f"{definition} is not published")
    definition.retire()
    definition.save(update_fields=["status"])
    return definition


_charts: dict[tuple[int, str, int, datetime | None], Statechart] = {}


def statechart_for(definition: WorkflowDefinition) -> Statechart:
    """The compiled statechart; cached for published and retired versions, which never change.

    The key includes the publication time: a primary key alone can be reused after a rollback
    (SQLite does), and a stale chart must never drive an instance.
    """
    cache_key = (definition.pk, definition.key, definition.version, definition.published_at)
    chart = _charts.get(cache_key)
    if chart is None:
        chart = Statechart(definition_config(definition))
        if definition.status != DefinitionStatus.DRAFT:
            _charts[cache_key] = chart
    return chart

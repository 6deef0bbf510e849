"""Reads for the Documents part of the request and task pages."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.files.storage import default_storage

from approvals.artifacts import sniff
from approvals.machine.artifacts import ArtifactRule, form_rules, rules_of
from approvals.models import Artifact, ArtifactVersion, WorkflowInstance
from approvals.selectors import live_tasks, state_label
from approvals.services.artifacts import adding_task
from approvals.services.definitions import statechart_for

# Texts larger than this are not diffed on the page (download them instead).
DIFF_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "same", "gap"
    old: int | None
    new: int | None
    text: str


def versions_of(instance: WorkflowInstance) -> list[tuple[Artifact, list[ArtifactVersion]]]:
    versions = (
        ArtifactVersion.objects.filter(artifact__instance=instance)
        .select_related("artifact", "added_by", "parent")
        .order_by("artifact__name", "number")
    )
    grouped: dict[int, tuple[Artifact, list[ArtifactVersion]]] = {}
    for version in versions:
        grouped.setdefault(version.artifact_id, (version.artifact, []))[1].append(version)
    for version in versions:
        version.step = state_label(instance, version.state) if version.state else ""
        version.previewable = (
            version.media_type in sniff.PREVIEW_IMAGES or version.media_type == sniff.PDF
        )
        version.is_image = version.media_type in sniff.PREVIEW_IMAGES
        version.diffable = version.media_type in sniff.DIFFABLE
    return list(grouped.values())


def declared_rules(instance: WorkflowInstance) -> dict[str, ArtifactRule]:
    """The documents the start form and the current steps ask for."""
    chart = statechart_for(instance.definition)
    rules = dict(form_rules(chart.form))
    for task in live_tasks(instance):
        rules.update(rules_of(chart.state(task.state).meta))
    return rules


def documents(user: Any, instance: WorkflowInstance, now: datetime) -> dict[str, Any]:
    """What the Documents card shows: each artifact with its versions, what the steps ask for
    and still miss, and whether this reader may add a version."""
    artifacts = versions_of(instance)
    rules = declared_rules(instance)
    have = {artifact.name for artifact, _ in artifacts}
    return {
        "artifacts": artifacts,
        "artifact_rules": list(rules.values()),
        "artifacts_missing": [r for name, r in rules.items() if r.required and name not in have],
        "may_add_artifact": instance.is_active and adding_task(user, instance, now) is not None,
    }


def text_of(version: ArtifactVersion) -> list[str]:
    with default_storage.open(version.storage_key, "rb") as handle:
        data = handle.read(DIFF_LIMIT + 1)
    return data[:DIFF_LIMIT].decode("utf-8", errors="replace").splitlines()


def line_diff(old: ArtifactVersion, new: ArtifactVersion, context: int = 3) -> list[DiffLine]:
    """The lines that changed from `old` to `new`, with `context` lines around each change."""
    a, b = text_of(old), text_of(new)
    lines: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        if lines:
            lines.append(DiffLine("gap", None, None, "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [
                    DiffLine("same", i + 1, j + 1, a[i])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            if tag in ("replace", "delete"):
                lines += [DiffLine("del", i + 1, None, a[i]) for i in range(i1, i2)]
            if tag in ("replace", "insert"):
                lines += [DiffLine("add", None, j + 1, b[j]) for j in range(j1, j2)]
    return lines

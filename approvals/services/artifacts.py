"""Documents of a request: adding versions, the versions a decision saw, integrity checks and
the sweep of orphaned files.

A version's bytes are checked (name, size, content against its claimed type, the definition's
rules) before anything is written; the file is stored under a fresh random key only then, and
deleted again if anything after it fails, so a refused or failed upload leaves no row and no
file. A file whose row was undone by a caller's rollback after the service returned is an
orphan: `artifact_orphans_sweep` (hourly, in beat) removes those older than
ARTIFACT_ORPHAN_MINUTES.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet

from accounts.absences import local_day
from approvals.artifacts import sniff
from approvals.machine.artifacts import NAME, ArtifactRule, form_rules, rules_of
from approvals.machine.statechart import Statechart
from approvals.models import (
    LIVE_TASK_STATUSES,
    Artifact,
    ArtifactVersion,
    AuditEvent,
    Channel,
    Task,
    TaskKind,
    WorkflowInstance,
)
from approvals.permissions import can_view_instance, task_refusal
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.locking import lock_instance

logger = logging.getLogger(__name__)

PREFIX = "artifacts"
MAX_FILENAME = 200
MAX_NOTE = 500
MAX_TEXT_CHARS = 1_000_000
# Decisions a missing required document does not block: saying no or sending it back.
NOT_BLOCKED = frozenset({"REJECT", "REQUEST_CHANGES", "WITHDRAW", "CANCEL"})
MB = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One document to add: a file (an UploadedFile or any Django File) or a text body."""

    name: str
    file: File | None = None
    text: str | None = None
    note: str = ""


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, {field: [message[:1].upper() + message[1:] + "."]})


def _check_filename(filename: str) -> str:
    filename = (filename or "").strip()
    if not filename:
        raise _field_error("file", "the file has no name")
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        raise _field_error("file", "the file name may not contain path separators")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in filename):
        raise _field_error("file", "the file name may not contain control characters")
    if len(filename) > MAX_FILENAME:
        raise _field_error("file", f"the file name is longer than {MAX_FILENAME} characters")
    return filename


def _check_upload(upload: Upload) -> tuple[File, str, bool]:
    """The file to store, its name and whether it is a text body; refusals before any lock."""
    name = upload.name if isinstance(upload.name, str) else ""
    if not NAME.match(name):
        raise _field_error(
            "name",
            "an artifact name is lower-case letters, digits, '-', '_' or '.', starting with a "
            "letter or digit, at most 100 characters (e.g. quote)",
        )
    if len(upload.note or "") > MAX_NOTE:
        raise _field_error("note", f"the note is longer than {MAX_NOTE} characters")
    if (upload.file is None) == (upload.text is None):
        raise InvalidInput(
            "give either a file or a text body",
            {"file": ["Give a file, or a text body in `text`, not both."]},
        )
    if upload.text is not None:
        if not upload.text.strip():
            raise _field_error("text", "the text is empty")
        if len(upload.text) > MAX_TEXT_CHARS:
            raise _field_error("text", f"the text is longer than {MAX_TEXT_CHARS} characters")
        return ContentFile(upload.text.encode("utf-8"), name=f"{name}.txt"), f"{name}.txt", True
    file = upload.file
    filename = _check_filename(getattr(file, "name", "") or "")
    if not file.size:
        raise _field_error("file", "the file is empty")
    if file.size > settings.ARTIFACT_MAX_MB * MB:
        raise _field_error("file", f"the file is larger than {settings.ARTIFACT_MAX_MB} MB")
    return file, filename, False


def _rules(chart: Statechart, states: Iterable[str]) -> dict[str, ArtifactRule]:
    """What the start form and the given steps say of each artifact (a step's rule wins)."""
    rules = dict(form_rules(chart.form))
    for state in states:
        rules.update(rules_of(chart.state(state).meta))
    return rules


def adding_task(actor: Any, instance: WorkflowInstance, now: datetime) -> Task | None:
    """The open task that lets `actor` add a document: one of the requester's own, or one
    they may decide as a reviewer; None when they may not add."""
    day = local_day(now)
    tasks = instance.tasks.filter(status__in=LIVE_TASK_STATUSES, kind=TaskKind.DECISION)
    for task in tasks.select_related("assignee").order_by("pk"):
        if task_refusal(actor, task, instance, day) is None:
            return task
    return None


def _adding_task(actor: Any, instance: WorkflowInstance, now: datetime) -> Task:
    task = adding_task(actor, instance, now)
    if task is not None:
        return task
    if not instance.is_active:
        raise Conflict(
            f"the request is {instance.get_status_display().lower()}; no documents can be added",
            current_state=instance.state,
        )
    raise NotAllowed(
        "documents are added by the requester while a task of theirs is open, or by a "
        "reviewer of an open task"
    )


def _read_type(file: File, filename: str, is_text: bool) -> str:
    """The media type from the bytes; InvalidInput when they contradict the claimed type."""
    file.seek(0)
    head = file.read(sniff.HEAD_BYTES)
    whole = None
    if file.size <= sniff.JSON_LIMIT:
        rest = file.read() if file.size > len(head) else b""
        whole = head + rest
    file.seek(0)
    sniffed = sniff.sniff(head, whole=whole)
    claims = [] if is_text else [getattr(file, "content_type", None), sniff.named_type(filename)]
    media_type, contradicted = sniff.settle(sniffed, claims)
    if contradicted:
        raise _field_error(
            "file", f"the file's content is {sniffed}, not {contradicted} as its name or type says"
        )
    return media_type


def _check_rule(rule: ArtifactRule | None, media_type: str, size: int) -> None:
    if rule is None:
        return
    if rule.types and not sniff.matches(media_type, list(rule.types)):
        raise _field_error(
            "file",
            f"{rule.title} must be {' or '.join(rule.types)}; this file is {media_type}",
        )
    if rule.max_mb is not None and size > rule.max_mb * MB:
        raise _field_error("file", f"{rule.title} may be at most {rule.max_mb:g} MB")


def _sha256(file: File) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


class _Stored:
    """Files written by one service call; removed again if the call fails."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def save(self, instance_id: int, file: File) -> str:
        key = default_storage.save(f"{PREFIX}/{instance_id}/{uuid.uuid4().hex}", file)
        self.keys.append(key)
        return key

    def discard(self) -> None:
        for key in self.keys:
            try:
                default_storage.delete(key)
            except Exception:
                # The sweep removes it later: it has no row.
                logger.exception("could not delete %s after a failed upload", key)
        self.keys = []


def _add(
    run: Run,
    upload: Upload,
    *,
    task: Task | None,
    state: str,
    rules: Mapping[str, ArtifactRule],
    stored: _Stored,
) -> ArtifactVersion:
    file, filename, is_text = _check_upload(upload)
    instance = run.instance
    count = ArtifactVersion.objects.filter(artifact__instance=instance).count()
    if count >= settings.ARTIFACT_MAX_VERSIONS:
        raise InvalidInput(
            f"this request already has {count} document versions, the most allowed",
            {"file": [f"At most {settings.ARTIFACT_MAX_VERSIONS} versions per request."]},
        )
    media_type = _read_type(file, filename, is_text)
    rule = rules.get(upload.name)
    if (
        is_text
        and media_type == sniff.TEXT_PLAIN
        and rule
        and rule.types
        and not sniff.matches(media_type, list(rule.types))
        and sniff.matches("text/markdown", list(rule.types))
    ):
        # A text body for an artifact that must be Markdown is Markdown.
        media_type = "text/markdown"
    _check_rule(rules.get(upload.name), media_type, file.size)
    sha256 = _sha256(file)
    artifact, _ = Artifact.objects.get_or_create(
        instance=instance, name=upload.name, defaults={"created_at": run.now}
    )
    last = artifact.versions.order_by("-number").first()
    number = (last.number if last else 0) + 1
    key = stored.save(instance.pk, file)
    data = {
        "name": upload.name,
        "version": number,
        "sha256": sha256,
        "size": file.size,
        "media_type": media_type,
        "filename": filename,
        "parent": last.number if last else None,
        **({"note": upload.note} if upload.note else {}),
    }
    seq = run.record("artifact.version_added", task=task, to_state=state, data=data)
    version = ArtifactVersion.objects.create(
        artifact=artifact,
        number=number,
        storage_key=key,
        filename=filename,
        size=file.size,
        media_type=media_type,
        sha256=sha256,
        is_text=is_text,
        added_by=run.actor,
        added_at=run.now,
        state=state,
        task=task,
        parent=last,
        note=upload.note or "",
        audit_seq=seq,
    )
    run.emit(
        "artifact.version_added",
        {
            **data,
            "added_by": run.actor.username,
            "added_at": run.now.isoformat(),
            **({"task": task.pk} if task else {}),
        },
        key=f"artifact:{upload.name}:{number}",
    )
    return version


def artifact_add(
    *,
    instance_id: int,
    upload: Upload,
    actor: Any,
    now: datetime,
    channel: str = Channel.WEB,
) -> ArtifactVersion:
    """Add a version of a document to a request (a new artifact's version 1, or the next)."""
    stored = _Stored()
    try:
        with transaction.atomic():
            instance = lock_instance(instance_id=instance_id)
            if not can_view_instance(actor, instance):
                raise NotAllowed("no such request")
            task = _adding_task(actor, instance, now)
            chart = statechart_for(instance.definition)
            run = Run(instance, chart, actor=actor, channel=channel, now=now)
            rules = _rules(chart, [task.state])
            version = _add(run, upload, task=task, state=task.state, rules=rules, stored=stored)
            run.commit()
    except BaseException:
        stored.discard()
        raise
    return version


def start_form_uploads(
    run: Run, uploads: Iterable[Upload], *, stored: _Stored
) -> list[ArtifactVersion]:
    """The start form's documents, in the transaction that starts the request. Errors are
    named by the form's field for each document, `artifact_<name>`."""
    uploads = list(uploads)
    rules = form_rules(run.chart.form)
    given = {u.name for u in uploads}
    missing = [r for name, r in rules.items() if r.required and name not in given]
    if missing:
        raise InvalidInput(
            "a required document is missing",
            {f"artifact_{r.name}": [f"Add the {r.title} (required)."] for r in missing},
        )
    versions = []
    for upload in uploads:
        try:
            versions.append(
                _add(run, upload, task=None, state=run.instance.state, rules=rules, stored=stored)
            )
        except InvalidInput as exc:
            messages = [m for ms in exc.field_errors.values() for m in ms] or [exc.message]
            raise InvalidInput(exc.message, {f"artifact_{upload.name}": messages}) from None
    return versions


def instance_start_with_artifacts(
    *, definition_key: str, uploads: list[Upload], actor: Any, now: datetime, **start: Any
) -> WorkflowInstance:
    """Start a request with the documents its form asks for, all or nothing."""
    from approvals.services.instances import instance_start

    stored = _Stored()
    try:
        with transaction.atomic():
            instance = instance_start(definition_key=definition_key, actor=actor, now=now, **start)
            chart = statechart_for(instance.definition)
            if uploads or form_rules(chart.form):
                instance = lock_instance(instance_id=instance.pk)
                channel = start.get("channel", Channel.WEB)
                run = Run(instance, chart, actor=actor, channel=channel, now=now)
                start_form_uploads(run, uploads, stored=stored)
                run.commit()
    except BaseException:
        stored.discard()
        raise
    return instance


# ----- what a decision saw, and what a step still needs


def current_versions(instance_id: int) -> list[dict[str, Any]]:
    """The latest version of each of the request's artifacts: [{"name", "version", "sha256"}]."""
    latest = ArtifactVersion.objects.filter(artifact__instance_id=instance_id).values(
        "artifact__name", "number", "sha256"
    )
    result: dict[str, dict[str, Any]] = {}
    for row in latest.order_by("artifact__name", "number"):
        result[row["artifact__name"]] = {
            "name": row["artifact__name"],
            "version": row["number"],
            "sha256": row["sha256"],
        }
    return list(result.values())


def missing_required(chart: Statechart, state: str, have: Iterable[str]) -> list[ArtifactRule]:
    present = set(have)
    return [
        rule
        for name, rule in rules_of(chart.state(state).meta).items()
        if rule.required and name not in present
    ]


def require_artifacts(
    chart: Statechart, state: str, event: str, versions: list[dict[str, Any]]
) -> None:
    """A step whose definition requires a document cannot be approved without it."""
    if event in NOT_BLOCKED:
        return
    missing = missing_required(chart, state, (v["name"] for v in versions))
    if missing:
        names = ", ".join(f"the {r.title}" for r in missing)
        raise Conflict(
            f"this step needs {names} before it can be approved: add it under Documents first",
            current_state=state,
        )


# ----- integrity and clean-up


@dataclass(frozen=True)
class FileProblem:
    instance_id: int
    name: str
    version: int
    key: str
    problem: str

    def __str__(self) -> str:
        return (
            f"instance {self.instance_id}: {self.name} v{self.version} ({self.key}): {self.problem}"
        )


def check_files(instance_ids: Iterable[int]) -> Iterator[FileProblem]:
    """Re-hash every stored version of these requests against the SHA-256 its audit event
    recorded (the chain protects that one; the row's copy could be edited with it)."""
    ids = instance_ids if isinstance(instance_ids, QuerySet) else list(instance_ids)
    versions = (
        ArtifactVersion.objects.filter(artifact__instance_id__in=ids)
        .select_related("artifact")
        .order_by("artifact__instance_id", "artifact__name", "number")
    )
    for version in versions.iterator():
        instance_id = version.artifact.instance_id
        event = AuditEvent.objects.filter(
            instance_id=instance_id, seq=version.audit_seq, event="artifact.version_added"
        ).first()
        recorded = (event.data or {}).get("sha256") if event else None

        def problem(text: str, v: ArtifactVersion = version, i: int = instance_id) -> FileProblem:
            return FileProblem(i, v.artifact.name, v.number, v.storage_key, text)

        if recorded is None:
            yield problem("no audit event records this version")
            continue
        if recorded != version.sha256:
            yield problem("the row's SHA-256 differs from the one its audit event recorded")
            continue
        try:
            digest = hashlib.sha256()
            with default_storage.open(version.storage_key, "rb") as handle:
                for chunk in iter(lambda h=handle: h.read(MB), b""):
                    digest.update(chunk)
        except (FileNotFoundError, OSError) as exc:
            yield problem(f"the stored file cannot be read ({exc.__class__.__name__})")
            continue
        if digest.hexdigest() != recorded:
            yield problem(
                f"the stored bytes hash to {digest.hexdigest()[:12]}…, not to the "
                f"{recorded[:12]}… recorded when it was added"
            )


def _walk(directory: str) -> Iterator[str]:
    try:
        dirs, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{directory}/{name}"
    for sub in dirs:
        yield from _walk(f"{directory}/{sub}")


def artifact_orphans_sweep(*, now: datetime) -> int:
    """Delete stored files that no version row names, once older than
    ARTIFACT_ORPHAN_MINUTES (a younger one may belong to an upload still in its transaction)."""
    cutoff = now - timedelta(minutes=settings.ARTIFACT_ORPHAN_MINUTES)
    removed = 0
    for key in _walk(PREFIX):
        if ArtifactVersion.objects.filter(storage_key=key).exists():
            continue
        try:
            modified = default_storage.get_modified_time(key)
        except (FileNotFoundError, OSError):
            continue
        if modified > cutoff:
            continue
        default_storage.delete(key)
        removed += 1
        logger.info("removed orphaned artifact file %s", key)
    return removed

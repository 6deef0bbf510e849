"""Builds a signed audit bundle: one .zip written as it reads, never holding the events.

What is in it (the names are in approvals/audit_chain.py; README, "Signed audit export"):

    requests/<id>/events.jsonl         the request's audit events, one JSON object a line, each
                                       with exactly the fields its hash covers plus hash and MAC
    requests/<id>/artifacts.jsonl      its documents' versions and their SHA-256 (when it has any)
    requests/<id>/files/<name>/v<n>/…  the documents' bytes (only with include_files)
    definitions/<key>/v<version>.json  the exported config of every definition version involved
    manifest.jsonl                     line 1: what the bundle holds; then one line per request
                                       with its chain head (seq and hash), the SHA-256 of its
                                       files and `chain_check`: whether its chain verified with
                                       the server's audit keys (MACs included) when exported
    manifest.sig                       Ed25519 signature of the manifest's SHA-256

Requests are read in batches of BATCH: their events in one statement joined to the head each
request recorded (so both come from one snapshot, as `check_chains` reads them) and streamed
row by row into the request's file; the manifest lines go to a temporary file meanwhile. What
grows with the number of requests is only the zip's directory (a few hundred bytes an entry).
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import chain, groupby
from operator import itemgetter
from types import SimpleNamespace
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.utils import timezone

from approvals import audit_chain
from approvals.audit_chain import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    MANIFEST,
    SIGNATURE,
    artifacts_path,
    definition_path,
    events_path,
    file_path,
    key_id,
    signed_statement,
)
from approvals.audit_export.signing import private_key, raw_public_key
from approvals.machine.loader import dump_document
from approvals.models import ArtifactVersion, AuditEvent, WorkflowDefinition, WorkflowInstance
from approvals.services.audit import ChainKeys, ChainResult, verify_chain
from approvals.services.definitions import definition_config
from approvals.services.errors import InvalidInput

BATCH = 200
CHUNK = 1024 * 1024
EVENT_FIELDS = (
    "instance_id",
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "channel",
    "event",
    "from_state",
    "to_state",
    "task_id",
    "data",
    "prev_hash",
    "hash",
    "mac",
    "mac_key_id",
    "instance__audit_seq",
    "instance__audit_head",
)
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True)
class Scope:
    """Which requests: one (`instance_id`), or a workflow's and/or those started from `since` to
    `until` (days in the site's time zone, both included); nothing given: every request.
    `instance_ids`: exactly these (the retention run's archive of the requests it deletes)."""

    instance_id: int | None = None
    workflow_key: str = ""
    since: date | None = None
    until: date | None = None
    include_files: bool = False
    instance_ids: tuple[int, ...] = ()

    def check(self) -> None:
        if self.instance_id is not None and (self.workflow_key or self.since or self.until):
            raise InvalidInput(
                "give one request, or a workflow and dates, not both",
                {"instance": ["Give either a request or a workflow and dates, not both."]},
            )
        if self.since and self.until and self.since > self.until:
            raise InvalidInput(
                f"the range starts ({self.since}) after it ends ({self.until})",
                {"until": ["The end of the range is before its start."]},
            )
        if self.instance_id is not None and not self.instances().exists():
            raise InvalidInput(f"no request {self.instance_id}", {"instance": ["No such request."]})
        if (
            self.workflow_key
            and not WorkflowDefinition.objects.filter(key=self.workflow_key).exists()
        ):
            raise InvalidInput(
                f"no workflow '{self.workflow_key}'", {"workflow": ["No such workflow."]}
            )

    def _bounds(self) -> tuple[datetime | None, datetime | None]:
        zone = timezone.get_default_timezone()
        start = datetime.combine(self.since, time.min, zone) if self.since else None
        end = (
            datetime.combine(self.until + timedelta(days=1), time.min, zone) if self.until else None
        )
        return start, end

    def instances(self) -> QuerySet[WorkflowInstance]:
        found = WorkflowInstance.objects.all()
        if self.instance_id is not None:
            return found.filter(pk=self.instance_id)
        if self.instance_ids:
            found = found.filter(pk__in=self.instance_ids)
        if self.workflow_key:
            found = found.filter(workflow_key=self.workflow_key)
        start, end = self._bounds()
        if start:
            found = found.filter(created_at__gte=start)
        if end:
            found = found.filter(created_at__lt=end)
        return found

    def as_dict(self) -> dict[str, Any]:
        start, end = self._bounds()
        return {
            "instance": self.instance_id,
            "workflow": self.workflow_key or None,
            "started_from": start.isoformat() if start else None,
            "started_before": end.isoformat() if end else None,
            "files_included": self.include_files,
            **({"requests": list(self.instance_ids)} if self.instance_ids else {}),
        }


@dataclass(frozen=True)
class Summary:
    requests: int
    events: int
    definitions: int
    files: int
    # Requests whose chain did not verify with the server's keys when exported (the manifest's
    # `chain_check` says so, and the verifier fails on them): at most the first few.
    broken: list[str]
    broken_count: int


class FileUnreadable(Exception):
    pass


def _line(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _batches(ids: Iterable[int]) -> Iterator[list[int]]:
    batch: list[int] = []
    for pk in ids:
        batch.append(pk)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _Writer:
    def __init__(self, zf: zipfile.ZipFile, manifest: IO[bytes], scope: Scope) -> None:
        self.zf = zf
        self.manifest = manifest
        self.scope = scope
        self.definitions: set[int] = set()
        self.keys = ChainKeys.configured()
        self.broken: list[str] = []
        self.broken_count = 0
        self.requests = self.events = self.files = 0

    def entry(self, name: str, *, large: bool = False) -> IO[bytes]:
        info = zipfile.ZipInfo(name, date_time=timezone.now().timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        return self.zf.open(info, "w", force_zip64=large)

    def batch(self, ids: list[int]) -> None:
        meta = {
            row["pk"]: row
            for row in WorkflowInstance.objects.filter(pk__in=ids).values(
                "pk",
                "workflow_key",
                "definition_id",
                "definition__version",
                "title",
                "business_key",
                "status",
                "state",
                "created_at",
                "completed_at",
                "requester__username",
                "audit_seq",
                "audit_head",
            )
        }
        versions: dict[int, list[dict[str, Any]]] = {}
        for row in (
            ArtifactVersion.objects.filter(artifact__instance_id__in=ids)
            .order_by("artifact__instance_id", "artifact__name", "number")
            .values(
                "artifact__instance_id",
                "artifact__name",
                "number",
                "sha256",
                "size",
                "media_type",
                "filename",
                "added_by__username",
                "added_at",
                "audit_seq",
                "storage_key",
            )
        ):
            versions.setdefault(row["artifact__instance_id"], []).append(row)
        events = (
            AuditEvent.objects.filter(instance_id__in=ids)
            .order_by("instance_id", "seq")
            .values_list(*EVENT_FIELDS)
        )
        chains: dict[int, tuple[Any, ...]] = {}
        for instance_id, rows in groupby(events.iterator(chunk_size=2000), key=itemgetter(0)):
            chains[instance_id] = self._events(instance_id, rows)
        for pk in ids:
            if pk not in meta:
                continue  # deleted since the ids were read
            row = meta[pk]
            if pk in chains:
                count, digest, head_seq, head_hash, path, verdict = chains[pk]
            else:
                with self.entry(events_path(pk)):
                    pass
                count, digest, path = 0, hashlib.sha256().hexdigest(), events_path(pk)
                head_seq, head_hash = row["audit_seq"], row["audit_head"]
                verdict = self._verdict(
                    verify_chain(
                        [],
                        instance_id=pk,
                        recorded_seq=head_seq,
                        recorded_head=head_hash,
                        keys=self.keys,
                    )
                )
            artifacts = self._artifacts(pk, versions.get(pk, []))
            self.definitions.add(row["definition_id"])
            self.manifest.write(
                _line(
                    {
                        "request": pk,
                        "workflow": row["workflow_key"],
                        "definition_version": row["definition__version"],
                        "definition_file": definition_path(
                            row["workflow_key"], row["definition__version"]
                        ),
                        "title": row["title"],
                        "business_key": row["business_key"],
                        "requester": row["requester__username"],
                        "status": row["status"],
                        "state": row["state"],
                        "created_at": _iso(row["created_at"]),
                        "completed_at": _iso(row["completed_at"]),
                        "events": count,
                        "head_seq": head_seq,
                        "head_hash": head_hash,
                        "events_file": path,
                        "events_sha256": digest,
                        "chain_check": verdict,
                        **artifacts,
                    }
                )
            )
            self.requests += 1
            self.events += count

    def _events(self, instance_id: int, rows: Iterator[tuple[Any, ...]]) -> tuple[Any, ...]:
        """Write the request's events as they come, checking its chain with the server's keys
        meanwhile (hashes, links and MACs, as verify_audit does): the verifier offline can
        recompute hashes but not MACs, so a chain rewritten in the database alone would verify
        there; the manifest carries this check's verdict so that it does not."""
        path = events_path(instance_id)
        digest = hashlib.sha256()
        first = next(rows)
        head_seq, head_hash = first[15], first[16]
        count = 0
        with self.entry(path) as handle:

            def written() -> Iterator[SimpleNamespace]:
                nonlocal count
                for row in chain([first], rows):
                    body = audit_chain.event_body(
                        instance=row[0],
                        seq=row[1],
                        at=row[2],
                        actor=row[3],
                        actor_name=row[4],
                        channel=row[5],
                        event=row[6],
                        from_state=row[7],
                        to_state=row[8],
                        task=row[9],
                        data=row[10],
                        prev=row[11],
                    )
                    line = _line({**body, "hash": row[12], "mac": row[13], "mac_key_id": row[14]})
                    digest.update(line)
                    handle.write(line)
                    count += 1
                    yield SimpleNamespace(
                        **dict(zip(EVENT_FIELDS[:15], row[:15], strict=True)), pk=None
                    )

            events = written()
            result = verify_chain(
                events,
                instance_id=instance_id,
                recorded_seq=head_seq,
                recorded_head=head_hash,
                keys=self.keys,
            )
            for _ in events:  # a broken chain is still exported whole
                pass
        return count, digest.hexdigest(), head_seq, head_hash, path, self._verdict(result)

    def _verdict(self, result: ChainResult) -> str:
        if result.problem:
            self.broken_count += 1
            if len(self.broken) < 5:
                self.broken.append(str(result.broken or result.problem))
        if result.broken:
            return f"event #{result.broken.seq}: {result.broken.problem}"
        if result.problem:
            return result.problem
        if result.unkeyed:
            return f"verified; {result.unkeyed} event(s) predate the audit key (hash only)"
        return "verified"

    def _artifacts(self, pk: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            return {"artifacts": 0, "artifacts_file": None, "artifacts_sha256": None}
        path = artifacts_path(pk)
        digest = hashlib.sha256()
        lines = []
        for row in rows:
            stored = None
            if self.scope.include_files:
                stored = file_path(pk, row["artifact__name"], row["number"], row["filename"])
                self._copy(row, stored, pk)
            line = _line(
                {
                    "name": row["artifact__name"],
                    "version": row["number"],
                    "sha256": row["sha256"],
                    "size": row["size"],
                    "media_type": row["media_type"],
                    "filename": row["filename"],
                    "added_by": row["added_by__username"],
                    "added_at": _iso(row["added_at"]),
                    "audit_seq": row["audit_seq"],
                    "file": stored,
                }
            )
            digest.update(line)
            lines.append(line)
        with self.entry(path) as handle:
            for line in lines:
                handle.write(line)
        return {
            "artifacts": len(rows),
            "artifacts_file": path,
            "artifacts_sha256": digest.hexdigest(),
        }

    def _copy(self, row: dict[str, Any], name: str, pk: int) -> None:
        try:
            source = default_storage.open(row["storage_key"], "rb")
        except OSError as exc:
            raise FileUnreadable(
                f"request {pk}: the stored file of {row['artifact__name']} v{row['number']} "
                f"cannot be read ({exc.__class__.__name__}); export without the files, or "
                "restore it"
            ) from None
        with source, self.entry(name, large=row["size"] > 2**31) as target:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                target.write(chunk)
        self.files += 1

    def definition_files(self) -> list[dict[str, Any]]:
        listed = []
        for definition in WorkflowDefinition.objects.filter(pk__in=self.definitions).order_by(
            "key", "version"
        ):
            text = dump_document(definition_config(definition), fmt="json").encode()
            path = definition_path(definition.key, definition.version)
            with self.entry(path) as handle:
                handle.write(text)
            listed.append(
                {
                    "key": definition.key,
                    "version": definition.version,
                    "file": path,
                    "sha256": hashlib.sha256(text).hexdigest(),
                }
            )
        return listed


def write_bundle(
    scope: Scope, out: IO[bytes], *, now: datetime, progress: Progress | None = None
) -> Summary:
    """Write the bundle of `scope` into `out` (a seekable binary file), signed."""
    key = private_key()  # a missing key stops the export before any work
    signer = key_id(raw_public_key(key))
    requests = scope.instances()
    total = requests.count()
    with (
        tempfile.TemporaryFile() as manifest_lines,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        writer = _Writer(zf, manifest_lines, scope)
        ids = requests.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=2000)
        for batch in _batches(ids):
            writer.batch(batch)
            if progress:
                progress(writer.requests, total, writer.events)
        definitions = writer.definition_files()
        header = _line(
            {
                "format": BUNDLE_FORMAT,
                "version": BUNDLE_VERSION,
                "created_at": now.isoformat(),
                "site": settings.SITE_URL,
                "key_id": signer,
                "scope": scope.as_dict(),
                "requests": writer.requests,
                "events": writer.events,
                "files": writer.files,
                "definitions": definitions,
            }
        )
        digest = hashlib.sha256(header)
        manifest_lines.seek(0)
        with writer.entry(MANIFEST, large=True) as handle:
            handle.write(header)
            for chunk in iter(lambda: manifest_lines.read(CHUNK), b""):
                digest.update(chunk)
                handle.write(chunk)
        statement = signed_statement(manifest_sha256=digest.hexdigest(), signing_key_id=signer)
        signature = {
            "algorithm": "Ed25519",
            "key_id": signer,
            "manifest_sha256": digest.hexdigest(),
            "signed": "the canonical JSON of format, version, manifest, manifest_sha256, key_id",
            "signature": base64.b64encode(key.sign(statement)).decode(),
        }
        with writer.entry(SIGNATURE) as handle:
            handle.write(json.dumps(signature, indent=2).encode() + b"\n")
    return Summary(
        writer.requests,
        writer.events,
        len(definitions),
        writer.files,
        writer.broken[:5],
        writer.broken_count,
    )

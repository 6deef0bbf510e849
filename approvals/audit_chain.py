"""The audit chain's arithmetic and the signed bundle's format: pure Python, no Django.

The one definition of an event's hash: `approvals/services/audit.py` writes and verifies the
chain in the database with it, `approvals/audit_export/` writes bundles with it, and the offline
verifier (`python -m approvals.verify_bundle`), which must run without Django or a database,
recomputes every link with it. Anything here may import only the standard library.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

# The fields an event's hash covers, by the names the hashed body (and a bundle's event line)
# gives them.
HASHED_FIELDS = (
    "instance",
    "seq",
    "at",
    "actor",
    "actor_name",
    "channel",
    "event",
    "from",
    "to",
    "task",
    "data",
    "prev",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_body(
    *,
    instance: int,
    seq: int,
    at: datetime,
    actor: int | None,
    actor_name: str,
    channel: str,
    event: str,
    from_state: str,
    to_state: str,
    task: int | None,
    data: Any,
    prev: str,
) -> dict[str, Any]:
    """What an event's hash is computed over (and what a bundle's event line holds)."""
    return {
        "instance": instance,
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "actor_name": actor_name,
        "channel": channel,
        "event": event,
        "from": from_state,
        "to": to_state,
        "task": task,
        "data": data,
        "prev": prev,
    }


def body_hash(body: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the hashed fields of `body` (extra keys ignored)."""
    hashed = {name: body[name] for name in HASHED_FIELDS}
    return hashlib.sha256(canonical_json(hashed).encode()).hexdigest()


# ----- The bundle (a .zip): see README, "Signed audit export".

BUNDLE_FORMAT = "signoff-audit-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.jsonl"
SIGNATURE = "manifest.sig"
# The event that records a document version and the SHA-256 of its bytes.
ARTIFACT_EVENT = "artifact.version_added"


def events_path(request_id: int) -> str:
    return f"requests/{request_id}/events.jsonl"


def artifacts_path(request_id: int) -> str:
    return f"requests/{request_id}/artifacts.jsonl"


def file_path(request_id: int, name: str, version: int, filename: str) -> str:
    return f"requests/{request_id}/files/{name}/v{version}/{filename}"


def definition_path(key: str, version: int) -> str:
    return f"definitions/{key}/v{version}.json"


def key_id(raw_public_key: bytes) -> str:
    """A signing key's public name: the first 16 hex digits of SHA-256 of its raw 32 bytes."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def signed_statement(*, manifest_sha256: str, signing_key_id: str) -> bytes:
    """The bytes the Ed25519 signature covers: the manifest's digest and who signed it (the
    manifest itself is too large to hold in memory to sign at 100,000 requests)."""
    return canonical_json(
        {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "manifest": MANIFEST,
            "manifest_sha256": manifest_sha256,
            "key_id": signing_key_id,
        }
    ).encode()

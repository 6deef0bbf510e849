"""Rotating the key-encryption keys of sensitive fields: every request's data key re-wrapped
with the current key of FIELD_ENCRYPTION_KEYS; the encrypted values themselves stay as they
are (approvals/sensitive.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count

from approvals import sensitive
from approvals.models import DATA_KEY_FIELDS, WorkflowInstance

BATCH = 500


@dataclass
class Rotation:
    current: str
    rewrapped: Counter[str] = field(default_factory=Counter)  # by the KEK they had
    already_current: int = 0

    @property
    def total(self) -> int:
        return sum(self.rewrapped.values())


def field_keys_rotate(*, batch: int = BATCH) -> Rotation:
    """Re-wrap every data key not wrapped with the current KEK. Refuses, before writing
    anything, when a KEK that wraps some data key is not configured. Running it again
    re-wraps nothing."""
    ring = sensitive.keyring()
    if ring.current is None:
        raise sensitive.FieldKeyError(
            "FIELD_ENCRYPTION_KEYS is not set: there is no current key to re-wrap with"
        )
    keyed = WorkflowInstance.objects.exclude(data_key="")
    in_use = Counter(
        {
            row["data_key_kek"]: row["n"]
            for row in keyed.values("data_key_kek").annotate(n=Count("pk")).order_by()
        }
    )
    missing = sorted(set(in_use) - set(ring.keys))
    if missing:
        counts = ", ".join(f"'{kek}' ({in_use[kek]} requests)" for kek in missing)
        raise sensitive.FieldKeyError(
            f"nothing was re-wrapped: data keys are wrapped with key-encryption keys that are "
            f"not in FIELD_ENCRYPTION_KEYS: {counts}; add them back after the current key "
            f"('{ring.current}') and run rotate_field_keys again"
        )
    rotation = Rotation(ring.current, already_current=in_use.get(ring.current, 0))
    last = 0
    while True:
        with transaction.atomic():
            rows = list(
                keyed.exclude(data_key_kek=ring.current)
                .filter(pk__gt=last)
                .order_by("pk")
                .select_for_update()
                .values_list("pk", "data_key", "data_key_kek")[:batch]
            )
            if not rows:
                return rotation
            changed = []
            for pk, wrapped, kek_id in rows:
                try:
                    plain = sensitive.unwrap(wrapped, kek_id)
                except sensitive.FieldKeyError as exc:
                    raise sensitive.FieldKeyError(f"request #{pk}: {exc}") from None
                rotation.rewrapped[kek_id] += 1
                changed.append(
                    WorkflowInstance(
                        pk=pk,
                        data_key=sensitive.wrap(plain, ring.current),
                        data_key_kek=ring.current,
                    )
                )
            # Only the two key columns are written: the context is not read, nor touched.
            WorkflowInstance.objects.bulk_update(changed, list(DATA_KEY_FIELDS))
            last = rows[-1][0]

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.models import ArtifactVersion, RetiredRequest, WorkflowInstance
from approvals.services.artifacts import check_files
from approvals.services.audit import ChainKeys, check_chains, unknown_key_problem
from approvals.services.retention import bundle_problem


class Command(BaseCommand):
    help = (
        "Verify the keyed hash chains of the audit trail; exits non-zero at the first broken "
        "link, or when events were keyed with a key that is not configured."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--instance", type=int, help="verify only this instance")

    def handle(self, *args: Any, instance: int | None, **options: Any) -> None:
        instances = WorkflowInstance.objects.order_by("pk")
        tombstones = RetiredRequest.objects.order_by("pk")
        if instance is not None:
            instances = instances.filter(pk=instance)
            tombstones = tombstones.filter(pk=instance)
            if not instances.exists() and not tombstones.exists():
                raise CommandError(f"no instance {instance}")
        keys = ChainKeys.configured()
        checked = events = unkeyed = unkeyed_instances = 0
        unknown: Counter[str] = Counter()
        unknown_instances: Counter[str] = Counter()
        ids = instances.values_list("pk", flat=True).iterator()
        for result in check_chains(ids, keys=keys):
            if result.broken:
                raise CommandError(f"audit chain broken: {result.broken}")
            checked += 1
            events += result.events
            unkeyed += result.unkeyed
            unkeyed_instances += bool(result.unkeyed)
            unknown.update(result.unknown_keys)
            unknown_instances.update(result.unknown_keys.keys())
        if unknown:
            # A wrong or missing key, not tampering: every hash verified, no MAC could be checked.
            lines = [
                f"{count} event(s) in {unknown_instances[key_id]} instance(s) have "
                f"{unknown_key_problem(key_id, keys)}"
                for key_id, count in sorted(unknown.items())
            ]
            raise CommandError(
                "audit chain keys missing: "
                + "; ".join(lines)
                + ". Their hashes verify but their MACs cannot be checked: set AUDIT_CHAIN_KEY to "
                "the key they were written with, or after a rotation list it in "
                "AUDIT_CHAIN_PREVIOUS_KEYS."
            )
        # The chain proves which SHA-256 each document version had; the bytes must still match.
        for problem in check_files(instances.values_list("pk", flat=True)):
            raise CommandError(f"stored document does not match the audit trail: {problem}")
        # A deleted request's tombstone names its archive: it must still be there, unchanged.
        bundles: dict[str, str | None] = {}
        retired = 0
        for tombstone in tombstones.iterator():
            if tombstone.bundle_key not in bundles:
                bundles[tombstone.bundle_key] = bundle_problem(tombstone)
            if bundles[tombstone.bundle_key]:
                raise CommandError(
                    f"retired request #{tombstone.pk}: {bundles[tombstone.bundle_key]}"
                )
            retired += 1
        files = ArtifactVersion.objects.filter(artifact__instance__in=instances).count()
        summary = f"audit chains verified: {checked} instance(s), {events} event(s)"
        if files:
            summary += f", {files} stored document version(s) re-hashed"
        if retired:
            summary += (
                f", {retired} retired request(s) whose {len(bundles)} archive bundle(s) are intact"
            )
        if unkeyed:
            summary += (
                f"; {unkeyed} event(s) in {unkeyed_instances} instance(s) predate "
                "AUDIT_CHAIN_KEY and are verified by their hashes alone"
            )
        self.stdout.write(self.style.SUCCESS(summary))

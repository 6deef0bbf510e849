"""Electronic signatures: a step with `meta.task.signature: {meaning: ...}` is decided only by
someone who re-authenticates at that moment (their password, and the code of their
authenticator app where they have set one up), from the task's page.

The signature names the signer as printed, the moment (with its time zone) and the meaning,
and carries a digest of what it signs: the request, the task, the decision, the comment and the
artifact versions current then. It is stored with the decision and in the decision's audit
event, so the hash chain holds it, and it cannot be moved to another request or decision: the
digest would no longer match (`is_intact`).

Three failed attempts in a row lock signing for that person for SIGNING_LOCK; each failure and
the lock are audited on the request the person tried to sign."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import sso
from approvals.formatting import moment
from approvals.models import Decision, SigningLockout
from approvals.services.errors import InvalidInput

SIGNING_ATTEMPTS = 3
SIGNING_LOCK = timedelta(minutes=15)
MAX_CODE = 12


@dataclass(frozen=True)
class SigningCredentials:
    """What the signer typed on the task page to sign."""

    password: str = ""
    code: str = ""
    # When the signer last signed in again at the identity provider (single sign-on), as the
    # page's session vouches; None where they did not.
    provider_at: datetime | None = None


@dataclass(frozen=True)
class Signer:
    """Someone who has just re-authenticated, and how."""

    user: Any
    method: str  # password | code | provider, or two of them joined by +


@dataclass(frozen=True)
class Attempt:
    """The outcome of checking credentials: the signer, or why not."""

    signer: Signer | None
    problem: str = ""
    field: str = "password"
    failures: int = 0  # in a row, this one included; 0 when it did not count
    locked_until: datetime | None = None


def printed_name(user: Any) -> str:
    return user.get_full_name() or user.username


def has_code(user: Any) -> bool:
    """Whether the person signs with an authenticator app's code too."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def needs(user: Any) -> list[str]:
    """How this person re-authenticates to sign: their password, or a fresh sign-in at the
    identity provider for those who sign in with it ("provider"), and the code of their
    authenticator app where they have one."""
    if sso.signs_with_provider(user):
        fields = ["provider"]
    else:
        fields = ["password"] if user.has_usable_password() else []
    return [*fields, "code"] if has_code(user) else fields


def check(user: Any, credentials: SigningCredentials, now: datetime) -> Attempt:
    """Check what the signer typed, counting failures in a row (its own transaction: a failure
    stays counted however the decision ends)."""
    wanted = needs(user)
    if not wanted:
        return Attempt(
            None,
            "you have no password to sign with: set up an authenticator app on your profile "
            "page to sign decisions",
        )
    if "provider" in wanted and not _fresh(credentials.provider_at, now):
        minutes = sso.FRESH_SIGN_IN_SECONDS // 60
        return Attempt(
            None,
            f"sign in again at the identity provider to sign (it counts for {minutes} minutes)",
            field="provider",
        )
    missing = [
        field for field in wanted if field != "provider" and not getattr(credentials, field).strip()
    ]
    if missing:
        # Not an attempt: nothing was typed.
        what = "your password" if missing[0] == "password" else "the code of your app"
        return Attempt(None, f"enter {what} to sign", field=missing[0])
    with transaction.atomic():
        lockout, _ = SigningLockout.objects.select_for_update().get_or_create(user=user)
        if lockout.locked_until is not None and now < lockout.locked_until:
            return Attempt(None, _locked_message(lockout.locked_until), locked_until=None)
        wrong = _wrong_field(user, credentials, wanted)
        if wrong is None:
            lockout.failures = 0
            lockout.locked_until = None
            lockout.save(update_fields=["failures", "locked_until"])
            return Attempt(Signer(user, "+".join(wanted)))
        failures = lockout.failures + 1
        locked_until = now + SIGNING_LOCK if failures >= SIGNING_ATTEMPTS else None
        lockout.failures = 0 if locked_until else failures
        lockout.locked_until = locked_until
        lockout.save(update_fields=["failures", "locked_until"])
    what = "the password" if wrong == "password" else "the code"
    if locked_until is not None:
        problem = f"{what} is wrong; {_locked_message(locked_until)}"
    else:
        left = SIGNING_ATTEMPTS - failures
        attempts = "attempt" if left == 1 else "attempts"
        problem = f"{what} is wrong; {left} more {attempts} before signing is locked"
    return Attempt(None, problem, wrong, failures, locked_until)


def _fresh(at: datetime | None, now: datetime) -> bool:
    """A sign-in again at the provider, recent enough to sign with (clocks may differ a bit)."""
    if at is None:
        return False
    age = (now - at).total_seconds()
    return -sso.LEEWAY_SECONDS <= age <= sso.FRESH_SIGN_IN_SECONDS


def _wrong_field(user: Any, credentials: SigningCredentials, wanted: list[str]) -> str | None:
    if "password" in wanted and not user.check_password(credentials.password):
        return "password"
    if "code" in wanted:
        code = credentials.code.strip().replace(" ", "")
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
        if len(code) > MAX_CODE or not any(device.verify_token(code) for device in devices):
            return "code"
    return None


def _locked_message(until: datetime) -> str:
    minutes = int(SIGNING_LOCK.total_seconds() // 60)
    return (
        f"signing is locked for {minutes} minutes after {SIGNING_ATTEMPTS} failed attempts; "
        f"try again after {moment(until)}"
    )


def sign(
    signer: Signer,
    *,
    meaning: str,
    instance_id: int,
    task_id: int,
    event: str,
    comment: str,
    artifacts: Sequence[Mapping[str, Any]],
    at: datetime,
) -> dict[str, Any]:
    """The signature record of a decision, stored with it and in its audit event."""
    record = {
        "signer": signer.user.username,
        "name": printed_name(signer.user),
        "signed_at": timezone.localtime(at).isoformat(),
        "time_zone": timezone.get_current_timezone_name(),
        "meaning": meaning,
        "method": signer.method,
    }
    signed = _signed(record, instance_id, task_id, event, comment, artifacts)
    return {**record, "digest": _digest(signed)}


def is_intact(decision: Decision) -> bool:
    """Whether a decision's signature still signs this very decision."""
    record = dict(decision.signature or {})
    digest = record.pop("digest", None)
    if not digest:
        return False
    task = decision.task
    signed = _signed(
        record,
        task.instance_id,
        task.pk,
        decision.event,
        decision.comment,
        decision.artifact_versions,
    )
    return _digest(signed) == digest


def _signed(
    record: Mapping[str, Any],
    instance_id: int,
    task_id: int,
    event: str,
    comment: str,
    artifacts: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    return {
        **record,
        "instance": instance_id,
        "task": task_id,
        "decision": event,
        "comment": comment,
        "artifacts": [
            {"name": a.get("name"), "version": a.get("version"), "sha256": a.get("sha256")}
            for a in artifacts
        ],
    }


def _digest(signed: Mapping[str, Any]) -> str:
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe(signature: Mapping[str, Any]) -> str:
    """'Signed by Vera Director on 4 Dec 2026, 19:30 CET: Approved as Director'."""
    at = datetime.fromisoformat(signature["signed_at"])
    return f"Signed by {signature['name']} on {moment(at)}: {signature['meaning']}"


# -- the authenticator app's code, set up from the profile page


def code_setup_start(*, user: Any) -> TOTPDevice:
    """A new, unconfirmed authenticator for the person (replacing an unconfirmed one): the key
    their app reads; it signs nothing until they confirm it with a code."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def pending_code_setup(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def code_setup_confirm(*, user: Any, code: str) -> TOTPDevice:
    """Confirm the pending authenticator with a code it shows: from then on, signing asks for
    a code too. Replaces an earlier confirmed one."""
    code = (code or "").strip().replace(" ", "")
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
        if device is None:
            raise InvalidInput(
                "start setting up an authenticator app first", {"code": ["Nothing to confirm."]}
            )
        if len(code) > MAX_CODE or not device.verify_token(code):
            raise InvalidInput(
                "that code is not the one your app shows now",
                {"code": ["Type the code your app shows now (6 digits)."]},
            )
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return device


def code_remove(*, user: Any, password: str) -> None:
    """Stop asking for a code when signing; the password confirms it is the person."""
    if not user.has_usable_password():
        raise InvalidInput(
            "without a password, the app is how you sign: it cannot be removed",
            {"password": ["Set up a new app instead; it replaces this one."]},
        )
    if not user.check_password(password or ""):
        raise InvalidInput(
            "the password is wrong", {"password": ["Enter your password to remove the app."]}
        )
    TOTPDevice.objects.filter(user=user).delete()

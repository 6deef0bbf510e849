"""Personal API tokens: made, shown once, stored as a hash, revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from accounts.people import is_choosable
from approvals.models import ApiToken
from approvals.permissions import is_active_user
from approvals.services.errors import InvalidInput, NotAllowed

TOKEN_PREFIX = "sgf_"
MAX_TOKENS_PER_USER = 20
MAX_NAME = 100


def token_hash(plaintext: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def looks_like_token(text: str) -> bool:
    return text.startswith(TOKEN_PREFIX) and 20 <= len(text) <= 100


def token_check(
    *, user: Any, name: str, now: datetime, expires_at: datetime | None, lock: bool = False
) -> str:
    """The cleaned name, or InvalidInput saying what is wrong (also used by the admin form)."""
    if not user.is_active:
        raise InvalidInput("inactive user", {"user": ["This user is inactive."]})
    if not is_choosable(user):
        raise InvalidInput("not a person", {"user": ["Choose a person's account."]})
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a name is required", {"name": ["Name the token (what uses it)."]})
    if len(name) > MAX_NAME:
        raise InvalidInput("the name is too long", {"name": [f"At most {MAX_NAME} characters."]})
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expiry in the past", {"expires_at": ["Choose a future date."]})
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if lock:
        live = live.select_for_update()
    names = set(live.values_list("name", flat=True))
    if name in names:
        raise InvalidInput("name in use", {"name": ["You already have a token with this name."]})
    if len(names) >= MAX_TOKENS_PER_USER:
        raise InvalidInput(
            "too many tokens",
            {"name": [f"At most {MAX_TOKENS_PER_USER} tokens; revoke one you no longer use."]},
        )
    return name


@transaction.atomic
def token_create(
    *, user: Any, name: str, actor: Any, now: datetime, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user` and its plaintext, which is never stored and cannot be shown again.
    Users make their own; staff with the add permission make them for anyone (the admin)."""
    if not is_active_user(actor):
        raise NotAllowed("sign in to make API tokens")
    if actor.pk != user.pk and not actor.has_perm("approvals.add_apitoken"):
        raise NotAllowed("you may not make tokens for someone else")
    name = token_check(user=user, name=name, now=now, expires_at=expires_at, lock=True)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user,
                name=name,
                prefix=plaintext[: len(TOKEN_PREFIX) + 6],
                key_hash=token_hash(plaintext),
                created_at=now,
                expires_at=expires_at,
            )
    except IntegrityError:
        # Two tabs creating the same name at once: the unique constraint decides.
        raise InvalidInput(
            "name in use", {"name": ["You already have a token with this name."]}
        ) from None
    return token, plaintext


@transaction.atomic
def token_revoke(*, token_id: int, actor: Any, now: datetime) -> ApiToken:
    """Revoke at once: the next request with it is refused. Revoking twice is a no-op."""
    token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
    allowed = token is not None and is_active_user(actor)
    if allowed and token.user_id != actor.pk:
        allowed = actor.has_perm("approvals.change_apitoken")
    if not allowed:
        raise NotAllowed("no such token")
    if token.revoked_at is None:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
    return token


def tokens_revoke_all(*, user: Any, now: datetime) -> int:
    """Revoke every live token of `user`; how many were live."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)


@receiver(post_save, sender=get_user_model(), dispatch_uid="revoke-tokens-of-deactivated")
def _revoke_tokens_of_deactivated(sender: Any, instance: Any, **kwargs: Any) -> None:
    # However an account is deactivated (the admin, a script, the identity provider's sign-in),
    # its tokens stop for good: activating it again does not bring them back.
    if not instance.is_active:
        tokens_revoke_all(user=instance, now=timezone.now())

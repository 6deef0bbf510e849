"""Single sign-on with an OpenID Connect provider (README, "Single sign-on").

mozilla-django-oidc runs the authorization code flow: state, nonce and a PKCE verifier kept in
the session, the code exchanged at the token endpoint, the ID token's signature checked against
the provider's JWKS. This module adds what the library leaves to its user:

- the provider's endpoints from its discovery document (OIDC_ISSUER/.well-known/...);
- the ID token's audience, issuer and expiry checked, not only its signature;
- people matched by issuer and subject (ExternalIdentity), never by e-mail; created or updated
  (name, e-mail) at each sign-in; refused when their e-mail domain is not allowed;
- the provider's groups turned into roles (ProviderGroupRole), roles given and taken away at
  each sign-in but for those kept locally (KeptRole), each change recorded (RoleChange);
- the provider's end-session URL for RP-initiated logout;
- signing in again on demand (prompt=login, max_age=0) to sign a decision: the provider must
  have asked for the password then (its `auth_time`), for the person already signed in here.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from accounts.models import ExternalIdentity, KeptRole, ProviderGroupRole, RoleChange, User

logger = logging.getLogger(__name__)

BACKEND = "accounts.sso.ProviderBackend"
SIGNING_ALGORITHM = "RS256"
# How long the discovery document is trusted before it is fetched again.
DISCOVERY_SECONDS = 3600
# Clock difference tolerated between the provider and this server on exp, iat and nbf.
LEEWAY_SECONDS = 60
# A fresh sign-in at the provider signs decisions for this long, in this session.
FRESH_SIGN_IN_SECONDS = 300
_REAUTH_PENDING = "signoff_reauth_pending"
_FRESH_SIGN_IN = "signoff_fresh_sign_in"


class SignInRefused(Exception):
    """A sign-in with the provider that must not go through; the message says why, in words a
    person can act on (it is shown on the page)."""


class ProviderUnavailable(SignInRefused):
    pass


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


def local_login_allowed() -> bool:
    return settings.LOCAL_LOGIN or not enabled()


# ----- Discovery

_discovered: dict[str, tuple[float, dict[str, Any]]] = {}
_discovered_lock = threading.Lock()


def forget_provider() -> None:
    with _discovered_lock:
        _discovered.clear()


def provider() -> dict[str, Any]:
    """The issuer's discovery document, fetched at most once an hour per process."""
    issuer = settings.OIDC_ISSUER
    with _discovered_lock:
        cached = _discovered.get(issuer)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("identity provider discovery failed at %s: %s", url, exc)
        raise ProviderUnavailable(
            "The identity provider could not be reached; try again in a moment."
        ) from None
    missing = [
        key
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not document.get(key)
    ]
    if missing or document["issuer"].rstrip("/") != issuer:
        logger.error(
            "identity provider discovery at %s is unusable: issuer %r, missing %s",
            url,
            document.get("issuer"),
            missing,
        )
        raise ProviderUnavailable("The identity provider's configuration does not match.")
    with _discovered_lock:
        _discovered[issuer] = (time.monotonic() + DISCOVERY_SECONDS, document)
    return document


_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def oidc_setting(name: str, *default: Any) -> Any:
    """mozilla-django-oidc's settings, from ours and from the provider's discovery."""
    if name in _ENDPOINTS:
        return provider().get(_ENDPOINTS[name])
    fixed = {
        "OIDC_RP_CLIENT_ID": settings.OIDC_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": settings.OIDC_CLIENT_SECRET,
        "OIDC_RP_SCOPES": settings.OIDC_SCOPES,
        "OIDC_RP_SIGN_ALGO": SIGNING_ALGORITHM,
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        # Kept for RP-initiated logout's id_token_hint.
        "OIDC_STORE_ID_TOKEN": True,
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_TIMEOUT": settings.OIDC_TIMEOUT,
        "OIDC_CREATE_USER": True,
        "OIDC_ALLOW_UNSECURED_JWT": False,
        "OIDC_RP_IDP_SIGN_KEY": None,
    }
    if name in fixed:
        return fixed[name]
    return import_from_settings(name, *default)


# ----- The backend


class ProviderBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with our checks and our user model. It does nothing but in
    the callback view (which passes the nonce), and reads the provider's discovery only then."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library's __init__ reads the endpoints; here they wait for a sign-in: Django
        # makes a backend for every password sign-in and every session's user too.
        self.UserModel = User

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if request is None or "nonce" not in kwargs or not enabled():
            return None
        self.OIDC_OP_TOKEN_ENDPOINT = oidc_setting("OIDC_OP_TOKEN_ENDPOINT")
        self.OIDC_OP_USER_ENDPOINT = oidc_setting("OIDC_OP_USER_ENDPOINT")
        self.OIDC_OP_JWKS_ENDPOINT = oidc_setting("OIDC_OP_JWKS_ENDPOINT")
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = SIGNING_ALGORITHM
        self.OIDC_RP_IDP_SIGN_KEY = None
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            logger.warning("identity provider refused or failed the code exchange: %s", exc)
            raise SignInRefused(
                "The identity provider did not accept this sign-in; start again."
            ) from None

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        return verify_id_token(payload, key)

    def get_userinfo(self, access_token: str, id_token: str, payload: dict) -> dict[str, Any]:
        # The ID token's claims, verified, completed by the userinfo endpoint's when there is
        # one, which must be about the same subject (OpenID Connect Core 5.3.2).
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            extra = super().get_userinfo(access_token, id_token, payload)
            if extra.get("sub") != payload.get("sub"):
                raise SignInRefused("The identity provider answered about someone else.")
            claims = {**extra, **payload}
        return claims

    def get_user(self, user_id: Any) -> User | None:
        # The library's version skips Django's check: a deactivated account's sessions end.
        return ModelBackend.get_user(self, user_id)

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict) -> User:
        claims = self.get_userinfo(access_token, id_token, payload)
        if reauth_pending(self.request):
            # Signing in again to sign: the person signed in here, nobody else, nothing updated.
            return signed_in_again(self.request, claims, issuer=settings.OIDC_ISSUER)
        return sign_in(claims, issuer=settings.OIDC_ISSUER, now=timezone.now())


def verify_id_token(token: str, key: Any) -> dict[str, Any]:
    """The ID token's claims once its signature (RS256 only), audience, issuer and times hold."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise SignInRefused("The identity provider's token is not a JWT.") from None
    if header.get("alg") != SIGNING_ALGORITHM:
        raise SignInRefused(f"The identity provider's token is not signed with {SIGNING_ALGORITHM}")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[SIGNING_ALGORITHM],
            audience=settings.OIDC_CLIENT_ID,
            issuer=settings.OIDC_ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidAudienceError:
        raise SignInRefused(
            "The identity provider's token was made for another application."
        ) from None
    except jwt.InvalidIssuerError:
        raise SignInRefused("The identity provider's token comes from another issuer.") from None
    except jwt.InvalidSignatureError:
        raise SignInRefused(
            "The identity provider's token is not signed by one of its published keys."
        ) from None
    except jwt.ExpiredSignatureError:
        raise SignInRefused("The identity provider's token has expired; start again.") from None
    except jwt.InvalidTokenError as exc:
        raise SignInRefused(f"The identity provider's token is not valid ({exc}).") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.OIDC_CLIENT_ID:
        raise SignInRefused("The identity provider's token was made for another application.")
    return claims


# ----- Who signs in, and their roles


def groups_of(claims: dict[str, Any]) -> set[str]:
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return set()
    return {str(group) for group in value}


def check_email(claims: dict[str, Any]) -> str:
    """The person's e-mail address, or a refusal when the allowed domains exclude it."""
    email = str(claims.get("email") or "").strip()
    allowed = settings.OIDC_ALLOWED_DOMAINS
    if not allowed:
        return email
    domain = email.rpartition("@")[2].lower()
    if not email or "@" not in email or domain not in allowed:
        raise SignInRefused(
            f"Accounts of {domain or 'this provider'} may not sign in here; use your "
            f"{' or '.join(allowed)} account."
        )
    if claims.get("email_verified") is False:
        raise SignInRefused("Your e-mail address is not verified at the identity provider.")
    return email


def sign_in(claims: dict[str, Any], *, issuer: str, now: Any) -> User:
    """The person these verified claims describe, created or brought up to date, with the roles
    the provider's groups give. Refused, with nothing written, for a domain not allowed or a
    deactivated account."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise SignInRefused("The identity provider did not say who you are.")
    email = check_email(claims)
    with transaction.atomic():
        identity = _identity(issuer, subject)
        if identity is None:
            try:
                with transaction.atomic():
                    user = User.objects.create_user(_free_username(claims, email), email=email)
                    identity = ExternalIdentity.objects.create(
                        user=user, issuer=issuer, subject=subject
                    )
            except IntegrityError:
                # The same person's first sign-in in another tab won, or took the username.
                identity = _identity(issuer, subject)
                if identity is None:
                    raise SignInRefused("Signing in did not complete; start again.") from None
        user = identity.user
        if not user.is_active:
            raise SignInRefused("Your account here is deactivated; ask an administrator.")
        _update_person(user, claims, email)
        identity.last_sign_in_at = now
        identity.save(update_fields=["last_sign_in_at"])
        apply_provider_roles(user, groups_of(claims), issuer=issuer, now=now)
    return user


def _identity(issuer: str, subject: str) -> ExternalIdentity | None:
    return (
        ExternalIdentity.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )


def _update_person(user: User, claims: dict[str, Any], email: str) -> None:
    first = str(claims.get("given_name") or "")[:150]
    last = str(claims.get("family_name") or "")[:150]
    if not first and not last and claims.get("name"):
        first, _, last = str(claims["name"]).partition(" ")
    changed = {"first_name": first[:150], "last_name": last[:150], "email": email[:254]}
    changed = {field: value for field, value in changed.items() if getattr(user, field) != value}
    for field, value in changed.items():
        setattr(user, field, value)
    if changed:
        user.save(update_fields=list(changed))


_NOT_IN_USERNAME = re.compile(r"[^\w.@+-]")


def _free_username(claims: dict[str, Any], email: str) -> str:
    """A username for a new account: the provider's preferred one, else the e-mail's, made
    unique with a number (an existing local account is never taken over)."""
    wanted = str(claims.get("preferred_username") or email.partition("@")[0] or "user")
    base = _NOT_IN_USERNAME.sub("", wanted)[:140] or "user"
    candidate, number = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def apply_provider_roles(
    user: User, groups: set[str], *, issuer: str, now: Any
) -> RoleChange | None:
    """Give the roles the provider's groups map to, take away the other mapped roles (except
    those kept locally), and record what changed."""
    mappings = list(ProviderGroupRole.objects.select_related("role"))
    managed = {mapping.role_id: mapping.role.name for mapping in mappings}
    wanted = {mapping.role_id for mapping in mappings if mapping.provider_group in groups}
    current = set(user.groups.values_list("pk", flat=True))
    kept = set(KeptRole.objects.filter(user=user).values_list("role_id", flat=True))
    added = wanted - current
    removed = (current & managed.keys()) - wanted - kept
    if not added and not removed:
        return None
    user.groups.add(*Group.objects.filter(pk__in=added))
    user.groups.remove(*Group.objects.filter(pk__in=removed))
    change = RoleChange.objects.create(
        user=user,
        username=user.username,
        at=now,
        issuer=issuer,
        added=sorted(managed[pk] for pk in added),
        removed=sorted(managed[pk] for pk in removed),
    )
    logger.info("%s for user %s", change, user.pk)
    return change


@transaction.atomic
def keep_role(*, user: User, role: Group, note: str = "") -> KeptRole:
    """Make `role` a local membership of `user` that sign-in leaves alone (and give it)."""
    kept, _ = KeptRole.objects.get_or_create(user=user, role=role, defaults={"note": note})
    user.groups.add(role)
    return kept


# ----- Signing out


def end_session_url(request: Any) -> str | None:
    """Where to send someone signing out so that the provider ends its session too: its
    end_session_endpoint, when discovery names one and they signed in with it."""
    id_token = request.session.get("oidc_id_token")
    if not enabled() or not id_token:
        return None
    try:
        endpoint = provider().get("end_session_endpoint")
    except ProviderUnavailable:
        return None
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": settings.OIDC_CLIENT_ID,
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("login")),
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


# ----- Signing in again, to sign a decision


def signs_with_provider(user: Any) -> bool:
    """Whether this person re-authenticates at the provider to sign (single sign-on is on and
    they sign in with it)."""
    return (
        enabled()
        and ExternalIdentity.objects.filter(user=user, issuer=settings.OIDC_ISSUER).exists()
    )


def start_reauth(request: Any) -> None:
    """The next answer from the provider is a sign-in again of the person signed in now."""
    request.session[_REAUTH_PENDING] = {"user": request.user.pk, "since": int(time.time())}
    request.session.pop(_FRESH_SIGN_IN, None)


def reauth_pending(request: Any) -> dict[str, int] | None:
    return request.session.get(_REAUTH_PENDING) if request is not None else None


def signed_in_again(request: Any, claims: dict[str, Any], *, issuer: str) -> User:
    """The person signed in here, after the provider asked them for their password again:
    refused when the provider answered for someone else, or did not ask (auth_time)."""
    pending = request.session.pop(_REAUTH_PENDING)
    identity = ExternalIdentity.objects.filter(
        issuer=issuer, subject=str(claims.get("sub") or "")
    ).first()
    if identity is None or identity.user_id != pending["user"]:
        raise SignInRefused(
            "You signed in again at the identity provider as someone else: sign as yourself."
        )
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int | float) or auth_time < pending["since"] - LEEWAY_SECONDS:
        raise SignInRefused(
            "The identity provider did not ask for your password again; try once more."
        )
    request.session[_FRESH_SIGN_IN] = {"user": identity.user_id, "at": int(auth_time)}
    return identity.user


def fresh_sign_in(request: Any) -> Any:
    """When the person signed in here last signed in again at the provider, if that was less
    than FRESH_SIGN_IN_SECONDS ago (an aware datetime), else None."""
    fresh = request.session.get(_FRESH_SIGN_IN)
    if not fresh or fresh.get("user") != request.user.pk:
        return None
    if time.time() - fresh["at"] > FRESH_SIGN_IN_SECONDS:
        return None
    return datetime.fromtimestamp(fresh["at"], tz=UTC)


def spend_fresh_sign_in(request: Any) -> None:
    """One fresh sign-in signs one decision."""
    request.session.pop(_FRESH_SIGN_IN, None)

"""Demo people and roles, so a fresh install has someone to log in as and something to try.

Idempotent: run at every start by the launcher, it adds what is missing and changes nothing that
an admin may have edited since (descriptions, names, passwords, extra memberships).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import Role, User

DEMO_PASSWORD = "signoff-demo"

ROLES: dict[str, str] = {
    "manager": "Line managers: first review of their team's requests.",
    "director": "Second-level approval for large amounts; receives escalations from managers.",
    "finance": "Checks budgets and releases payments.",
    "operator": "Runs the workflows day to day: retries, skips or cancels stuck requests.",
    "warehouse": "Picks and packs goods for approved orders.",
    "shipping": "Books carriers and dispatches approved orders.",
    "security": "Reviews access requests and vendor onboarding.",
}


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    roles: tuple[str, ...] = ()
    superuser: bool = False
    # "app_label.codename" given to the user directly (a superuser has them all anyway).
    permissions: tuple[str, ...] = ()
    # Their manager in the org chart (a username), set when the user is created.
    manager: str = ""

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "Alice", "Anders", manager="bob"),
    DemoUser("bob", "Bob", "Baker", ("manager",), manager="dave"),
    DemoUser("carol", "Carol", "Chen", ("manager",), manager="dave"),
    DemoUser("dave", "Dave", "Dubois", ("director",)),
    DemoUser("erin", "Erin", "Evans", ("finance",), manager="dave"),
    DemoUser("oscar", "Oscar", "Ortiz", ("operator", "warehouse", "shipping")),
    # Three in security: the access request's admin-level step needs a quorum of two who did
    # not already approve its first step (four eyes).
    DemoUser("sam", "Sam", "Silva", ("security",)),
    DemoUser("tina", "Tina", "Tran", ("security",)),
    DemoUser("uma", "Uma", "Ueda", ("security",)),
    # A process owner: sees the insights (dashboards, heat map) and exports the signed audit
    # trail for the auditors, and places legal holds; decides nothing.
    DemoUser(
        "owner",
        "Olive",
        "Owner",
        permissions=("approvals.view_insights", "approvals.export_audit", "approvals.hold_legal"),
    ),
    DemoUser("admin", "Ada", "Admin", superuser=True),
)


@dataclass
class DemoResult:
    created_users: list[str] = field(default_factory=list)
    existing_users: list[str] = field(default_factory=list)
    created_roles: list[str] = field(default_factory=list)
    passwords_set: bool = False
    passwords_disabled: list[str] = field(default_factory=list)


@transaction.atomic
def ensure_demo_users() -> DemoResult:
    """Create the demo roles and users that are missing.

    The demo password is set only with DEBUG on; otherwise demo users get an unusable password,
    because a well-known password on a reachable server is an open door.
    """
    result = DemoResult(passwords_set=settings.DEBUG)
    groups: dict[str, Group] = {}
    for name, description in ROLES.items():
        group, created = Group.objects.get_or_create(name=name)
        Role.objects.get_or_create(group=group, defaults={"description": description})
        groups[name] = group
        if created:
            result.created_roles.append(name)

    for spec in USERS:
        user, created = User.objects.get_or_create(
            username=spec.username,
            defaults={
                "first_name": spec.first_name,
                "last_name": spec.last_name,
                "email": spec.email,
                "is_staff": spec.superuser,
                "is_superuser": spec.superuser,
            },
        )
        # Also for an existing user without a usable password (seeded once with DEBUG off, now
        # run in development); a password someone chose is never overwritten.
        if settings.DEBUG and (created or not user.has_usable_password()):
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        elif created or (user.has_usable_password() and user.check_password(DEMO_PASSWORD)):
            # With DEBUG off, a demo password left from development is public knowledge, not a
            # password someone chose: it is disabled like a new user's.
            if not created:
                result.passwords_disabled.append(spec.username)
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(*(groups[role] for role in spec.roles))
        for name in spec.permissions:
            app_label, codename = name.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        (result.created_users if created else result.existing_users).append(spec.username)
    for spec in USERS:
        if spec.manager and spec.username in result.created_users:
            User.objects.filter(username=spec.username).update(
                manager=User.objects.get(username=spec.manager)
            )
    return result

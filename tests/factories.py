"""factory_boy factories for people and roles."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group
from factory.django import DjangoModelFactory

from accounts.models import Role, User

TEST_PASSWORD = "correct-horse-battery-staple"


class GroupFactory(DjangoModelFactory):
    """A role: a group with its Role row, as the demo data and the admin create them."""

    class Meta:
        model = Group
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"role-{n}")
    role = factory.RelatedFactory(
        "tests.factories.RoleFactory",
        factory_related_name="group",
        description=factory.LazyAttribute(lambda o: f"The {o.factory_parent.name} role."),
    )


class RoleFactory(DjangoModelFactory):
    class Meta:
        model = Role
        django_get_or_create = ("group",)

    group = factory.SubFactory(GroupFactory, role=None)
    description = ""


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def groups(self, create: bool, extracted: list[Group] | None, **_: object) -> None:
        # UserFactory(groups=[GroupFactory(name="manager")]) puts the user in those roles.
        if create and extracted:
            self.groups.add(*extracted)

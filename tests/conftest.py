"""Named people for every test: the outsider, who may do nothing, is always at hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations

from accounts.models import User
from approvals.caching import forget_all
from tests.browser.csp import violations_report, watch_csp
from tests.factories import GroupFactory, UserFactory


@pytest.fixture(scope="session", autouse=True)
def _flush_as_a_superuser() -> Iterator[None]:
    """Transactional tests are cleaned up with TRUNCATE, which the audit table refuses (its
    append-only trigger, on PostgreSQL). The suite connects as a superuser and empties the
    tables as only one can: in replica mode, where no trigger fires (as the tampering tests)."""
    plain = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: DatabaseOperations, sql_list: list[str]) -> None:
        plain(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> None:
    """A rolled-back test leaves rows behind in the per-process caches, with no signal."""
    forget_all()


@pytest.fixture
def requester(db: None) -> User:
    return UserFactory(username="rita", first_name="Rita", last_name="Requester")


@pytest.fixture
def reviewer(db: None) -> User:
    return UserFactory(
        username="rob",
        first_name="Rob",
        last_name="Reviewer",
        groups=[GroupFactory(name="manager")],
    )


@pytest.fixture
def admin_user(db: None) -> User:
    return UserFactory(
        username="ada", first_name="Ada", last_name="Admin", is_staff=True, is_superuser=True
    )


@pytest.fixture
def outsider(db: None) -> User:
    return UserFactory(username="otto", first_name="Otto", last_name="Outsider")


@pytest.fixture
def csp_guard() -> Iterator[Callable[[Any], Any]]:
    """csp_guard(context) → the same Playwright browser context, watched: the test fails if any
    page in it breaks the Content-Security-Policy (tests/browser/csp.py)."""
    violations: list[str] = []
    yield lambda context: watch_csp(context, violations)
    if violations:
        pytest.fail(violations_report(violations))


@pytest.fixture
def anonymous(db: None) -> User:
    """django-guardian's anonymous user: an active row in the users table, and no person."""
    from guardian.utils import get_anonymous_user

    return get_anonymous_user()

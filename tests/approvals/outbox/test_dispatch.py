"""After commit, a failing send is logged and never raised into the code that committed, and
the sends queued after it still run."""

from __future__ import annotations

import functools
import logging

import pytest
from django.db import transaction

from approvals.outbox.dispatch import after_commit, queue

pytestmark = pytest.mark.django_db(transaction=True)


def refuse(what: str) -> None:
    raise ConnectionError(f"the broker refused {what}")


def test_a_failing_partial_after_commit_is_logged_and_the_next_ones_run(caplog):
    ran: list[str] = []
    with caplog.at_level(logging.ERROR, logger="approvals.outbox.dispatch"), transaction.atomic():
        # A partial has no __qualname__, which Django's own robust hook logging reads.
        after_commit(functools.partial(refuse, "a Slack message"))
        after_commit(functools.partial(ran.append, "webhook"))
    assert ran == ["webhook"]
    assert "the broker refused a Slack message" in caplog.text
    assert "refuse" in caplog.text  # the log names what failed


def test_outside_a_transaction_it_runs_at_once_and_is_logged_the_same(caplog):
    with caplog.at_level(logging.ERROR, logger="approvals.outbox.dispatch"):
        after_commit(functools.partial(refuse, "a push"))
    assert "the broker refused a push" in caplog.text


def test_queueing_to_a_task_that_is_not_registered_is_logged_not_raised(caplog):
    with caplog.at_level(logging.WARNING, logger="approvals.outbox.dispatch"):
        assert queue("approvals.tasks.no_such_task", [(1,)]) == 0
    assert "no_such_task" in caplog.text

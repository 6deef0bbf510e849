from __future__ import annotations

import pytest

from approvals.models import WorkflowDefinition
from tests.approvals.flows import publish
from tests.approvals.triggers.flows import report_flow
from tests.factories import UserFactory

# Before the first tick the tests take (a Monday 08:00 in Paris): ticks before a version's
# publication are not owed.
PUBLISHED_AT = "2026-11-01T00:00:00+00:00"


@pytest.fixture
def bot(db):
    """The service account schedules and hooks start requests as."""
    return UserFactory(username="report-bot", first_name="Report", last_name="Bot")


def publish_at(config, published_at: str = PUBLISHED_AT) -> WorkflowDefinition:
    definition = publish(config)
    WorkflowDefinition.objects.filter(pk=definition.pk).update(published_at=published_at)
    definition.refresh_from_db()
    return definition


@pytest.fixture
def weekly(bot, reviewer) -> WorkflowDefinition:
    """weekly-report, published, with one schedule (Mondays 08:00 Paris) run as the bot."""
    return publish_at(
        report_flow(
            {
                "cron": "0 8 * * MON",
                "tz": "Europe/Paris",
                "context": {"team": "ops"},
                "run_as": "report-bot",
            }
        )
    )


from tests.approvals.api.conftest import _fresh_throttle_counts, api  # noqa: E402, F401

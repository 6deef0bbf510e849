from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from approvals.services.instances import instance_start
from tests.approvals.flows import publish
from tests.approvals.integrations.email.mail_flows import NOW, desk_flow
from tests.approvals.integrations.email.smtp_server import SMTPSink, smtp_sink


@pytest.fixture
def smtp(settings) -> Iterator[SMTPSink]:
    """Signoff's e-mail goes to a real SMTP server on a free local port."""
    # aiosmtpd logs every command it reads at INFO.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with smtp_sink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = sink.host
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        settings.SITE_URL = "https://signoff.example.com"
        settings.DEFAULT_FROM_EMAIL = "Signoff <signoff@example.com>"
        settings.EMAIL_NOTIFICATIONS = True
        yield sink


@pytest.fixture
def desks(smtp, requester, reviewer, reviewer2):
    """Rita asks for standing desks; Rob and Mia (managers) are mailed."""
    publish(desk_flow())
    return instance_start(
        definition_key="review",
        context={"title": "Standing desks", "amount": 15000, "currency": "EUR"},
        title="Standing desks",
        actor=requester,
        now=NOW,
    )

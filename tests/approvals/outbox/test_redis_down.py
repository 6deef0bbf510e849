"""Redis unreachable (the broker, the channel layer, the API's throttle cache) while Slack and
webhooks are configured: a decision from the web page or the API gets its normal answer, and
what it could not send stays due for the sweep, which sends it once the broker is back.

Transactions really commit here (transaction=True), so the after-commit sends run inside the
request, where a failure would have turned the committed decision into a 500."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import kombu.pools
import pytest
from celery import current_app
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import (
    Decision,
    DeliveryStatus,
    InstanceStatus,
    SlackMessage,
    SlackMessageStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from approvals.outbox import retry
from approvals.services.api_tokens import token_create
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down(settings) -> Iterator[str]:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.NOTIFY_PUSH = "layer"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url}]},
        }
    }
    settings.CACHES = {
        **settings.CACHES,
        "api": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url},
    }
    previous = current_app.conf.broker_url
    point_the_broker_at(url)
    try:
        yield url
    finally:
        point_the_broker_at(previous)


def point_the_broker_at(url: str) -> None:
    """Kombu keeps process-wide pools of connections and of producers per broker address, and
    Celery holds on to the ones it took (eager tasks use them too). All are closed and
    forgotten, so that neither this test nor a later one on the process sends through a pool
    made for the other address, or through a closed one."""
    current_app.conf.broker_url = url
    kombu.pools.reset()
    current_app._pool = None
    current_app.amqp._producer_pool = None


@pytest.fixture
def integrations(settings, requester, reviewer):
    settings.SLACK_BOT_TOKEN = "xoxb-test-token"
    settings.SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
    settings.SLACK_API_URL = "http://127.0.0.1:9/api/"  # never called: nothing is sent
    for user, slack_id in ((requester, "URITA"), (reviewer, "UROB")):
        user.slack_user_id = slack_id
        user.save()
    WebhookSubscription.objects.create(
        name="ERP",
        url="http://127.0.0.1:9/hook",
        secret="whsec-test-0123456789abcdef",
        event_types=["task.decided", "instance.completed"],
    )


@pytest.fixture
def task(integrations, requester):
    publish(review_flow())
    instance = instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900},
        actor=requester,
        now=NOW,
    )
    return instance.tasks.get()


def left_for_the_sweep() -> tuple[int, int]:
    pending_slack = SlackMessage.objects.filter(status=SlackMessageStatus.PENDING).count()
    pending_hooks = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count()
    return pending_slack, pending_hooks


def assert_decided_and_left_for_the_sweep(task) -> None:
    decision = Decision.objects.get(task=task)
    assert decision.event == "APPROVE"
    assert decision.task.instance.status == InstanceStatus.COMPLETED
    slack, hooks = left_for_the_sweep()
    assert slack >= 1  # the requester's direct message about the decision
    assert hooks == 2  # task.decided and instance.completed
    # The sweep finds them due, to send once the broker answers again.
    due = {q.name: q.due(now=timezone.now()) for q in retry.queues()}
    assert len(due["slack"]) == slack and len(due["webhooks"]) == hooks


def test_a_web_decision_gets_its_answer_while_redis_is_down(redis_down, task, reviewer):
    client = Client(raise_request_exception=False)
    client.force_login(reviewer)
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == "/inbox/"
    assert_decided_and_left_for_the_sweep(task)


def test_an_api_decision_gets_its_answer_while_redis_is_down(redis_down, task, reviewer):
    _, plaintext = token_create(user=reviewer, name="ci", actor=reviewer, now=timezone.now())
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = client.post(f"/api/v1/tasks/{task.pk}/decide/", {"decision": "APPROVE"}, "json")
    assert response.status_code == 200, response.content[:500]
    assert response.json()["instance"]["status"] == "completed"
    assert client.get(f"/api/v1/tasks/{task.pk}/").status_code == 200
    assert_decided_and_left_for_the_sweep(task)


# ----- the same on a real server started with REDIS_URL pointing at a closed port

SEED = """
import json
from django.test import Client
from django.utils import timezone
from approvals.models import WebhookSubscription
from approvals.services.api_tokens import token_create
from approvals.services.instances import instance_start
from tests.approvals.flows import publish, review_flow
from tests.factories import GroupFactory, UserFactory
publish(review_flow())
rita = UserFactory(username="rita", slack_user_id="URITA")
rob = UserFactory(username="rob", slack_user_id="UROB", groups=[GroupFactory(name="manager")])
WebhookSubscription.objects.create(name="ERP", url="http://127.0.0.1:9/hook", secret="s" * 20,
                                   event_types=["task.decided", "instance.completed"])
tasks = [instance_start(definition_key="review", context={"title": t, "amount": 5}, actor=rita,
                        now=timezone.now()).tasks.get().pk for t in ("Web", "API")]
client = Client()
client.force_login(rob)
_, token = token_create(user=rob, name="ci", actor=rob, now=timezone.now())
print("SEED=" + json.dumps({"session": client.cookies["sessionid"].value, "token": token,
                            "tasks": tasks}))
"""

LEFT = """
from approvals.models import DeliveryStatus, SlackMessage, WebhookDelivery, Decision
print("LEFT=%d,%d,%d" % (Decision.objects.count(),
    SlackMessage.objects.filter(status="pending").count(),
    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count()))
"""


@pytest.mark.slow
def test_a_real_server_decides_from_the_page_and_the_api_while_redis_is_down(tmp_path):
    import json
    import re
    import urllib.request
    from http.cookiejar import CookieJar

    from tests.approvals.notify.live_server import Daphne
    from tests.processes import child_env, manage, migrate

    env = child_env(
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        DEBUG="true",
        SECRET_KEY="redis-down-test-secret-key-0123456789-redis-down-test",
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_SIGNING_SECRET="8f742231b10e8888abcd99yyyzzz85a5",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    migrate(env)
    seeded = manage("shell", "-c", SEED, env=env)
    assert seeded.returncode == 0, seeded.stderr
    line = next(x for x in seeded.stdout.splitlines() if x.startswith("SEED="))
    seed = json.loads(line.removeprefix("SEED="))
    web_task, api_task = seed["tasks"]
    server = Daphne(env, tmp_path / "daphne.log").start(healthy=False)
    try:
        jar = CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        browser.addheaders = [("Cookie", f"sessionid={seed['session']}")]
        page = browser.open(f"{server.http}/tasks/{web_task}/").read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        cookie = next(c.value for c in jar if c.name == "csrftoken")
        browser.addheaders = [("Cookie", f"sessionid={seed['session']}; csrftoken={cookie}")]
        decided = browser.open(
            f"{server.http}/tasks/{web_task}/decide/",
            data=f"csrfmiddlewaretoken={csrf}&decision=APPROVE".encode(),
        )
        assert decided.status == 200 and decided.url.endswith("/inbox/")

        api = urllib.request.Request(
            f"{server.http}/api/v1/tasks/{api_task}/decide/",
            data=b'{"decision": "APPROVE"}',
            headers={
                "Authorization": f"Bearer {seed['token']}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(api, timeout=30) as answer:
            assert answer.status == 200
            assert json.loads(answer.read())["instance"]["status"] == "completed"
    finally:
        server.stop()
    left = manage("shell", "-c", LEFT, env=env)
    counts = next(x for x in left.stdout.splitlines() if x.startswith("LEFT="))
    decisions, slack, hooks = (int(n) for n in counts.removeprefix("LEFT=").split(","))
    assert decisions == 2 and slack >= 2 and hooks == 4

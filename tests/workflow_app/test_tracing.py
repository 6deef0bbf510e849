"""OpenTelemetry: one trace from the click to the last delivery, with the engine's attributes.

An in-memory exporter collects the spans of the web request (Django's test client under the
Django instrumentation), the service call, the commit and the worker's delivery (Celery's tasks
run eagerly, through the Celery instrumentation), and of the webhook the step posts.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import current_app
from django.test import Client
from django.utils import timezone
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from approvals import tracing
from approvals.models import OutboxMessage, Task, WorkflowInstance
from approvals.outbox.sweep import outbox_sweep
from approvals.services.instances import instance_start
from tests.approvals.flows import publish
from workflow_app.observability import tracing as setup_tracing

pytestmark = pytest.mark.django_db(transaction=True)

_EXPORTER = InMemorySpanExporter()
_PROVIDER_SET: list[bool] = []


@pytest.fixture
def spans(settings) -> Iterator[InMemorySpanExporter]:
    settings.WEBHOOK_SECRET = "trace-secret"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
    if not _PROVIDER_SET:
        # The global tracer provider can be set once per process: the first test sets it.
        setup_tracing.setup("test", exporter=_EXPORTER)
        _PROVIDER_SET.append(True)
    else:
        setup_tracing.instrument()
        tracing.turn_on()
    _EXPORTER.clear()
    current_app.conf.task_always_eager = True
    try:
        yield _EXPORTER
    finally:
        current_app.conf.task_always_eager = False
        setup_tracing.uninstrument()
        _EXPORTER.clear()


class Receiver(BaseHTTPRequestHandler):
    headers_seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).headers_seen.append(dict(self.headers))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.headers_seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def flow(url: str) -> dict:
    """review → on APPROVE, an automated webhook step → done."""
    return {
        "id": "traced",
        "title": "Traced",
        "initial": "review",
        "settings": {"webhook_url": url},
        "form": {"type": "object", "properties": {"title": {"type": "string"}}},
        "states": {
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {"APPROVE": "posting", "REJECT": "refused"},
            },
            "posting": {"invoke": {"src": "webhook", "onDone": "done"}},
            "done": {"type": "final"},
            "refused": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def by_name(finished: list, name: str) -> list:
    return [s for s in finished if s.name == name]


def test_one_trace_from_the_click_to_the_delivery(
    spans, requester, reviewer, receiver, django_capture_on_commit_callbacks
) -> None:
    publish(flow(receiver))
    instance = instance_start(
        definition_key="traced", context={"title": "A"}, actor=requester, now=timezone.now()
    )
    task = Task.objects.get(instance=instance)
    spans.clear()
    client = Client()
    client.force_login(reviewer)
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    assert response.status_code in (200, 302), response.content
    assert WorkflowInstance.objects.get(pk=instance.pk).state == "done"

    finished = spans.get_finished_spans()
    (request,) = [s for s in finished if s.parent is None]
    assert request.attributes.get("http.request.method", request.attributes.get("http.method"))
    trace_id = request.context.trace_id
    assert {s.context.trace_id for s in finished} == {trace_id}, [s.name for s in finished]

    (decide,) = by_name(finished, "signoff.task_decide")
    assert (
        dict(decide.attributes).items()
        >= {
            "signoff.workflow": "traced",
            "signoff.instance": instance.pk,
            "signoff.task": task.pk,
            "signoff.event": "APPROVE",
            "signoff.from_state": "review",
            "signoff.to_state": "posting",
        }.items()
    )
    # The worker's delivery (the step) is a child of the request, through the Celery task.
    (step,) = by_name(finished, "signoff.action_execute")
    assert step.attributes["signoff.action"] == "webhook"
    assert step.attributes["signoff.instance"] == instance.pk
    (recorded,) = by_name(finished, "signoff.step_record")
    assert recorded.attributes["signoff.to_state"] == "done"
    assert any(s.name.startswith(("run/", "apply_async/")) for s in finished)
    ids = {s.context.span_id: s for s in finished}

    def ancestors(span) -> list[str]:
        names = []
        while span.parent is not None:
            span = ids[span.parent.span_id]
            names.append(span.name)
        return names

    # Queued when the decision's transaction committed, at the end of the service call.
    assert ancestors(step)[:2] == ["run/approvals.tasks.run_action", "signoff.task_decide"]
    assert ancestors(step)[-1] == request.name
    assert ancestors(recorded)[0] == "signoff.action_execute"
    # The database calls are spans too (psycopg), on PostgreSQL.
    # The webhook carried the trace: its traceparent names this trace and the step's span.
    (headers,) = Receiver.headers_seen
    traceparent = {k.lower(): v for k, v in headers.items()}["traceparent"]
    _version, sent_trace, sent_span, _flags = traceparent.split("-")
    assert int(sent_trace, 16) == trace_id
    assert int(sent_span, 16) == step.context.span_id
    message = OutboxMessage.objects.get(instance=instance, topic="action.invoke")
    assert message.trace_context["traceparent"].split("-")[1] == sent_trace


def test_a_delivery_sent_by_the_sweep_joins_the_trace_that_caused_it(
    spans, requester, reviewer, receiver, settings
) -> None:
    publish(flow(receiver))
    instance = instance_start(
        definition_key="traced", context={"title": "B"}, actor=requester, now=timezone.now()
    )
    task = Task.objects.get(instance=instance)
    spans.clear()
    client = Client()
    client.force_login(reviewer)
    # What the request queued goes to a queue no worker reads (as if the broker had lost it):
    # the sweep sends the step again later, from beat's trace.
    lost = f"trace-test-{uuid.uuid4().hex[:8]}"
    current_app.conf.task_always_eager = False
    current_app.conf.task_default_queue = lost
    try:
        client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    finally:
        current_app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
        current_app.conf.task_always_eager = True
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_delete(lost)
    assert WorkflowInstance.objects.get(pk=instance.pk).state == "posting"
    (request,) = [s for s in spans.get_finished_spans() if s.parent is None]
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("beat: outbox sweep") as sweep:
        outbox_sweep(now=timezone.now() + timezone.timedelta(minutes=5))
    assert WorkflowInstance.objects.get(pk=instance.pk).state == "done"
    (step,) = by_name(spans.get_finished_spans(), "signoff.action_execute")
    assert step.context.trace_id == request.context.trace_id
    # Linked to the sweep's trace (the Celery task the sweep ran it in).
    assert [link.context.trace_id for link in step.links] == [sweep.get_span_context().trace_id]


def test_off_nothing_is_stored_or_sent(
    requester, reviewer, receiver, settings, django_capture_on_commit_callbacks
) -> None:
    settings.WEBHOOK_SECRET = "trace-secret"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
    assert not tracing.ON
    publish(flow(receiver))
    instance = instance_start(
        definition_key="traced", context={"title": "C"}, actor=requester, now=timezone.now()
    )
    task = Task.objects.get(instance=instance)
    current_app.conf.task_always_eager = True
    try:
        client = Client()
        client.force_login(reviewer)
        client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    finally:
        current_app.conf.task_always_eager = False
    assert WorkflowInstance.objects.get(pk=instance.pk).state == "done"
    assert OutboxMessage.objects.get(instance=instance, topic="action.invoke").trace_context == {}
    assert "traceparent" not in {k.lower() for k in Receiver.headers_seen[0]}
    assert "x-signoff-signature" in {k.lower() for k in Receiver.headers_seen[0]}


def test_off_without_an_endpoint(settings) -> None:
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = ""
    assert setup_tracing.setup("web") is False
    assert not tracing.ON

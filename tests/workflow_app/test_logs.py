"""Structured logs: the context fields on every line, the request id, and nothing secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from approvals import logcontext
from approvals.models import Task
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from workflow_app.env import env_choice
from workflow_app.observability import logs


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Every record logged meanwhile, as the JSON format writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        logcontext.clear()


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_request_gets_an_id_and_answers_it(client: Client, db: None) -> None:
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-4f2a.17")["X-Request-ID"] == "lb-4f2a.17"
    # An id that could forge a log line or carry a secret's length is replaced.
    for bad in ("a b", 'x"}{', "é", "x" * 101, "line\nbreak"):
        answered = client.get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert answered != bad and len(answered) == 32


def test_a_line_logged_during_a_request_names_it_and_its_user(
    client: Client, lines, reviewer
) -> None:
    client.force_login(reviewer)
    response = client.get("/tasks/987654/", HTTP_X_REQUEST_ID="req-1")
    assert response.status_code == 404
    (line,) = [r for r in records(lines) if r["logger"] == "django.request"]
    assert line["request_id"] == "req-1"
    assert line["user_id"] == reviewer.pk
    assert line["level"] == "WARNING" and line["message"].startswith("Not Found: /tasks/987654/")
    assert {"time", "trace_id", "span_id", "instance_id", "process"} <= set(line)
    # After the request nothing stays bound.
    logging.getLogger("signoff.test").info("after")
    assert records(lines)[-1]["request_id"] is None and records(lines)[-1]["user_id"] is None


def test_an_anonymous_request_has_no_user(client: Client, lines, db: None) -> None:
    client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-2")
    (line,) = [r for r in records(lines) if r["logger"] == "django.request"]
    assert line["request_id"] == "req-2" and line["user_id"] is None


def test_lines_after_a_service_call_name_the_instance(lines, requester, reviewer) -> None:
    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "A", "amount": 5}, actor=requester, now=NOW
    )
    task = Task.objects.get(instance=instance)
    logcontext.clear()
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    logging.getLogger("signoff.test").info("decided")
    assert records(lines)[-1]["instance_id"] == instance.pk


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("token sgf_AbCdEf0123456789_xyz used", "token sgf_[redacted] used"),
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer [redacted]"),
        ("posting to https://hooks.example.com/in?key=s3cr3t&x=1 failed", None),
        ("slack xoxb-1234-5678-abcdef said", "slack xox-[redacted] said"),
        ("GET /tasks/3/?token=abc123def456", "GET /tasks/3/?token=[redacted]"),
        ("cookie sessionid=0123456789abcdef;", "cookie sessionid=[redacted];"),
    ],
)
def test_redaction(text: str, kept: str | None) -> None:
    redacted = logs.redact(text)
    if kept is not None:
        assert redacted == kept
    else:
        assert "s3cr3t" not in redacted and "https://hooks.example.com/in?[redacted]" in redacted


def test_configured_secrets_never_reach_a_line(settings, lines) -> None:
    settings.WEBHOOK_SECRET = "webhook-secret-value-42"
    logs._secrets = None
    try:
        logging.getLogger("signoff.test").warning("signing with %s", settings.WEBHOOK_SECRET)
        logging.getLogger("signoff.test").warning("key %s", settings.SECRET_KEY)
    finally:
        logs._secrets = None
    text = lines.getvalue()
    assert "webhook-secret-value-42" not in text and settings.SECRET_KEY not in text
    assert text.count("[redacted]") == 2


def test_log_format_is_console_or_json(monkeypatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert env_choice("LOG_FORMAT", "console", ("console", "json")) == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT='xml' is not one of: console"):
        env_choice("LOG_FORMAT", "console", ("console", "json"))

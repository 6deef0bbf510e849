"""Turns OpenTelemetry on at process start when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Then the web (asgi.py), each worker child (celery.py, worker_process_init: the exporter's
thread must start after the fork) and beat get a tracer provider that exports by OTLP over
HTTP, the Django, Celery, psycopg and requests instrumentations, and the engine's own spans
(approvals/tracing.py). Without the variable nothing is installed and nothing is traced.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from approvals import tracing

_instrumented = False


def setup(process: str, *, exporter: Any = None) -> bool:
    """Trace this process; `exporter` (tests: an in-memory one) instead of OTLP. Returns
    whether tracing is on."""
    if exporter is None and not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create(
        {"service.name": settings.OTEL_SERVICE_NAME, "signoff.process": process}
    )
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS, _TIMEOUT...) itself.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument()
    tracing.turn_on()
    return True


def instrument() -> None:
    global _instrumented
    if _instrumented:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    # No SQL commenter: statements stay as written (and prepared statements shared).
    PsycopgInstrumentor().instrument(enable_commenter=False)
    RequestsInstrumentor().instrument()
    _instrumented = True


def uninstrument() -> None:
    """Tests: back to no instrumentation."""
    global _instrumented
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    for instrumentor in (
        DjangoInstrumentor(),
        CeleryInstrumentor(),
        PsycopgInstrumentor(),
        RequestsInstrumentor(),
    ):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    tracing.turn_on(False)
    _instrumented = False

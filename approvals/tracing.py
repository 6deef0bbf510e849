"""OpenTelemetry spans of the engine (docs/observability.md, "Traces").

Off unless `workflow_app/observability/tracing.py` turned it on at process start (when
OTEL_EXPORTER_OTLP_ENDPOINT is set): then `ON` is true, and otherwise every helper here returns
at once, so tracing costs nothing when it is off.

- `service_span("signoff.task_decide")` wraps a service function in a span named after it, with
  the task, instance and event it was called with; the `Run` adds the workflow, the instance and
  the from/to states of the transitions it takes (`annotate`).
- `carrier()` is the current trace context as W3C headers (`traceparent`, `tracestate`), stored
  with each outbox message and sent with each webhook; `delivery_span` starts the span of a
  delivery in the worker as a child of the stored context, so one trace runs from the click to
  the last delivery even when the sweep, not the request, sent it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ON = False
F = TypeVar("F", bound=Callable[..., Any])

_tracer = trace.get_tracer("signoff")
_propagator = TraceContextTextMapPropagator()
# Keyword arguments of the services recorded as span attributes, under these names.
_ARGUMENTS = {
    "task_id": "signoff.task",
    "instance_id": "signoff.instance",
    "event": "signoff.event",
    "definition_key": "signoff.workflow",
    "timer_id": "signoff.timer",
    "message_id": "signoff.message",
}


def turn_on(on: bool = True) -> None:
    global ON
    ON = on


def service_span(name: str) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        @functools.wraps(func)
        def traced(*args: Any, **kwargs: Any) -> Any:
            if not ON:
                return func(*args, **kwargs)
            with _tracer.start_as_current_span(name) as span:
                for argument, attribute in _ARGUMENTS.items():
                    value = kwargs.get(argument)
                    if isinstance(value, str | int):
                        span.set_attribute(attribute, value)
                return func(*args, **kwargs)

        return traced  # type: ignore[return-value]

    return decorator


def annotate(**attributes: Any) -> None:
    """Attributes of the current span (`signoff.` prefixed), where one is recording."""
    if not ON:
        return
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in attributes.items():
            if value is not None and value != "":
                span.set_attribute(f"signoff.{key}", value)


def carrier() -> dict[str, str]:
    """The current span's context as W3C trace-context headers; empty when tracing is off."""
    if not ON:
        return {}
    headers: dict[str, str] = {}
    _propagator.inject(headers)
    return headers


@contextmanager
def delivery_span(name: str, stored: Mapping[str, str] | None, **attributes: Any) -> Iterator[None]:
    """The span of delivering one outbox message. A child of the current span when that is in
    the stored trace already (the message came straight from the request, through Celery's
    headers); else (the sweep sent it) a child of the stored context, linked to the sweep."""
    if not ON:
        yield
        return
    current = trace.get_current_span().get_span_context()
    parent = _propagator.extract(dict(stored)) if stored else None
    stored_span = trace.get_current_span(parent).get_span_context() if parent else None
    if stored_span is None or not stored_span.is_valid or stored_span.trace_id == current.trace_id:
        context, links = None, ()
    else:
        context = parent
        links = [trace.Link(current)] if current.is_valid else []
    token = otel_context.attach(context) if context is not None else None
    try:
        with _tracer.start_as_current_span(name, links=links) as span:
            for key, value in attributes.items():
                if value is not None:
                    span.set_attribute(f"signoff.{key}", value)
            yield
    finally:
        if token is not None:
            otel_context.detach(token)

"""`GET /metrics`: the samples of every process, in Prometheus's text format.

Answers 404 unless METRICS_TOKEN is set, then only to `Authorization: Bearer <token>`.
The counters and histograms are defined in `approvals/metrics.py`.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

import approvals.metrics  # noqa: F401  (defines the metrics, so a fresh process shows them too)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("a valid Bearer token is needed\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

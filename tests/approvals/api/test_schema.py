"""The OpenAPI schema and the documentation pages, which load nothing from a CDN."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_describes_every_endpoint(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert set(schema["paths"]) == {
        "/api/v1/workflows/",
        "/api/v1/workflows/{key}/instances/",
        "/api/v1/asks/",
        "/api/v1/instances/",
        "/api/v1/instances/{id}/",
        "/api/v1/instances/{id}/events/",
        "/api/v1/instances/{id}/history/",
        "/api/v1/instances/{id}/history/verify/",
        "/api/v1/instances/{id}/artifacts/",
        "/api/v1/instances/{id}/artifacts/{name}/versions/{number}/",
        "/api/v1/instances/{id}/artifacts/{name}/versions/{number}/content/",
        "/api/v1/instances/{id}/comments/",
        "/api/v1/callbacks/{token}/{outcome}",
        "/api/v1/tasks/",
        "/api/v1/tasks/{id}/",
        "/api/v1/tasks/{id}/claim/",
        "/api/v1/tasks/{id}/unclaim/",
        "/api/v1/tasks/{id}/decide/",
        "/api/v1/tasks/{id}/delegate/",
        "/api/v1/insights/{key}/",
        "/api/v1/instances/{id}/at/",
    }
    start = schema["paths"]["/api/v1/workflows/{key}/instances/"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "429"} <= set(start["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in start["parameters"])
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    insights = schema["paths"]["/api/v1/insights/{key}/"]["get"]
    assert {"200", "400", "401", "403", "404"} <= set(insights["responses"])
    assert {"since", "until", "version"} <= {p["name"] for p in insights["parameters"]}


def test_docs_page_uses_only_local_assets(client, settings, tmp_path):
    # Collected and served by WhiteNoise as in production (pytest-django turns DEBUG off).
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://(?!testserver)", html.split("<body")[1]), "no outside URL"
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        b"".join(served.streaming_content)
        served.close()


def test_unknown_api_paths_are_json_404(api, requester):
    for path in ["/api/v1/instances/abc/", "/api/v1/tasks/-3/claim/", "/api/v2/"]:
        response = api(requester).get(path)
        assert response.status_code == 404, path
        assert response.json() == {"code": "not_found", "detail": "Not found."}

"""The replay page of a request (/requests/<id>/replay/?seq=N): a slider and a list of the
points in time of its audit trail; at the chosen one, the diagram with the states active then,
the tasks open then and who held them, and the context as it was (approvals/replay.py).
For whoever may see the request; 404 for anyone else."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from approvals import history
from approvals.formatting import reader_time_zone
from approvals.machine.diagram import render_svg
from approvals.replay import NoSuchPoint, snapshot_at
from approvals.sensitive import MASK, is_masked
from approvals.services.definitions import definition_config


@login_required
@require_safe
def instance_replay(request: HttpRequest, instance_id: int) -> HttpResponse:
    from approvals.views import _visible_instance

    instance = _visible_instance(request, instance_id)
    reader_time_zone(request)
    raw = request.GET.get("seq") or str(instance.audit_seq)
    error = ""
    try:
        snapshot = snapshot_at(instance, int(raw))
    except (ValueError, NoSuchPoint):
        error = f"Choose a point from 1 to {instance.audit_seq}."
        snapshot = snapshot_at(instance, instance.audit_seq)
    visited = instance.audit_events.filter(seq__lte=snapshot.seq).values_list("to_state", flat=True)
    diagram = mark_safe(  # our own SVG of escaped names (approvals/machine/diagram.py)
        render_svg(
            definition_config(instance.definition),
            active=snapshot.states,
            visited=list(visited),
            reader=True,
        )
    )
    context_rows = [(name, _shown(value)) for name, value in snapshot.context.items()]
    return render(
        request,
        "approvals/replay.html",
        {
            "instance": instance,
            "snapshot": snapshot,
            "points": history.timeline(instance),
            "diagram": diagram,
            "context_rows": context_rows,
            "error": error,
        },
        status=400 if error else 200,
    )


def _shown(value: Any) -> str:
    """A replayed context value as text; a sensitive one, which the trail keeps as its hash,
    as the mask."""
    if isinstance(value, str):
        return value
    return MASK if is_masked(value) else json.dumps(value, ensure_ascii=False)

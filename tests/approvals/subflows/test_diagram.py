"""A sub-workflow step is drawn with a marker and names the workflow it starts."""

from __future__ import annotations

from approvals.machine.diagram import render_svg
from tests.approvals.subflows.flows import parent_flow


def test_a_sub_workflow_step_has_the_call_marker():
    svg = render_svg(parent_flow())
    assert svg.count('class="sd-subflow-marker"') == 1
    onboard = svg.split('data-state="onboard"')[1].split("data-state=")[0]
    assert "sd-subflow" in svg.split('data-state="onboard"')[0].rsplit("<g", 1)[1]
    assert "sub-workflow vendor-onboarding" in onboard and "sd-subflow-marker" in onboard
    reader = render_svg(parent_flow(), reader=True)
    assert "Sub-request: vendor-onboarding" in reader

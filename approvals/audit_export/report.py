"""The audit report of one request as a PDF (ReportLab): its facts and chain head, whether the
chain verifies, the timeline, every decision with its comment and any signature its audit
event records, and the documents' versions with their SHA-256."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from approvals.models import ArtifactVersion, AuditEvent, WorkflowInstance
from approvals.services.audit import check_chains

DECIDED = "task.decided"


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class _Styles:
    def __init__(self) -> None:
        sheet = getSampleStyleSheet()
        self.title = sheet["Title"]
        self.h2 = sheet["Heading2"]
        self.body = sheet["BodyText"]
        self.small = ParagraphStyle("small", parent=sheet["BodyText"], fontSize=8, leading=10)
        self.mono = ParagraphStyle("mono", parent=self.small, fontName="Courier")

    def p(self, text: Any, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(escape(_text(text)), style or self.small)


GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


# What a decision's audit event holds that the report shows on lines of their own.
SHOWN = {"decision", "comment", "artifacts", "on_behalf_of", "signature"}


def _signature_lines(data: dict[str, Any]) -> list[str]:
    """The signature a decision's event records: at the top of its data, or in the data the
    decider sent with it."""
    sent = data.get("data") if isinstance(data.get("data"), dict) else {}
    signature = data.get("signature") or sent.get("signature")
    if not signature:
        return []
    if isinstance(signature, dict):
        return [f"Signature {key}: {_text(value)}" for key, value in sorted(signature.items())]
    return [f"Signature: {_text(signature)}"]


def _decision_lines(event: dict[str, Any]) -> list[str]:
    data = event["data"] or {}
    lines = [
        f"#{event['seq']} {_utc(event['at'])}: {event['actor_name'] or 'system'} chose "
        f"{data.get('decision', '?')} at {event['to_state']}"
    ]
    if data.get("on_behalf_of"):
        lines.append(f"On behalf of {data['on_behalf_of']}")
    lines.append(f"Comment: {data.get('comment') or '(none)'}")
    lines += _signature_lines(data)
    if data.get("artifacts"):
        lines.append(f"Documents seen: {_text(data['artifacts'])}")
    lines += [f"Also recorded, {key}: {_text(data[key])}" for key in sorted(set(data) - SHOWN)]
    return lines


def audit_report_pdf(instance: WorkflowInstance) -> bytes:
    s = _Styles()
    events = list(
        AuditEvent.objects.filter(instance=instance)
        .order_by("seq")
        .values("seq", "at", "actor_name", "channel", "event", "from_state", "to_state", "data")
    )
    result = next(iter(check_chains([instance.pk])), None)
    verdict = (
        "verifies"
        if result and not result.problem
        else f"does NOT verify: {result and result.problem}"
    )
    story: list[Any] = [
        Paragraph(escape(f"Audit report: request #{instance.pk}"), s.title),
        s.p(instance.title, s.body),
        Spacer(1, 4 * mm),
    ]
    facts = [
        ("Workflow", f"{instance.definition.key} v{instance.definition.version}"),
        ("Business key", instance.business_key or "-"),
        ("Requester", instance.requester.get_username()),
        ("Status", f"{instance.get_status_display()} (state {instance.state})"),
        ("Started", _utc(instance.created_at)),
        ("Ended", _utc(instance.completed_at) or "-"),
        ("Chain head", f"#{instance.audit_seq} {instance.audit_head}"),
        ("Chain", f"{len(events)} events; the chain {verdict}"),
        ("Report made", _utc(datetime.now(UTC))),
    ]
    story.append(
        Table(
            [[s.p(k), s.p(v, s.mono if k == "Chain head" else s.small)] for k, v in facts],
            colWidths=[35 * mm, 140 * mm],
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
        )
    )

    story += [Paragraph("Timeline", s.h2)]
    rows = [[s.p(h) for h in ("#", "When", "Who", "Channel", "Event", "From -> to")]]
    for e in events:
        move = f"{e['from_state']} -> {e['to_state']}" if e["from_state"] else e["to_state"]
        rows.append(
            [
                s.p(e["seq"]),
                s.p(_utc(e["at"])),
                s.p(e["actor_name"] or "system"),
                s.p(e["channel"]),
                s.p(e["event"]),
                s.p(move),
            ]
        )
    story.append(
        LongTable(
            rows,
            colWidths=[10 * mm, 35 * mm, 25 * mm, 17 * mm, 40 * mm, 48 * mm],
            repeatRows=1,
            style=GRID,
        )
    )

    story += [Paragraph("Decisions", s.h2)]
    decisions = [e for e in events if e["event"] == DECIDED]
    if not decisions:
        story.append(s.p("No decision yet.", s.body))
    for e in decisions:
        lines = _decision_lines(e)
        story.append(Table([[s.p(line)] for line in lines], colWidths=[175 * mm], style=GRID))
        story.append(Spacer(1, 2 * mm))

    story += [Paragraph("Documents", s.h2)]
    versions = ArtifactVersion.objects.filter(artifact__instance=instance).select_related(
        "artifact", "added_by"
    )
    rows = [[s.p(h) for h in ("Document", "File", "Added", "SHA-256")]]
    for v in versions.order_by("artifact__name", "number"):
        rows.append(
            [
                s.p(f"{v.artifact.name} v{v.number} (event #{v.audit_seq})"),
                s.p(f"{v.filename}, {v.size} bytes, {v.media_type}"),
                s.p(f"{v.added_by.get_username()}, {_utc(v.added_at)}"),
                s.p(v.sha256, s.mono),
            ]
        )
    if len(rows) == 1:
        story.append(s.p("No documents.", s.body))
    else:
        story.append(
            LongTable(
                rows, colWidths=[35 * mm, 45 * mm, 40 * mm, 55 * mm], repeatRows=1, style=GRID
            )
        )

    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Audit report: request #{instance.pk}",
        author="Signoff",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    ).build(story)
    return buffer.getvalue()

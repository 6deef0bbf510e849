"""Every figure of approvals/insights.py on hand-made histories whose answers are worked out by
hand: a loop back after changes requested, an escalation, a reminder, a withdrawal, a request
still open past its deadline, a second version, a parallel region, cover for an absent person."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import OutOfOffice
from approvals.insights import (
    Period,
    PeriodError,
    Scope,
    insights_overview,
    insights_overview_by_workflow,
    insights_overview_total,
    insights_steps,
    insights_summary,
    insights_transitions,
    insights_waiting,
    insights_workload,
    percentile,
)
from approvals.services.instances import instance_send_event, instance_start, instance_withdraw
from approvals.services.sla import task_escalate_overdue, task_remind
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import NOW, parallel_flow, publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

M = timedelta(minutes=1)
H = timedelta(hours=1)
T0 = NOW
LATER = NOW + timedelta(days=1)  # "now" for the figures
PERIOD = Period(NOW - timedelta(days=1), LATER)


def live_task(instance):
    return instance.tasks.get(status__in=["open", "claimed"])


def start(requester, title, at, **context):
    return instance_start(
        definition_key="review",
        context={"title": title, "amount": 10, **context},
        actor=requester,
        now=at,
    )


@pytest.fixture
def history(requester, reviewer, reviewer2):
    """Five requests on review v1 (SLA 2 hours, reminder after 1, then the director):

    A: claimed by rob at +30m, approved at +1h30 by mia covering for rob (away) → completed.
    B: claimed at +1h, changes requested at +3h (past due), resubmitted at +4h, claimed at +4h,
       approved at +5h → completed; its second visit of review is a rework.
    C: withdrawn at +1h → withdrawn.
    D: escalated at +2h01 to the director, claimed at +2h30, rejected at +3h → rejected.
    E: reminded at +1h, still open → open and overdue.
    """
    publish(review_flow(sla="PT2H", remind=["PT1H"], escalate_to=["director"]))
    dora = UserFactory(
        username="dora", first_name="", last_name="", groups=[GroupFactory(name="director")]
    )
    a = start(requester, "A", T0)
    b = start(requester, "B", T0)
    c = start(requester, "C", T0)
    d = start(requester, "D", T0)
    e = start(requester, "E", T0)

    task_claim(task_id=live_task(a).pk, actor=reviewer, now=T0 + 30 * M)
    OutOfOffice.objects.create(
        user=reviewer, substitute=reviewer2, starts_on=T0.date(), ends_on=T0.date()
    )
    task_decide(task_id=live_task(a).pk, event="APPROVE", actor=reviewer2, now=T0 + 90 * M)
    OutOfOffice.objects.all().delete()

    task_claim(task_id=live_task(b).pk, actor=reviewer, now=T0 + H)
    task_decide(
        task_id=live_task(b).pk,
        event="REQUEST_CHANGES",
        comment="more detail",
        actor=reviewer,
        now=T0 + 3 * H,
    )
    task_decide(task_id=live_task(b).pk, event="RESUBMIT", actor=requester, now=T0 + 4 * H)
    task_claim(task_id=live_task(b).pk, actor=reviewer, now=T0 + 4 * H)
    task_decide(task_id=live_task(b).pk, event="APPROVE", actor=reviewer, now=T0 + 5 * H)

    instance_withdraw(instance_id=c.pk, actor=requester, now=T0 + H)

    task_escalate_overdue(task_id=live_task(d).pk, now=T0 + 121 * M)
    task_claim(task_id=live_task(d).pk, actor=dora, now=T0 + 150 * M)
    task_decide(task_id=live_task(d).pk, event="REJECT", comment="no", actor=dora, now=T0 + 3 * H)

    task_remind(task_id=live_task(e).pk, now=T0 + H)
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def test_percentile_interpolates_as_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.9) == 7
    assert percentile([0, 1800, 3600, 9000], 0.5) == 2700
    assert percentile([0, 1800, 3600, 9000], 0.9) == pytest.approx(7380)


def test_overview(history):
    o = insights_overview(scope=Scope(PERIOD, "review"), now=LATER)
    assert (o.started, o.completed, o.rejected, o.withdrawn, o.cancelled, o.failed) == (
        5,
        2,
        1,
        1,
        0,
        0,
    )
    assert (o.open, o.overdue) == (1, 1)
    # Lead times: C 1h, A 1h30, D 3h, B 5h.
    assert o.lead_time_s == {"p50": 8100.0, "p90": 15840.0, "max": 18000.0}
    # Of the four ended requests (all with a deadline), A and C kept theirs.
    assert (o.with_sla, o.within_sla_ratio) == (4, 0.5)
    assert sum(n for _, n in o.throughput) == 4


def test_overview_counts_only_the_period(history):
    before = Period(NOW - timedelta(days=10), NOW - timedelta(days=2))
    o = insights_overview(scope=Scope(before, "review"), now=LATER)
    assert (o.started, o.completed, o.open) == (0, 0, 1)  # open is now, whatever the period
    assert o.lead_time_s == {"p50": None, "p90": None, "max": None}
    assert o.within_sla_ratio is None
    assert all(n == 0 for _, n in o.throughput)


def test_per_step(history):
    steps = {s.state: s for s in insights_steps(scope=Scope(PERIOD, "review"), now=LATER)}
    assert set(steps) == {"review", "changes"}
    review = steps["review"]
    # Visits A, B, B again, C, D, E; D's visit has two tasks (the escalation's successor).
    assert (review.visits, review.tasks) == (6, 7)
    # Claimed after 30m (A), 1h (B), 0 (B again), 2h30 (D).
    assert (review.wait_p50_s, review.wait_p90_s) == (2700.0, 7380.0)
    # From claim to decision: 1h (A), 2h (B), 1h (B again), 30m (D).
    assert (review.decide_p50_s, review.decide_p90_s) == (3600.0, 6120.0)
    # Finished visits: 1h30, 3h, 1h, 1h (C withdrawn), 3h; E still open.
    assert review.time_in_state_p50_s == 5400.0
    assert (review.breaches, review.reminders, review.escalations, review.reworks) == (3, 1, 1, 1)
    assert review.outcomes == {"APPROVE": 2, "REJECT": 1, "REQUEST_CHANGES": 1}
    changes = steps["changes"]
    assert (changes.visits, changes.tasks, changes.wait_p50_s, changes.decide_p50_s) == (
        1,
        1,
        0.0,
        3600.0,
    )
    assert changes.outcomes == {"RESUBMIT": 1}
    assert (changes.breaches, changes.reworks) == (0, 0)


def test_transitions_are_counted_from_the_trail(history):
    assert insights_transitions(scope=Scope(PERIOD, "review")) == {
        ("review", "approved"): 2,
        ("review", "changes"): 1,
        ("changes", "review"): 1,
        ("review", "withdrawn"): 1,
        ("review", "rejected"): 1,
    }


def test_waiting_lists_the_oldest_first(history, requester):
    f = start(requester, "F", T0 + 2 * H)
    waiting = insights_waiting(workflow="review", state="review")
    assert [w["id"] for w in waiting] == [history["e"].pk, f.pk]
    assert insights_waiting(workflow="review", state="changes") == []


def test_workload(history, reviewer, requester):
    w = insights_workload(scope=Scope(PERIOD, "review"), now=LATER)
    assert w.by_role == [{"role": "manager", "open": 1, "overdue": 1}]
    assert w.by_person == []
    totals = {row["person"]: row["total"] for row in w.decisions}
    assert totals == {
        "Rob Reviewer (rob)": 2,
        "Mia Manager (mia)": 1,
        "Rita Requester (rita)": 1,
        "dora": 1,
    }
    assert w.covering == [
        {"person": "Mia Manager (mia)", "for": "Rob Reviewer (rob)", "decided": 1, "holding": 0}
    ]
    task_claim(task_id=live_task(history["e"]).pk, actor=reviewer, now=LATER)
    w = insights_workload(scope=Scope(PERIOD, "review"), now=LATER)
    assert w.by_person == [{"person": "Rob Reviewer (rob)", "open": 1, "overdue": 1}]


def test_versions_are_apart_and_all_workflows_together(history, requester, reviewer):
    publish(review_flow())  # version 2, no deadline
    g = start(requester, "G", T0 + H)
    task_decide(task_id=live_task(g).pk, event="APPROVE", actor=reviewer, now=T0 + 2 * H)
    v1 = insights_overview(scope=Scope(PERIOD, "review", version=1), now=LATER)
    v2 = insights_overview(scope=Scope(PERIOD, "review", version=2), now=LATER)
    both = insights_overview(scope=Scope(PERIOD, "review"), now=LATER)
    everything = insights_overview(scope=Scope(PERIOD), now=LATER)
    assert (v1.started, v2.started, both.started, everything.started) == (5, 1, 6, 6)
    assert (v2.completed, v2.lead_time_s["max"], v2.within_sla_ratio) == (1, 3600.0, None)
    steps = {
        s.state: s for s in insights_steps(scope=Scope(PERIOD, "review", version=2), now=LATER)
    }
    assert (steps["review"].visits, steps["review"].outcomes) == (1, {"APPROVE": 1})


def test_parallel_regions(requester, operator):
    publish(parallel_flow())
    picker = UserFactory(username="pia", groups=[GroupFactory(name="warehouse")])
    one = instance_start(definition_key="fulfil", context={}, actor=requester, now=T0)
    task_decide(task_id=live_task(one).pk, event="PICKED", actor=picker, now=T0 + 2 * H)
    instance_send_event(instance_id=one.pk, event="LABEL_CREATED", actor=operator, now=T0 + 3 * H)
    two = instance_start(definition_key="fulfil", context={}, actor=requester, now=T0)
    instance_send_event(instance_id=two.pk, event="CANCEL", actor=operator, now=T0 + H)
    scope = Scope(PERIOD, "fulfil")
    steps = insights_steps(scope=scope, now=LATER)
    assert [s.state for s in steps] == ["fulfillment.inventory.picking"]
    assert (steps[0].visits, steps[0].outcomes, steps[0].time_in_state_p50_s) == (
        2,
        {"PICKED": 1},
        5400.0,
    )
    assert insights_transitions(scope=scope) == {
        ("fulfillment.inventory.picking", "fulfillment.inventory.packed"): 1,
        ("fulfillment.shipping.label", "fulfillment.shipping.ready"): 1,
        ("fulfillment", "shipped"): 1,
        ("fulfillment", "cancelled"): 1,
    }
    o = insights_overview(scope=scope, now=LATER)
    assert (o.completed, o.cancelled, o.lead_time_s["max"]) == (1, 1, 10800.0)


def test_summary_has_the_issues_fields(history):
    summary = insights_summary(scope=Scope(PERIOD, "review"), now=LATER)
    for name in (
        "started",
        "completed",
        "rejected",
        "withdrawn",
        "cancelled",
        "open",
        "overdue",
        "lead_time_s",
        "within_sla_ratio",
        "steps",
    ):
        assert name in summary
    review = next(s for s in summary["steps"] if s["state"] == "review")
    assert set(review) == {
        "state",
        "tasks",
        "wait_p50_s",
        "decide_p50_s",
        "decide_p90_s",
        "breaches",
        "reminders",
        "escalations",
        "reworks",
        "outcomes",
    }


def test_periods_refuse_what_cannot_be():
    with pytest.raises(PeriodError) as caught:
        Period.from_dates(NOW.date(), NOW.date() - timedelta(days=3), NOW)
    assert "until" in caught.value.errors
    with pytest.raises(PeriodError) as caught:
        Period.from_dates(NOW.date() - timedelta(days=800), NOW.date(), NOW)
    assert "since" in caught.value.errors
    one_day = Period.from_dates(NOW.date(), NOW.date(), NOW)
    assert one_day.days == 1


def test_total_adds_up_the_workflows(history, requester, operator):
    publish(parallel_flow())
    one = instance_start(definition_key="fulfil", context={}, actor=requester, now=T0)
    instance_send_event(instance_id=one.pk, event="CANCEL", actor=operator, now=T0 + H)
    parts = [o for _, o in insights_overview_by_workflow(period=PERIOD, now=LATER)]
    total = insights_overview_total(parts, period=PERIOD, now=LATER)
    direct = insights_overview(scope=Scope(PERIOD), now=LATER)
    assert total == direct
    assert (total.started, total.cancelled, total.with_sla, total.kept) == (6, 1, 4, 2)

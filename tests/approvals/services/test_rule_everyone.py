"""Rule everyone: one task given to each member of the step's roles, all must approve."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import OutOfOffice
from approvals.history import timeline
from approvals.models import Decision, InstanceStatus, Task, TaskRule, TaskStatus
from approvals.selectors import approval_progress
from approvals.services.errors import Conflict, NotAllowed
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide, task_delegate, task_reassign, task_unclaim
from tests.approvals.flows import NOW, multi_flow, publish
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(db):
    """The board: three members, one of them no longer active."""
    role = GroupFactory(name="board")
    members = [
        UserFactory(username=name, first_name=name.capitalize(), last_name="Board", groups=[role])
        for name in ("ann", "ben", "cat")
    ]
    UserFactory(username="gone", is_active=False, groups=[role])
    return members


def start(requester, rule="everyone"):
    publish(multi_flow(rule, ["board"]))
    return instance_start(definition_key="multi", context={}, actor=requester, now=NOW)


def live_tasks(instance) -> list[Task]:
    live = instance.tasks.filter(status__in=["open", "claimed"])
    return list(live.order_by("assignee__username"))


@pytest.mark.parametrize("rule", ["everyone", {"everyone": True}])
def test_each_active_member_gets_a_task_of_their_own(requester, board, rule):
    instance = start(requester, rule)
    tasks = live_tasks(instance)
    assert [t.assignee.username for t in tasks] == ["ann", "ben", "cat"]
    assert {(t.rule, t.status) for t in tasks} == {(TaskRule.EVERYONE, TaskStatus.CLAIMED)}
    assert all(list(t.candidate_groups.values_list("name", flat=True)) == ["board"] for t in tasks)


def test_the_step_moves_only_when_everyone_approved(requester, board):
    instance = start(requester)
    ann_task, ben_task, cat_task = live_tasks(instance)
    assert not task_decide(task_id=ann_task.pk, event="APPROVE", actor=board[0], now=NOW).moved
    assert approval_progress(ben_task).text == "Ann Board approved; 1 of 3"
    assert not task_decide(task_id=ben_task.pk, event="APPROVE", actor=board[1], now=NOW).moved
    last = task_decide(task_id=cat_task.pk, event="APPROVE", actor=board[2], now=NOW)
    assert last.moved and last.instance.state == "granted"
    said = [entry.text for entry in timeline(last.instance)]
    assert any("approved; 3 of 3" in text for text in said), said


def test_one_member_cannot_decide_anothers_task(requester, board):
    instance = start(requester)
    ben_task = live_tasks(instance)[1]
    with pytest.raises(NotAllowed, match="assigned to Ben Board"):
        task_decide(task_id=ben_task.pk, event="APPROVE", actor=board[0], now=NOW)
    assert not Decision.objects.exists()


def test_one_rejection_ends_the_step_and_cancels_the_others(requester, board):
    instance = start(requester)
    ann_task, ben_task, cat_task = live_tasks(instance)
    task_decide(task_id=ann_task.pk, event="APPROVE", actor=board[0], now=NOW)
    result = task_decide(task_id=ben_task.pk, event="REJECT", comment="no", actor=board[1], now=NOW)
    assert result.instance.status == InstanceStatus.REJECTED
    cat_task.refresh_from_db()
    assert cat_task.status == TaskStatus.CANCELLED


def test_the_requester_is_left_out_when_in_the_role(requester, board):
    requester.groups.add(board[0].groups.get())
    instance = start(requester)
    assert requester not in [t.assignee for t in live_tasks(instance)]
    assert len(live_tasks(instance)) == 3


def test_a_role_with_no_one_who_may_decide_refuses_to_open_the_step(requester):
    GroupFactory(name="board")
    UserFactory(username="gone", is_active=False, groups=[GroupFactory(name="board")])
    publish(multi_flow("everyone", ["board"]))
    with pytest.raises(Conflict, match="every member of board must approve this step"):
        instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    assert not Task.objects.exists()


def test_a_members_task_cannot_go_back_to_a_queue_but_can_be_delegated(requester, board):
    instance = start(requester)
    ann_task = live_tasks(instance)[0]
    with pytest.raises(Conflict, match="yours alone; delegate it instead"):
        task_unclaim(task_id=ann_task.pk, actor=board[0], now=NOW)
    helper = UserFactory(username="hal", first_name="Hal", last_name="Helper")
    successor = task_delegate(task_id=ann_task.pk, to_user_id=helper.pk, actor=board[0], now=NOW)
    assert successor.rule == TaskRule.EVERYONE and successor.assignee == helper
    assert not task_decide(task_id=successor.pk, event="APPROVE", actor=helper, now=NOW).moved
    # Delegation does not add an approval to wait for.
    assert approval_progress(live_tasks(instance)[0]).text == "Hal Helper approved; 1 of 3"


def test_a_cover_for_two_members_approves_only_once(requester, board):
    cover = UserFactory(username="cy", first_name="Cy", last_name="Cover")
    today = NOW.date()
    for member in board[:2]:
        OutOfOffice.objects.create(
            user=member, substitute=cover, starts_on=today, ends_on=today + timedelta(days=2)
        )
    instance = start(requester)
    ann_task, ben_task, _ = live_tasks(instance)
    decision = task_decide(task_id=ann_task.pk, event="APPROVE", actor=cover, now=NOW)
    assert not decision.moved
    assert Decision.objects.get().on_behalf_of == board[0]
    with pytest.raises(Conflict, match="already decided on this step"):
        task_decide(task_id=ben_task.pk, event="APPROVE", actor=cover, now=NOW)


def test_the_outsider_is_refused(requester, board, outsider):
    instance = start(requester)
    with pytest.raises(NotAllowed):
        task_decide(task_id=live_tasks(instance)[0].pk, event="APPROVE", actor=outsider, now=NOW)


def test_the_members_are_counted_when_the_step_opens(requester, board):
    """Someone who joins the role later is not asked; someone who leaves it keeps the task
    they were given and may still decide it."""
    instance = start(requester)
    role = board[0].groups.get()
    UserFactory(username="newcomer", groups=[role])
    board[2].groups.remove(role)
    ann_task, ben_task, cat_task = live_tasks(instance)
    assert len(live_tasks(instance)) == 3
    task_decide(task_id=ann_task.pk, event="APPROVE", actor=board[0], now=NOW)
    task_decide(task_id=ben_task.pk, event="APPROVE", actor=board[1], now=NOW)
    assert task_decide(task_id=cat_task.pk, event="APPROVE", actor=board[2], now=NOW).moved


def test_an_operator_hands_a_departed_members_task_to_someone_else(requester, board, operator):
    instance = start(requester)
    newcomer = UserFactory(username="newcomer", groups=[board[0].groups.get()])
    cat_task = live_tasks(instance)[2]
    board[2].is_active = False
    board[2].save()
    successor = task_reassign(task_id=cat_task.pk, to_user_id=newcomer.pk, actor=operator, now=NOW)
    assert (successor.assignee, successor.rule) == (newcomer, TaskRule.EVERYONE)
    assert approval_progress(successor).text == "No approvals yet; 3 needed"

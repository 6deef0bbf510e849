"""The discussion: safe Markdown, mentions (refused for who may not see), replies, edits within
the window with the audit, questions for the requester, decisions in the thread, the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from approvals.discussion.render import mentioned, render
from approvals.models import AuditEvent, Comment, Notification
from approvals.services.audit import verify_instances
from approvals.services.discussion import comment_add, comment_edit
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def say(instance, actor, body, **kwargs):
    return comment_add(instance_id=instance.pk, body=body, actor=actor, now=NOW, **kwargs)


def test_markdown_is_rendered_and_sanitised():
    html = render("**bold** <script>alert(1)</script> [x](javascript:alert(1)) <img onerror=x>")
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html
    assert 'rel="noopener noreferrer nofollow"' in render("[site](https://example.com)")
    assert mentioned("@rob, @mia and rob@example.com; @rob again") == ["rob", "mia"]


def test_a_comment_with_a_mention_notifies_and_is_audited(
    request_under_review, requester, reviewer
):
    colleague = UserFactory(username="mia", groups=[GroupFactory(name="manager")])
    comment = say(request_under_review, reviewer, "Which cost centre, @rita? cc @mia")
    assert sorted(u.username for u in comment.mentions.all()) == ["mia", "rita"]
    assert "<p>Which cost centre" in comment.html
    told = Notification.objects.filter(topic="comment.added")
    kinds = dict(told.values_list("recipient__username", "kind"))
    assert kinds == {"rita": "comment", "mia": "mention"}
    assert told.get(recipient=colleague).text.startswith("Rob Reviewer mentioned you")
    event = AuditEvent.objects.get(instance=request_under_review, event="comment.added")
    assert event.data["comment"] == comment.body and event.data["mentions"] == ["rita", "mia"]
    assert not list(verify_instances([request_under_review.pk]))


def test_a_mention_of_someone_who_may_not_see_is_refused_naming_them(
    request_under_review, reviewer, outsider
):
    with pytest.raises(InvalidInput, match="@otto may not see this request") as refused:
        say(request_under_review, reviewer, "What do you think, @otto?")
    assert "cannot see this request" in refused.value.field_errors["body"][0]
    with pytest.raises(InvalidInput, match="no such user: @nobody"):
        say(request_under_review, reviewer, "@nobody")
    assert not Comment.objects.exists()
    assert not Notification.objects.filter(topic="comment.added").exists()


def test_the_outsider_may_not_comment_and_bad_input_is_refused(
    request_under_review, reviewer, outsider
):
    with pytest.raises(NotAllowed, match="no such request"):
        say(request_under_review, outsider, "hello")
    with pytest.raises(InvalidInput, match="empty"):
        say(request_under_review, reviewer, "   ")
    with pytest.raises(InvalidInput, match="too long"):
        say(request_under_review, reviewer, "x" * 10_001)
    with pytest.raises(InvalidInput, match="no such comment to reply to"):
        say(request_under_review, reviewer, "hi", reply_to=999_999)


def test_replies_and_questions_answered_by_the_requester(request_under_review, requester, reviewer):
    question = say(request_under_review, reviewer, "Which cost centre?", question=True)
    assert Notification.objects.get(recipient=requester, topic="comment.added").kind == "question"
    with pytest.raises(InvalidInput, match="cannot ask themselves"):
        say(request_under_review, requester, "?", question=True)
    # A reply by someone else does not answer it; the requester's does.
    say(request_under_review, reviewer, "(the one on your badge)", reply_to=question.pk)
    question.refresh_from_db()
    assert question.answered_at is None
    answer = say(request_under_review, requester, "CC-42", reply_to=question.pk)
    question.refresh_from_db()
    assert question.answered_at == NOW and answer.reply_to == question
    request_under_review.refresh_from_db()
    assert request_under_review.state == "review"  # asking changed nothing


def test_the_author_edits_within_ten_minutes_and_the_audit_keeps_both(
    request_under_review, reviewer, requester
):
    comment = say(request_under_review, reviewer, "first words")
    with pytest.raises(NotAllowed, match="only its author"):
        comment_edit(comment_id=comment.pk, body="hijack", actor=requester, now=NOW)
    comment_edit(
        comment_id=comment.pk,
        body="better words @rita",
        actor=reviewer,
        now=NOW + timedelta(minutes=9),
    )
    comment.refresh_from_db()
    assert comment.body == "better words @rita" and comment.edited_at is not None
    event = AuditEvent.objects.get(event="comment.edited")
    assert (event.data["previous"], event.data["comment"]) == ("first words", comment.body)
    with pytest.raises(NotAllowed, match="edited for 10 minutes"):
        comment_edit(
            comment_id=comment.pk, body="late", actor=reviewer, now=NOW + timedelta(minutes=11)
        )


def test_the_page_shows_the_thread_with_decision_comments(
    client, request_under_review, requester, reviewer
):
    say(request_under_review, reviewer, "Is **this** the best price?", question=True)
    task = request_under_review.tasks.get(status__in=["open", "claimed"])
    task_decide(
        task_id=task.pk, event="REQUEST_CHANGES", comment="Cheaper, please", actor=reviewer, now=NOW
    )
    client.force_login(requester)
    html = client.get(reverse("request", args=[request_under_review.pk])).content.decode()
    assert 'id="discussion"' in html and "<strong>this</strong>" in html
    assert "question, waiting for an answer" in html
    assert "asked for changes</span>" in html and "Cheaper, please" in html
    inbox = client.get(reverse("inbox")).content.decode()
    assert 'id="questions-for-you"' in inbox and request_under_review.title in inbox


def test_posting_from_the_page_and_the_outsider_refused(
    client, request_under_review, reviewer, outsider
):
    client.force_login(reviewer)
    url = reverse("comment_post", args=[request_under_review.pk])
    response = client.post(url, {"body": "Hello @otto"}, follow=True)
    assert "Not posted: @otto cannot see this request" in response.content.decode()
    assert client.post(url, {"body": "Hello"}).status_code == 302
    assert Comment.objects.count() == 1
    client.force_login(outsider)
    assert client.post(url, {"body": "let me in"}).status_code == 404
    edit = reverse("comment_edit", args=[request_under_review.pk, Comment.objects.get().pk])
    assert client.post(edit, {"body": "mine now"}).status_code == 404
    assert Comment.objects.get().body == "Hello"


def test_the_comments_api(api, request_under_review, reviewer, requester, outsider):
    url = f"/api/v1/instances/{request_under_review.pk}/comments/"
    client = api(reviewer)
    created = client.post(
        url, {"body": "Which *cost centre*, @rita?", "reply_to": None}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == {"id", "body", "html", "author", "created_at", "mentions"}
    assert body["mentions"] == ["rita"] and "<em>cost centre</em>" in body["html"]
    assert body["author"] == "rob"
    reply = api(requester).post(url, {"body": "CC-42", "reply_to": body["id"]}, format="json")
    assert reply.status_code == 201
    listed = api(requester).get(url).json()
    assert [c["body"] for c in listed] == ["Which *cost centre*, @rita?", "CC-42"]
    refused = client.post(url, {"body": "@otto look"}, format="json")
    assert refused.status_code == 400 and "@otto" in refused.json()["detail"]
    assert api(outsider).get(url).status_code == 404
    assert api(outsider).post(url, {"body": "hi"}, format="json").status_code == 404


def test_my_requests_count_the_questions_waiting_for_my_answer(
    client, request_under_review, requester, reviewer, outsider
):
    say(request_under_review, reviewer, "Which cost centre?", question=True)
    say(request_under_review, reviewer, "And which week?", question=True)
    client.force_login(requester)
    page = client.get("/requests/").content.decode()
    assert "2 questions for you" in page
    needing = client.get("/requests/?status=needs_answer").content.decode()
    assert request_under_review.title in needing
    say(request_under_review, requester, "CC-42, week 50.")  # answers both
    assert "question" not in client.get("/requests/").content.decode().split("<tbody>")[1]
    assert request_under_review.title not in (
        client.get("/requests/?status=needs_answer").content.decode()
    )
    # Someone else's questions are not counted on an outsider's list.
    client.force_login(outsider)
    assert "questions for you" not in client.get("/requests/").content.decode()

"""Admin for webhooks: subscriptions (validated, a random secret offered), deliveries read-only
with their attempt log, and redelivery (imported by approvals.admin)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from approvals.integrations.http import target_problem
from approvals.integrations.webhooks.services import webhook_redeliver
from approvals.models import (
    WEBHOOK_EVENT_TYPES,
    InboundHook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    WorkflowDefinition,
)
from approvals.services.errors import InvalidInput
from approvals.services.inbound_hooks import inbound_hook_check, inbound_hook_create


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500, assume_scheme="https", help_text="http(s) URL that receives a signed POST."
    )
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in WEBHOOK_EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )
    workflow_keys = forms.MultipleChoiceField(
        choices=[],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only requests of these workflows; none ticked: every workflow.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "secret", "event_types", "workflow_keys", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = sorted(set(WorkflowDefinition.objects.values_list("key", flat=True)))
        keys += [k for k in (self.initial.get("workflow_keys") or []) if k not in keys]
        self.fields["workflow_keys"].choices = [(k, k) for k in keys]
        if not self.instance.pk and not self.initial.get("secret"):
            self.initial["secret"] = secrets.token_urlsafe(32)

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("https://", "http://")):
            raise forms.ValidationError("Use an http:// or https:// URL.")
        problem = target_problem(
            url, allow_private=settings.ALLOW_PRIVATE_WEBHOOK_TARGETS, resolve=True
        )
        if problem:
            raise forms.ValidationError(f"Refused: {problem}.")
        return url

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"].strip()
        if len(secret) < 16:
            raise forms.ValidationError("Use at least 16 characters (the default is random).")
        return secret


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ("name", "url", "events", "workflows", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "url")

    @admin.display(description="event types")
    def events(self, subscription: WebhookSubscription) -> str:
        return ", ".join(subscription.event_types)

    @admin.display(description="workflows")
    def workflows(self, subscription: WebhookSubscription) -> str:
        return ", ".join(subscription.workflow_keys) or "all"


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "status_code", "succeeded", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "attempt log"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event_type",
        "subscription",
        "instance",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type", "subscription")
    list_select_related = ("subscription", "instance")
    search_fields = ("event_id", "instance__title")
    date_hierarchy = "created_at"
    actions = ["redeliver"]
    inlines = [AttemptInline]
    fields = (
        "subscription",
        "event_type",
        "event_id",
        "instance",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "last_status_code",
        "last_error",
        "last_response",
        "payload_json",
    )
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_json(self, delivery: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(delivery.payload, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Redeliver selected deliveries now", permissions=["change"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = webhook_redeliver(
            delivery_ids=list(queryset.values_list("pk", flat=True)),
            actor=request.user,
            now=timezone.now(),
        )
        self.message_user(request, f"Queued {count} delivery(ies) again.", messages.SUCCESS)


class InboundHookForm(forms.ModelForm):
    class Meta:
        model = InboundHook
        fields = [
            "workflow_key",
            "name",
            "action",
            "event",
            "business_key",
            "mapping",
            "run_as",
            "is_active",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        fields = {
            "name": data.get("name") or "",
            "action": data.get("action") or "",
            "event": data.get("event") or "",
            "business_key": data.get("business_key") or "",
            "mapping": data.get("mapping") or {},
            "run_as": data.get("run_as"),
        }
        try:
            # A hook's workflow stays once made (its senders use the path).
            key = self.instance.workflow_key if self.instance.pk else data.get("workflow_key")
            inbound_hook_check(
                workflow_key=key or "",
                changing=self.instance if self.instance.pk else None,
                **fields,
            )
        except InvalidInput as exc:
            for where, problems in exc.field_errors.items():
                field = where.partition(".")[0]
                self.add_error(field if field in self.fields else None, f"{where}: {problems[0]}")
        return data


@admin.register(InboundHook)
class InboundHookAdmin(admin.ModelAdmin):
    """Inbound webhooks: made here (the secret is shown once, on the page after saving) or
    by `manage.py create_inbound_hook`; the secret is never shown again."""

    form = InboundHookForm
    list_display = ("name", "workflow_key", "action", "event", "is_active", "path")
    list_filter = ("action", "is_active")
    search_fields = ("name", "workflow_key")
    readonly_fields = ("path", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The workflow is part of the hook's path, which its senders already use.
        return ("workflow_key", "path", "created_at") if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: InboundHook, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        hook, secret = inbound_hook_create(
            workflow_key=obj.workflow_key,
            name=obj.name,
            action=obj.action,
            event=obj.event,
            business_key=obj.business_key,
            mapping=obj.mapping,
            run_as=obj.run_as,
            now=timezone.now(),
        )
        obj.pk = hook.pk
        obj.hook_id = hook.hook_id
        obj.secret = hook.secret
        obj.created_at = hook.created_at
        messages.warning(
            request,
            f"The secret of {hook} is {secret} — copy it now: it is not shown again. "
            f"Senders POST to {hook.path}.",
        )

"""Admin for API tokens, webhook subscriptions and deliveries (imported by approvals.admin)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from approvals.integrations.webhooks.services import webhook_redeliver
from approvals.models import (
    WEBHOOK_EVENT_TYPES,
    ApiToken,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    WorkflowDefinition,
)
from approvals.services.api_tokens import token_check, token_create, token_revoke
from approvals.services.errors import InvalidInput

# ----- API tokens


class ApiTokenAddForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name", "expires_at"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            data["name"] = token_check(
                user=data["user"],
                name=data["name"],
                expires_at=data.get("expires_at"),
                now=timezone.now(),
            )
        except InvalidInput as exc:
            for field, errors in exc.field_errors.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff make tokens for integration accounts here; the plaintext is shown once."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "live")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    actions = ["revoke"]
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    @admin.display(boolean=True, description="live")
    def live(self, token: ApiToken) -> bool:
        return token.revoked_at is None

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable, not editable: a token's identity is its hash; revoke and make a new one.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        # Made by the service (hash only); the plaintext waits on the request for response_add.
        token, plaintext = token_create(
            user=obj.user,
            name=obj.name,
            expires_at=obj.expires_at,
            actor=request.user,
            now=timezone.now(),
        )
        request._signoff_new_token = (token, plaintext)  # type: ignore[attr-defined]
        obj.pk, obj.prefix = token.pk, token.prefix

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url: Any = None) -> Any:
        response = TemplateResponse(
            request,
            "admin/approvals/apitoken/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "token": request._signoff_new_token[0],  # type: ignore[attr-defined]
                "plaintext": request._signoff_new_token[1],  # type: ignore[attr-defined]
                "title": "API token created",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        now = timezone.now()
        for token in queryset:
            token_revoke(token_id=token.pk, actor=request.user, now=now)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)


# ----- webhook subscriptions


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


# ----- deliveries and their log


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

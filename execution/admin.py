"""Read-only admin pages for event subscriptions, their deliveries and their history (the CWOM admin's
read-only mixin: nobody adds, changes or deletes here, superusers included)."""

from __future__ import annotations

from django.contrib import admin

from cwom.admin.readonly import ReadOnlyAdmin

from .models import Delivery, Subscription, SubscriptionEvent


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("id", "url", "active", "kinds", "actions", "repo", "dead_in_a_row", "paused_at", "created_at")
    list_filter = ("active",)
    list_select_related = ("repo",)
    search_fields = ("id", "url", "description")
    # The secret's nonce and digest and the lease are not shown.
    fields = (
        "id",
        "url",
        "kinds",
        "actions",
        "repo",
        "description",
        "active",
        "paused_at",
        "paused_reason",
        "dead_in_a_row",
        "created_by",
        "created_at",
        "updated_at",
        "lease_until",
    )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "subscription",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "next_attempt_at",
    )
    list_filter = ("status",)
    list_select_related = ("subscription", "event")
    search_fields = ("subscription__id",)
    raw_id_fields = ("subscription", "event")


@admin.register(SubscriptionEvent)
class SubscriptionEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "subscription_id", "action", "principal", "at")
    list_filter = ("action",)
    search_fields = ("subscription_id",)

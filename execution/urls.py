"""The execution endpoints, included by ``cwom_site.urls`` under ``/api/v1/`` (with or without a trailing slash)."""

from typing import Any

from django.urls import re_path

from cwom.api.views import ID_PATH_REGEX as ID

from . import subscription_views, views


def subscription_routes() -> list[Any]:
    """``/subscriptions``: the collection, one subscription, its deliveries, a redelivery."""
    view = subscription_views.SubscriptionViewSet.as_view
    sub = rf"^subscriptions/(?P<pk>{ID})"
    return [
        re_path(r"^subscriptions/?$", view({"get": "list", "post": "create"}), name="subscriptions-list"),
        re_path(
            rf"{sub}/?$",
            view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
            name="subscriptions-detail",
        ),
        re_path(rf"{sub}/deliveries/?$", view({"get": "deliveries"}), name="subscriptions-deliveries"),
        re_path(
            rf"{sub}/deliveries/(?P<delivery_id>[0-9A-Za-z]{{1,26}})/redeliver/?$",
            view({"post": "redeliver"}),
            name="subscriptions-redeliver",
        ),
    ]


urlpatterns = [
    re_path(r"^enqueue/?$", views.EnqueueView.as_view(), name="enqueue"),
    re_path(rf"^runs/(?P<run_id>{ID})/cancel/?$", views.RunCancelView.as_view(), name="run-cancel"),
    re_path(rf"^runs/(?P<run_id>{ID})/retry/?$", views.RunRetryView.as_view(), name="run-retry"),
    re_path(
        rf"^artifacts/(?P<artifact_id>{ID})/content/?$",
        views.ArtifactContentView.as_view(),
        name="artifact-content",
    ),
    *subscription_routes(),
]

"""Routes under /api/v1 (each with or without a trailing slash).

The seven kinds come from one router; the execution app's routes (enqueue, cancel, artifact content) are
included before these by ``cwom_site.urls``; anything else under /api/v1 is a 404 problem.
"""

from __future__ import annotations

from typing import Any

from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from . import run_diff, views


class OptionalSlashRouter(SimpleRouter):
    """A router whose routes match with and without a trailing slash (documented without)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
for kind, viewset in views.KIND_VIEWSETS.items():
    router.register(views.KIND_PATHS[kind], viewset, basename=views.KIND_PATHS[kind])
router.register("events", views.EventViewSet, basename="events")

_open = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns: list[Any] = [
    re_path(r"^healthz/?$", views.HealthView.as_view(), name="healthz"),
    re_path(r"^readyz/?$", views.ReadyView.as_view(), name="readyz"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(**_open), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema", **_open), name="docs"),
    re_path(r"^redoc/?$", SpectacularRedocView.as_view(url_name="schema", **_open), name="redoc"),
    re_path(rf"^objects/(?P<object_id>{views.ID_PATH_REGEX})/?$", views.ObjectView.as_view(), name="object-detail"),
    re_path(
        rf"^runs/(?P<run_id>{views.ID_PATH_REGEX})/diff/(?P<other_id>{views.ID_PATH_REGEX})/?$",
        run_diff.RunDiffView.as_view(),
        name="run-diff",
    ),
]

urlpatterns += [
    *router.urls,
    re_path(r"^[\s\S]*$", views.NotFoundView.as_view(), name="not-found"),  # any path, newlines included
]

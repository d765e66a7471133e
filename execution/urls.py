"""The execution endpoints, included by ``cwom_site.urls`` under ``/api/v1/`` (with or without a trailing slash)."""

from django.urls import re_path

from . import views

ID = "[0-7][0-9A-Za-z]{25}"

urlpatterns = [
    re_path(r"^enqueue/?$", views.EnqueueView.as_view(), name="enqueue"),
    re_path(rf"^runs/(?P<run_id>{ID})/cancel/?$", views.RunCancelView.as_view(), name="run-cancel"),
    re_path(rf"^runs/(?P<run_id>{ID})/retry/?$", views.RunRetryView.as_view(), name="run-retry"),
    re_path(
        rf"^artifacts/(?P<artifact_id>{ID})/content/?$",
        views.ArtifactContentView.as_view(),
        name="artifact-content",
    ),
]

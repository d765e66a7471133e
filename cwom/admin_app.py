"""``django.contrib.admin`` with the CWOM admin site as ``admin.site``.

Its own module, outside ``cwom.admin``: ``INSTALLED_APPS`` imports it before the models exist, and the site
class must be importable without running ``cwom.admin`` (whose registrations need ``admin.site`` itself).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone


class CwomAdminSite(admin.AdminSite):
    """The read-only admin: a home page of numbers and a chart above the list of models, no "Recent actions"."""

    site_header = "CWOM — read-only"
    site_title = "CWOM admin"
    index_title = "What agents, humans and CI did"
    index_template = "cwom/admin/index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from cwom.admin.glance import home_page  # the admin's modules import the models

        return super().index(request, {"glance": home_page(timezone.now()), **(extra_context or {})})


class CwomAdminConfig(AdminConfig):
    default_site = "cwom.admin_app.CwomAdminSite"

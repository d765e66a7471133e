"""Root URLconf: the API under /api/v1, the read-only admin under /admin/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("cwom.api.urls")),
]

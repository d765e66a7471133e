"""Root URLconf: the API under /api/v1, the read-only admin under /admin/.

The execution app's routes come first: ``cwom.api.urls`` ends with a catch-all 404 for its prefix.
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("execution.urls")),
    path("api/v1/", include("cwom.api.urls")),
]

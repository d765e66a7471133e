"""Root URLconf: the API under /api/v1, the read-only admin under /admin/.

The execution app's routes come first: ``cwom.api.urls`` ends with a catch-all 404 for its prefix.
"""

from django.contrib import admin
from django.urls import include, path

# Errors Django answers itself (a Host not allowed, an error outside a view) are problem documents under /api/.
handler400 = "cwom.api.errors.handler400"
handler403 = "cwom.api.errors.handler403"
handler404 = "cwom.api.errors.handler404"
handler500 = "cwom.api.errors.handler500"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("execution.urls")),
    path("api/v1/", include("cwom.api.urls")),
]

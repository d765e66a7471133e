"""WSGI entry point (gunicorn cwom_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cwom_site.settings")

application = get_wsgi_application()

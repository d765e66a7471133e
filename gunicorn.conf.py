"""Gunicorn settings read from the working directory (the image's /app): errors gunicorn answers itself
(a request line over ``limit_request_line``, headers over their limits) are problem documents, as every
other error of the service (``cwom_site/gunicorn_problems.py``)."""

from cwom_site.gunicorn_problems import install

install()

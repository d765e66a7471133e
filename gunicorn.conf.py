"""gunicorn's settings for the CWOM service (the Dockerfile and docker-compose.yml run ``gunicorn -c
gunicorn.conf.py``; gunicorn also reads this file by default from the working directory).

The limits on the request line and header fields are stated here rather than left to gunicorn's defaults,
and what gunicorn answers when a request breaks them (or is not valid HTTP) is a problem document like every
other error of the service (``cwom_site/gunicorn_problems.py``), never gunicorn's HTML page. The statuses
are in the OpenAPI document for every route (400, 414, 431).
"""

from cwom_site.gunicorn_problems import install

# The longest request line (method, path and query string, version) and header field gunicorn reads, and
# the most header fields; past them: 414 and 431 problem documents.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100

install()

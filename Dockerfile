# syntax=docker/dockerfile:1
#
# CWOM service image: one image for every role (web, mcp, worker, beat, one-shot migrate); the command
# chooses the role. Default: gunicorn (WSGI, the API) on :8000. The MCP server's Streamable HTTP transport:
#   gunicorn cwom_site.asgi:application --worker-class uvicorn.workers.UvicornWorker --bind 0.0.0.0:8001
# (docker-compose.yml's `mcp` service); stdio: `python manage.py cwom_mcp` with CWOM_TOKEN set.
#
#   docker build -t cwom-service .
#   docker run --rm -p 8000:8000 -e SECRET_KEY=... -e ALLOWED_HOSTS=localhost -e DATABASE_URL=... cwom-service

ARG PYTHON_IMAGE=python:3.12-slim

# --- builder: wheels for every runtime dependency ------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /build
COPY requirements/base.txt requirements/base.txt
RUN pip wheel --wheel-dir /wheels -r requirements/base.txt

# --- runtime ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=cwom_site.settings \
    CWOM_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

RUN groupadd --system --gid 10001 cwom \
 && useradd --system --uid 10001 --gid cwom --home-dir /app --no-create-home --shell /usr/sbin/nologin cwom

WORKDIR /app

# Install from the builder's wheels only (no index), without keeping the wheels in a layer.
COPY requirements/base.txt requirements/base.txt
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r requirements/base.txt

# The code belongs to root and is read-only for the service user; only var/ is writable.
COPY . .

# Static files (admin, Swagger UI / Redoc assets) are collected at build time. The settings refuse
# to load without a secret when DEBUG is off: these values exist for this RUN only.
RUN DEBUG=0 SECRET_KEY=build-only ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var/artifacts \
 && chown -R cwom:cwom /app/var

USER cwom

EXPOSE 8000 8001

# X-Forwarded-Proto keeps SECURE_SSL_REDIRECT from redirecting the probe; Host is the first
# ALLOWED_HOSTS entry so the probe is not refused as a disallowed host.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; h = (os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('*.') or 'localhost'; r = u.Request('http://127.0.0.1:8000/api/v1/healthz', headers={'Host': h, 'X-Forwarded-Proto': 'https'}); sys.exit(0 if u.urlopen(r, timeout=4).status == 200 else 1)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "cwom_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]

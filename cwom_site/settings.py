"""Settings for the CWOM service, read from the environment.

Every knob is an environment variable with a development-safe default, except the ones whose
default would be unsafe in production: with ``DEBUG`` off, ``SECRET_KEY`` must be set and
``ALLOWED_HOSTS`` must be explicit, or the process refuses to start.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# The name of every environment variable these settings read (the test settings clear them all but the
# backend selectors, so a caller's environment cannot change the suite's verdict).
ENVIRONMENT_VARIABLES: set[str] = set()


def _read(name: str) -> str | None:
    ENVIRONMENT_VARIABLES.add(name)
    return os.environ.get(name)


def env_str(name: str, default: str | None = None) -> str | None:
    value = _read(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _read(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = _read(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


# A DRF throttle rate: requests per second, minute, hour or day (DRF reads the period's first letter).
_RATE = re.compile(r"\s*(\d+)\s*/\s*(s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)\s*", re.IGNORECASE)


def env_rate(name: str, default: str) -> str:
    value = _read(name)
    if value is None or value == "":
        return default
    match = _RATE.fullmatch(value)
    if match is None or int(match[1]) < 1:
        raise ImproperlyConfigured(
            f"{name} must be a rate of at least 1 request per s, min, h or day (e.g. 60/min), got {value!r}"
        )
    return f"{int(match[1])}/{match[2].lower()}"


def env_list(name: str, default: list[str]) -> list[str]:
    value = _read(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

VAR_DIR = Path(env_str("CWOM_VAR_DIR", str(BASE_DIR / "var")))  # type: ignore[arg-type]

INSTALLED_APPS = [
    "cwom.admin_app.CwomAdminConfig",  # django.contrib.admin, with the home page of cwom/admin/site.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "cwom",
    "execution",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files (admin, Swagger UI, Redoc assets) from gunicorn itself.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cwom_site.urls"
WSGI_APPLICATION = "cwom_site.wsgi.application"
ASGI_APPLICATION = "cwom_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, or an embedded SQLite file so a newcomer needs nothing installed.
_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "cwom.sqlite3"),
            "OPTIONS": {
                # The web process and the worker share the file: WAL lets readers and one writer
                # proceed together, IMMEDIATE transactions avoid upgrade deadlocks.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))  # type: ignore[arg-type]
MEDIA_ROOT = Path(env_str("ARTIFACT_ROOT", str(VAR_DIR / "artifacts")))  # type: ignore[arg-type]
STORAGES = {
    "default": {"BACKEND": env_str("ARTIFACT_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Request size: bodies above this are refused with 413 before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CWOM_MAX_BODY_BYTES", 1024 * 1024)

# Cache (throttling counters). Redis when configured so every web process shares it.
_cache_url = env_str("CACHE_URL")
if _cache_url:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- CWOM limits -------------------------------------------------------------------------------
CWOM_LIMITS = {
    "meta_bytes": env_int("CWOM_META_MAX_BYTES", 16 * 1024),
    "tags_count": env_int("CWOM_TAGS_MAX", 32),
    "tag_length": 64,
    "list_length": env_int("CWOM_LIST_MAX", 200),
    "inline_blob_bytes": env_int("CWOM_INLINE_BLOB_MAX_BYTES", 64 * 1024),
    "json_depth": 16,
}

# --- REST API ------------------------------------------------------------------------------------
_num_proxies = env_int("CWOM_NUM_PROXIES", 0)
if _num_proxies < 0:
    raise ImproperlyConfigured(f"CWOM_NUM_PROXIES must be 0 or more, got {str(_num_proxies)!r}")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cwom.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["cwom.api.auth.TokenScopePermission"],
    "DEFAULT_PAGINATION_CLASS": "cwom.api.pagination.CwomCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "cwom.api.filters.CwomFilterBackend",
        "cwom.api.filters.OrderingBackend",
    ],
    "DEFAULT_SCHEMA_CLASS": "cwom.api.schema.CwomAutoSchema",
    "EXCEPTION_HANDLER": "cwom.api.errors.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["cwom.api.auth.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per principal (a token, a session user; the client address on the open endpoints).
        "principal": env_rate("CWOM_THROTTLE_RATE", "6000/min"),
        # Per client address, for callers without a valid credential: requests with none and presented
        # tokens that fail (unknown, revoked, expired) count; past it 429 before any token lookup.
        # cwom.api.auth.AddressRateThrottle.
        "anonymous": env_rate("CWOM_ANON_THROTTLE_RATE", "60/min"),
    },
    # The client address of the per-address counts: REMOTE_ADDR when 0; behind N reverse proxies that each
    # append to X-Forwarded-For, the entry the Nth-closest one wrote. Never trust the header without a proxy
    # that sets it: a client could name a new address on every request.
    "NUM_PROXIES": _num_proxies,
    "DEFAULT_RENDERER_CLASSES": ["cwom.api.renderers.CwomJSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # No OPTIONS metadata: the API is described by its OpenAPI schema (OPTIONS answers 405).
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_PARSER_CLASSES": ["cwom.api.parsers.CwomJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "cwom.api.negotiation.CwomContentNegotiation",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CWOM service API",
    "DESCRIPTION": "The system of record for agents' work: Issues, ContextPackets, ConstraintSnapshots, "
    "DoctrineRefs, Runs and Artifacts (CWOM v0.1).",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # OpenAPI 3.1 embeds JSON Schema 2020-12, the dialect of the kernel's schemas (cwom.shapes.json_schema).
    "OAS_VERSION": "3.1.0",
    "PREPROCESSING_HOOKS": ["cwom.api.schema.canonical_paths"],
    # The kernel's schemas are used verbatim (no enum extraction into separate components).
    "POSTPROCESSING_HOOKS": ["cwom.api.schema.document_errors", "cwom.api.components.name_components"],
}

# A token's row is cached this many seconds after a request reads it (0: every request reads the database).
# Saving the token (revoke, admin) drops the entry: at once where the cache is shared (CACHE_URL), at most this
# late in other processes when each has its own.
CWOM_TOKEN_CACHE_SECONDS = env_int("CWOM_TOKEN_CACHE_SECONDS", 5)

# Idempotency-Key records are kept at least this long (cwom.api.idempotency).
CWOM_IDEMPOTENCY_TTL_HOURS = env_int("CWOM_IDEMPOTENCY_TTL_HOURS", 24)

# --- Celery ----------------------------------------------------------------------------------------
# With no broker configured, a filesystem transport under var/ keeps `make run` free of Redis while
# enqueued work still runs asynchronously in a separate worker process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        # Broadcast (pidbox) messages, otherwise written to ./control in the working directory.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Execution -------------------------------------------------------------------------------------
# The run engine: Celery task options, executor registry, time limits, heartbeats and the reaper.
# Owned by the execution app (see execution/ and README "Running work").


def _env_float(name: str, default: float) -> float:
    value = _read(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


def _env_positive(name: str, default: float) -> float:
    value = _env_float(name, default)
    if not value > 0:
        raise ImproperlyConfigured(f"{name} must be a positive number, got {_read(name)!r}")
    return value


def _env_url_prefixes(name: str) -> list[str]:
    prefixes = env_list(name, [])
    for prefix in prefixes:
        scheme, _, rest = prefix.partition("://")
        if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/") or "@" in rest.split("/")[0]:
            raise ImproperlyConfigured(
                f"{name} must be comma-separated URL prefixes scheme://host[:port]/path (http or https), got {prefix!r}"
            )
    return prefixes


CWOM_EXECUTION: dict[str, Any] = {
    # Executors by name: a run picks one with {"executor": {"name": ..., "config": {...}}}.
    "executors": {
        "noop": "execution.executors.noop.NoopExecutor",
        "command": "execution.executors.command.CommandExecutor",
        "webhook": "execution.executors.webhook.WebhookExecutor",
    },
    "default_executor": env_str("CWOM_DEFAULT_EXECUTOR", "noop"),
    # The broker queue run tasks go to (empty: Celery's default queue); workers consume it with -Q.
    "queue": env_str("CWOM_RUN_QUEUE", ""),
    # A run's time limit: its snapshot's time.available_minutes, else the default, never above the cap.
    "default_run_seconds": _env_float("CWOM_DEFAULT_RUN_SECONDS", 900.0),
    "max_run_seconds": _env_float("CWOM_MAX_RUN_SECONDS", 3600.0),
    # Past the soft limit the executor is told to stop; past soft + grace the worker child is killed.
    "hard_limit_grace_seconds": _env_float("CWOM_HARD_LIMIT_GRACE_SECONDS", 30.0),
    "max_attempts": env_int("CWOM_RUN_MAX_ATTEMPTS", 3),
    # A running attempt proves it is alive this often; the reaper calls it lost after stale_after.
    "heartbeat_seconds": _env_float("CWOM_HEARTBEAT_SECONDS", 10.0),
    "stale_after_seconds": _env_float("CWOM_STALE_AFTER_SECONDS", 120.0),
    # A cancel of a running run that the worker has not honored within this grace is forced.
    "cancel_grace_seconds": _env_float("CWOM_CANCEL_GRACE_SECONDS", 60.0),
    # A ready run not claimed this long after its dispatch is dispatched again (lost message).
    "redispatch_after_seconds": _env_float("CWOM_REDISPATCH_AFTER_SECONDS", 300.0),
    "reap_interval_seconds": _env_float("CWOM_REAP_INTERVAL_SECONDS", 30.0),
    "log_max_bytes": env_int("CWOM_RUN_LOG_MAX_BYTES", 1024 * 1024),
    "artifact_max_bytes": env_int("CWOM_ARTIFACT_MAX_BYTES", 64 * 1024 * 1024),
    "command": {
        # Off unless an operator turns it on and names the programs it may run (absolute paths or names
        # found on the scrubbed PATH). Programs run without a shell, in a scratch directory.
        "enabled": env_bool("CWOM_COMMAND_EXECUTOR_ENABLED", False),
        "allowlist": env_list("CWOM_COMMAND_ALLOWLIST", []),
        "path": env_str("CWOM_COMMAND_PATH", "/usr/local/bin:/usr/bin:/bin"),
        "timeout_seconds": _env_float("CWOM_COMMAND_TIMEOUT_SECONDS", 600.0),
        "output_max_bytes": env_int("CWOM_COMMAND_OUTPUT_MAX_BYTES", 256 * 1024),
        "scratch_root": env_str("CWOM_COMMAND_SCRATCH_ROOT", str(VAR_DIR / "scratch")),
    },
    "webhook": {
        # URL prefixes a webhook may call (scheme://host[:port]/path...). Empty: the webhook executor refuses.
        "allowlist": env_list("CWOM_WEBHOOK_ALLOWLIST", []),
        "secret": env_str("CWOM_WEBHOOK_SECRET"),
        "timeout_seconds": _env_float("CWOM_WEBHOOK_TIMEOUT_SECONDS", 30.0),
        "response_max_bytes": env_int("CWOM_WEBHOOK_RESPONSE_MAX_BYTES", 4 * 1024 * 1024),
    },
    # Event subscriptions (signed outbound webhooks, execution/subscriptions.py; docs/subscriptions.md).
    "subscriptions": {
        # URL prefixes a subscription may name (the webhook allowlist's format). Empty: subscriptions refused.
        "allowlist": _env_url_prefixes("CWOM_SUBSCRIPTION_ALLOWLIST"),
        "timeout_seconds": _env_positive("CWOM_SUBSCRIPTION_TIMEOUT_SECONDS", 10.0),
        "response_max_bytes": int(_env_positive("CWOM_SUBSCRIPTION_RESPONSE_MAX_BYTES", 64 * 1024)),
        # A failed delivery is tried again after base * 2^(attempts-1) seconds (at most max), with jitter,
        # until retry_hours after the event; then it is dead. pause_after_dead dead in a row pause it.
        "backoff_seconds": _env_positive("CWOM_SUBSCRIPTION_BACKOFF_SECONDS", 10.0),
        "backoff_max_seconds": _env_positive("CWOM_SUBSCRIPTION_BACKOFF_MAX_SECONDS", 3600.0),
        "retry_hours": _env_positive("CWOM_SUBSCRIPTION_RETRY_HOURS", 24.0),
        "pause_after_dead": int(_env_positive("CWOM_SUBSCRIPTION_PAUSE_AFTER_DEAD", 5)),
        # How often beat sweeps for due deliveries (missed messages, retries, expired leases).
        "sweep_seconds": _env_positive("CWOM_SUBSCRIPTION_SWEEP_SECONDS", 10.0),
    },
}

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker process keeps its database connection from task to task (a run then costs no new connection):
# Celery's Django fixup closes it only every CELERY_DB_REUSE_MAX tasks, and cwom_site/celery.py drops it
# around a task, as Django does around a request, when it is broken or older than DB_CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Per-run limits are set at dispatch; these are the ceiling for any task.
CELERY_TASK_SOFT_TIME_LIMIT = CWOM_EXECUTION["max_run_seconds"]
CELERY_TASK_TIME_LIMIT = CWOM_EXECUTION["max_run_seconds"] + CWOM_EXECUTION["hard_limit_grace_seconds"]
# An unacknowledged message is redelivered only after the longest allowed run (plus margin), so a slow
# run is never delivered twice while it is still working; a lost worker is the reaper's job.
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = int(CELERY_TASK_TIME_LIMIT * 1.5 + 300)
# Beat's record of when each entry last ran: under var/ like every runtime file, whatever the working directory.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "cwom-reap-runs": {
        "task": "execution.tasks.reap_runs",
        "schedule": CWOM_EXECUTION["reap_interval_seconds"],
        "options": {"expires": CWOM_EXECUTION["reap_interval_seconds"]},
    },
    "cwom-sweep-deliveries": {
        "task": "execution.tasks.sweep_deliveries",
        "schedule": CWOM_EXECUTION["subscriptions"]["sweep_seconds"],
        "options": {"expires": CWOM_EXECUTION["subscriptions"]["sweep_seconds"]},
    },
}

# --- Security ------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

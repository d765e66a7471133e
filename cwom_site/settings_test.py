"""Settings for the test suite: production defaults (DEBUG off) with a throwaway secret.

The environment still decides the database (DATABASE_URL) and the broker, so the same suite runs
on the embedded SQLite default and on PostgreSQL.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("CWOM_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from .settings import *  # noqa: E402,F403

# Nothing is collected for tests; an existing (empty) STATIC_ROOT keeps WhiteNoise from warning.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

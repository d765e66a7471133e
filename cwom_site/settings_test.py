"""Settings for the test suite: production defaults (DEBUG off) with a throwaway secret.

The suite gives the same verdict whatever the caller has exported. Only the variables that choose the
backends a pass runs on (``BACKEND_VARIABLES``) and the suite's own switches (``TEST_SWITCHES``; README
"Tests and CI") come from the environment; every other variable the settings read is replaced by the
test value below or removed before the settings are read. Processes the tests start inherit the cleaned
environment (a test worker's settings, ``tests/execution/worker_settings.py``, take it as it is given).
"""

import os
import re
from pathlib import Path

BACKEND_VARIABLES = frozenset({"DATABASE_URL", "DB_CONN_MAX_AGE", "CELERY_BROKER_URL", "CACHE_URL"})
TEST_SWITCHES = frozenset({"CWOM_INTEGRATION", "CWOM_FUZZ_EXAMPLES"})
TEST_ENVIRONMENT = {
    "DEBUG": "0",
    "SECRET_KEY": "test-only-secret-key-not-for-production-0123456789",
    "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
    "CWOM_VAR_DIR": str(Path(__file__).resolve().parent.parent / "var" / "test"),
}
# Names the settings read, and their families (a new CWOM_* knob is pinned before anyone lists it).
_PINNED = re.compile(
    r"CWOM_\w+|CELERY_\w+|SECURE_\w+|ARTIFACT_\w+|DEBUG|SECRET_KEY|ALLOWED_HOSTS|CSRF_TRUSTED_ORIGINS|LOG_LEVEL"
    r"|STATIC_ROOT"
)


def pinned(name: str) -> bool:
    """Whether the test settings take ``name`` out of the caller's hands."""
    return name not in BACKEND_VARIABLES | TEST_SWITCHES and _PINNED.fullmatch(name) is not None


for _name in [name for name in os.environ if pinned(name)]:
    del os.environ[_name]
os.environ.update(TEST_ENVIRONMENT)

from .settings import *  # noqa: E402,F403

# Nothing is collected for tests; an existing (empty) STATIC_ROOT keeps WhiteNoise from warning.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

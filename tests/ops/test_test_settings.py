"""The suite pins its own settings: what a caller exported cannot change them (cwom_site/settings_test.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cwom_site import settings as site_settings
from cwom_site import settings_test

ROOT = Path(__file__).resolve().parents[2]
SHOWN = (
    "DEBUG SECRET_KEY ALLOWED_HOSTS SECURE_SSL_REDIRECT SECURE_HSTS_SECONDS MEDIA_ROOT DATABASES CACHES "
    "CELERY_BROKER_URL REST_FRAMEWORK DATA_UPLOAD_MAX_MEMORY_SIZE LOGGING CWOM_LIMITS CWOM_EXECUTION"
).split()
# What a developer's shell might export: production switches, secrets, limits, paths.
HOSTILE = {
    "DEBUG": "1",
    "SECRET_KEY": "from-the-callers-shell",
    "ALLOWED_HOSTS": "only.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "CWOM_VAR_DIR": "/nonexistent/var",
    "ARTIFACT_ROOT": "/nonexistent/artifacts",
    "CWOM_THROTTLE_RATE": "1/min",
    "CWOM_MAX_BODY_BYTES": "10",
    "CWOM_HEARTBEAT_SECONDS": "0.01",
    "CWOM_COMMAND_EXECUTOR_ENABLED": "1",
    "LOG_LEVEL": "DEBUG",
}


def clean_environment() -> dict[str, str]:
    """This process's environment without anything the test settings pin."""
    return {name: value for name, value in os.environ.items() if not settings_test.pinned(name)}


def effective_settings(environment: dict[str, str]) -> dict[str, object]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {SHOWN!r}}}, default=str, sort_keys=True))"
    )
    env = {**environment, "DJANGO_SETTINGS_MODULE": "cwom_site.settings_test"}
    result = subprocess.run(  # noqa: S603 - this interpreter with fixed arguments
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_every_variable_the_settings_read_is_pinned_or_selects_a_backend() -> None:
    assert site_settings.ENVIRONMENT_VARIABLES, "the settings recorded no variable"
    loose = {
        name
        for name in site_settings.ENVIRONMENT_VARIABLES
        if not settings_test.pinned(name) and name not in settings_test.BACKEND_VARIABLES
    }
    assert loose == set()


def test_a_callers_exported_variables_do_not_change_the_test_settings() -> None:
    clean = clean_environment()
    assert not set(HOSTILE) & set(clean)
    baseline = effective_settings(clean)
    assert baseline["DEBUG"] is False
    assert effective_settings({**clean, **HOSTILE}) == baseline


def test_the_backend_selectors_still_select() -> None:
    chosen = effective_settings({**clean_environment(), "CELERY_BROKER_URL": "memory://"})
    assert chosen["CELERY_BROKER_URL"] == "memory://"

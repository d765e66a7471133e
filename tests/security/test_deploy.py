"""Production settings: ``check --deploy`` is clean, missing secrets fail loudly, security headers are
sent on every answer, and cross-origin requests get no CORS grant."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNSET = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECURE_SSL_REDIRECT", "CWOM_INTEGRATION", "DEBUG")


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("SECRET_KEY")}
    environment.pop("ALLOWED_HOSTS", None)
    environment.update(DJANGO_SETTINGS_MODULE="cwom_site.settings", CWOM_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(  # noqa: S603 - this interpreter running manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "cwom.example.com"}


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_a_secret_or_allowed_hosts(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CWOM_ANON_THROTTLE_RATE", "lots"),
        ("CWOM_ANON_THROTTLE_RATE", "0/min"),
        ("CWOM_ANON_THROTTLE_RATE", "60/fortnight"),
        ("CWOM_ANON_THROTTLE_RATE", "100/ms"),
        ("CWOM_THROTTLE_RATE", "fast"),
        ("CWOM_NUM_PROXIES", "-1"),
        ("CWOM_NUM_PROXIES", "one"),
    ],
)
def test_a_bad_throttle_setting_refuses_to_start(tmp_path: Path, name: str, value: str) -> None:
    result = manage(tmp_path, "check", **PRODUCTION, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr and repr(value) in result.stderr


def test_throttle_settings_defaults_and_spellings(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; r = s.REST_FRAMEWORK; "
        "print(r['DEFAULT_THROTTLE_RATES']['principal'], r['DEFAULT_THROTTLE_RATES']['anonymous'], r['NUM_PROXIES'])"
    )
    defaults = manage(tmp_path, "shell", "-c", code, **PRODUCTION)
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.strip().splitlines()[-1].split() == ["6000/min", "60/min", "0"]
    custom = {"CWOM_ANON_THROTTLE_RATE": " 10 / Hours ", "CWOM_THROTTLE_RATE": "50/s", "CWOM_NUM_PROXIES": "1"}
    configured = manage(tmp_path, "shell", "-c", code, **PRODUCTION, **custom)
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.strip().splitlines()[-1].split() == ["50/s", "10/hours", "1"]


def test_production_settings_turn_on_hsts_secure_cookies_and_ssl_redirect(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_CONTENT_TYPE_NOSNIFF, s.X_FRAME_OPTIONS)"
    )
    result = manage(tmp_path, "shell", "-c", code, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["False", "True", "True", "True", "True", "True", "DENY"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/healthz", "/api/v1/repos", "/api/v1/no/such", "/admin/login/"])
def test_security_headers_are_on_every_answer(client: Any, path: str) -> None:
    response = client.get(path, secure=True)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.django_db
def test_cors_is_closed_by_default(client: Any, writer: Any) -> None:
    origin = {"HTTP_ORIGIN": "https://evil.example"}
    for response in (
        client.get("/api/v1/healthz", **origin),
        writer.client.get("/api/v1/repos", **origin),
        client.options(
            "/api/v1/repos",
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
            **origin,
        ),
    ):
        granted = {name for name in response.headers if name.lower().startswith("access-control-")}
        assert not granted, f"{response.request['PATH_INFO']}: {granted}"


@pytest.mark.django_db
def test_errors_are_problem_json_never_html_or_tracebacks(writer: Any) -> None:
    for response in (writer.raw("POST", "repos", b"{oops"), writer.get("repos/not-an-id"), writer.delete("repos")):
        assert response["Content-Type"].startswith("application/problem+json")
        assert b"Traceback" not in response.content and b"<html" not in response.content.lower()

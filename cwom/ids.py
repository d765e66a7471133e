"""ULID identifiers: 26 characters of Crockford base32, unique across every kind."""

import re

from django.core.exceptions import ValidationError
from ulid import ULID

ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def new_ulid() -> str:
    """A fresh ULID as its canonical upper-case string."""
    return str(ULID())


def normalize_ulid(value: object) -> str:
    """Return ``value`` as a canonical ULID string, or raise ValidationError(code="invalid_id")."""
    if isinstance(value, str):
        candidate = value.strip().upper()
        if ULID_RE.match(candidate):
            return candidate
    raise ValidationError(
        "%(value)r is not a ULID (26 characters of Crockford base32).", code="invalid_id", params={"value": value}
    )


def validate_ulid(value: object) -> None:
    """Model-field validator form of :func:`normalize_ulid`."""
    if not isinstance(value, str) or not ULID_RE.match(value):
        normalize_ulid(value)

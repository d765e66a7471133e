"""Numbers written for people, the same in the admin and the operator commands."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


def duration(seconds: float) -> str:
    """A duration for people: ``340 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 07 min``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def usd(amount: float) -> str:
    """A cost in dollars for people: ``$0`` , ``$0.0042``, ``$1.25``, ``$1,234``."""
    if amount == 0:
        return "$0"
    if abs(amount) < 0.01:
        return f"${amount:.4f}"
    if abs(amount) < 1000:
        return f"${amount:,.2f}"
    return f"${amount:,.0f}"


def count(n: int) -> str:
    """A count with thousands separators: ``10,000``."""
    return f"{n:,}"


def utc(moment: datetime | str) -> str:
    """A moment as ISO 8601 in UTC to the second: ``2026-12-04T12:18:05Z`` (the admin's one date format)."""
    if isinstance(moment, str):
        parsed = parse_datetime(moment)
        if parsed is None:
            return moment
        moment = parsed
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(moment: datetime | str, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, for people: ``just now``, ``5 min ago``, ``3 h ago``, ``12 days ago``
    (``in 5 min`` for the future)."""
    if isinstance(moment, str):
        parsed = parse_datetime(moment)
        if parsed is None:
            return ""
        moment = parsed
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    ahead, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        text = f"{seconds // 60:.0f} min"
    elif seconds < 86400 * 2:
        text = f"{seconds // 3600:.0f} h"
    elif seconds < 86400 * 365:
        text = f"{seconds // 86400:.0f} days"
    else:
        text = f"{seconds / (86400 * 365.25):.1f} years"
    return f"in {text}" if ahead else f"{text} ago"

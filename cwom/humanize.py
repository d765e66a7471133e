"""Numbers written for people, the same in the admin and the operator commands."""

from __future__ import annotations


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

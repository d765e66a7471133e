"""Check constraints evaluated in Python during ``full_clean()``.

Django checks a CheckConstraint by asking the database (``SELECT 1 WHERE <condition>`` inside a
savepoint): three statements per constraint per write. The CWOM constraints are simple column
comparisons, so they are evaluated here instead, with SQL's three-valued logic (a comparison with
NULL is unknown, and an unknown condition passes, as in a database CHECK). A condition that uses
anything this module does not understand returns ``None`` and falls back to Django's query.
The database still holds every constraint; this only saves the round trips.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, cast

from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, Model, Q

_UNKNOWN = object()
_NOT_UNDERSTOOD = object()

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "exact": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda value, options: value in options,
}


def evaluate(condition: Q, instance: Model) -> bool | None:
    """True or False for ``condition`` on ``instance``; None when it must be left to the database."""
    result = _node(condition, instance)
    if result is _NOT_UNDERSTOOD:
        return None
    return result is not False  # unknown passes, as a CHECK does


def referenced_fields(condition: Q) -> set[str]:
    names: set[str] = set()
    for child in condition.children:
        if isinstance(child, Q):
            names |= referenced_fields(child)
        else:
            key, value = cast("tuple[str, Any]", child)  # a Q's leaves are (lookup, value) pairs
            names.add(key.split("__", 1)[0])
            if isinstance(value, F):
                names.add(_f_name(value))
    return names


def _node(condition: Q, instance: Model) -> Any:
    results = []
    for child in condition.children:
        result = _node(child, instance) if isinstance(child, Q) else _leaf(cast("tuple[str, Any]", child), instance)
        if result is _NOT_UNDERSTOOD:
            return _NOT_UNDERSTOOD
        results.append(result)
    if condition.connector == Q.AND:
        combined: Any = False if False in results else (_UNKNOWN if _UNKNOWN in results else True)
    else:
        combined = True if True in results else (_UNKNOWN if _UNKNOWN in results else False)
    if condition.negated and combined is not _UNKNOWN:
        return not combined
    return combined


def _leaf(child: tuple[str, Any], instance: Model) -> Any:
    key, expected = child
    name, _, lookup = key.partition("__")
    lookup = lookup or "exact"
    actual = _column(instance, name)
    if isinstance(expected, F):
        expected = _column(instance, _f_name(expected))
    if actual is _NOT_UNDERSTOOD or expected is _NOT_UNDERSTOOD:
        return _NOT_UNDERSTOOD
    if lookup == "isnull":
        return (actual is None) == bool(expected)
    compare = _COMPARISONS.get(lookup)
    if compare is None:
        return _NOT_UNDERSTOOD
    if actual is None or expected is None:
        return _UNKNOWN
    try:
        return bool(compare(actual, expected))
    except TypeError:
        return _NOT_UNDERSTOOD


def _f_name(ref: F) -> str:
    return ref.name  # type: ignore[attr-defined]  # F.name exists at runtime; django-stubs omits it


def _column(instance: Model, name: str) -> Any:
    try:
        field = instance._meta.get_field(name)
    except FieldDoesNotExist:
        return _NOT_UNDERSTOOD
    return getattr(instance, getattr(field, "attname", name))

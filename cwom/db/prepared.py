"""Reads of a hot path compiled by the ORM once per process, then run again with other parameter values.

Django compiles a queryset to SQL on every evaluation; for a fixed read that a worker runs for every task
(the same joins and filters, other ids) that compilation costs more than the database's answer. A
:class:`Prepared` read is a ``values_list`` queryset built by a function of its parameters; it is compiled the
first time it runs on a connection's vendor, with a marker where each parameter goes, and from then on its SQL is
executed with the markers replaced by the values. Rows are converted as the ORM converts them (its converters of
the selected columns), as tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]  # the compiled parameters: fixed values, or markers ...
    slots: tuple[int | None, ...]  # ... replaced by the value of the parameter at this index
    converters: dict[int, tuple[list[Any], Any]]  # the compiler's: column -> (functions, expression)


class Prepared:
    """``build(*params)`` -> a ``values_list`` queryset; ``rows(*values)`` its rows for these values.

    A parameter must reach the SQL as bound values, unchanged (a key compared with ``=``, here or in a subquery):
    the compiled parameters are searched for the markers, and a read whose markers do not all come through is
    refused at its first run.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]]) -> None:
        self.build = build
        self._plans: dict[str, _Plan] = {}

    def _plan(self, count: int, using: str) -> _Plan:
        vendor = connections[using].vendor
        plan = self._plans.get(vendor)
        if plan is None:
            markers = [f"\x00cwom-prepared-{index}\x00" for index in range(count)]
            compiler = self.build(*markers).query.get_compiler(using)
            sql, params = compiler.as_sql()
            slots = tuple(markers.index(p) if isinstance(p, str) and p in markers else None for p in params)
            if {slot for slot in slots if slot is not None} != set(range(count)):
                raise ValueError("Each parameter of a prepared read must reach its SQL as it is.")
            fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
            plan = self._plans[vendor] = _Plan(sql, tuple(params), slots, compiler.get_converters(fields))
        return plan

    def rows(self, *values: Any, using: str = DEFAULT_DB_ALIAS) -> list[tuple[Any, ...]]:
        plan = self._plan(len(values), using)
        params = [value if slot is None else values[slot] for value, slot in zip(plan.params, plan.slots, strict=True)]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            rows = cursor.fetchall()
        if not plan.converters:
            return [tuple(row) for row in rows]
        converted = []
        for row in rows:  # as SQLCompiler.apply_converters does
            cells = list(row)
            for position, (functions, expression) in plan.converters.items():
                for function in functions:
                    cells[position] = function(cells[position], expression, connection)
            converted.append(tuple(cells))
        return converted

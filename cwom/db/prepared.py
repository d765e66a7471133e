"""Reads of a hot path compiled by the ORM once per process, then run again with other parameter values.

Django compiles a queryset to SQL on every evaluation; for a fixed read that a worker runs for every task
(the same joins and filters, other ids) that compilation costs more than the database's answer. A
:class:`Prepared` read is a queryset built by a function of its parameters; it is compiled the first time it runs
on a database alias, with a marker where each parameter goes, and from then on its SQL is executed with the markers
replaced by the values. Rows are converted as the ORM converts them (its converters of the selected columns): as
tuples (:meth:`Prepared.rows`, a ``values_list`` queryset), or as the model instances a model queryset yields, with
those of its ``select_related`` relations (:meth:`Prepared.objects`; a locking read keeps its ``FOR UPDATE OF``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]  # the compiled parameters: fixed values, or markers ...
    slots: tuple[int | None, ...]  # ... replaced by the value of the parameter at this index
    converters: dict[int, tuple[list[Any], Any]]  # the compiler's: column -> (functions, expression)
    klass_info: dict[str, Any] | None  # a model queryset's: its model and columns (None for values_list) ...
    names: list[str]  # ... the attnames of its model's columns ...
    populators: list[Any]  # ... and the builders of its select_related instances


class Prepared:
    """``build(*params)`` -> a queryset; ``rows(*values)`` its rows for these values (a ``values_list``
    queryset), ``objects(*values)`` its instances (a model queryset).

    A parameter must reach the SQL as bound values, unchanged (a key compared with ``=``, here or in a subquery):
    the compiled parameters are searched for the markers, and a read whose markers do not all come through is
    refused at its first run.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]]) -> None:
        self.build = build
        self._plans: dict[str, _Plan] = {}

    def _plan(self, count: int, using: str) -> _Plan:
        plan = self._plans.get(using)
        if plan is None:
            markers = [f"\x00cwom-prepared-{index}\x00" for index in range(count)]
            compiler = self.build(*markers).query.get_compiler(using)
            sql, params = compiler.as_sql()
            slots = tuple(markers.index(p) if isinstance(p, str) and p in markers else None for p in params)
            if {slot for slot in slots if slot is not None} != set(range(count)):
                raise ValueError("Each parameter of a prepared read must reach its SQL as it is.")
            fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
            converters = compiler.get_converters(fields)
            klass_info = None if compiler.query.values_select else compiler.klass_info  # a model queryset's
            names = [compiler.select[i][0].target.attname for i in klass_info["select_fields"]] if klass_info else []
            # (Django 5.2's signature; the stubs have a later one's)
            populators = get_related_populators(klass_info, compiler.select, using) if klass_info else []  # type: ignore[call-arg]
            plan = self._plans[using] = _Plan(sql, tuple(params), slots, converters, klass_info, names, populators)
        return plan

    def objects(self, *values: Any, using: str = DEFAULT_DB_ALIAS) -> list[Any]:
        """The instances of a model queryset for these values, built as its ``ModelIterable`` builds them
        (``Model.from_db``, then each ``select_related`` instance set on its owner). A locking read
        (``select_for_update``) runs inside the caller's transaction, as the ORM requires (which it checks when
        the read is compiled, not at each run)."""
        plan = self._plan(len(values), using)
        if plan.klass_info is None:
            raise TypeError("objects() reads a model queryset; a values_list read has rows().")
        model = plan.klass_info["model"]
        fields = plan.klass_info["select_fields"]
        objs = []
        for row in self.rows(*values, using=using):
            obj = model.from_db(using, plan.names, row[fields[0] : fields[-1] + 1])
            for populator in plan.populators:
                populator.populate(row, obj)
            objs.append(obj)
        return objs

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

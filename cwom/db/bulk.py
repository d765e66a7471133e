"""Writing new and changed rows in as few statements as the database allows.

- :func:`insert`: new rows of one model in one INSERT (a batch per statement), auto keys set from the
  database, without building a query through the compiler for every write of a hot path;
- :func:`insert_together`: new rows of several models in one round trip (PostgreSQL: data-modifying CTEs);
- :func:`write`: new rows of several models (instances, or :class:`Values` of some columns), in one round
  trip when they are few, else by COPY;
- :func:`load` and :func:`load_values`: many new rows, by COPY on PostgreSQL (a multi-row INSERT elsewhere);
- :func:`update`: some columns of many rows to their instances' values, in one statement;
- :func:`update_then_insert`: a compare-and-set UPDATE and, only if it changed a row, a new row (its event) and
  updates of other rows that change with it, in one statement.

Rows are written as they are: no ``save()``, no signals, no validation; the database's constraints and
triggers check every row, as for any other INSERT or UPDATE. Values are prepared by :mod:`cwom.db.values`.
A write of several statements is one transaction (the caller's, or its own); one statement is atomic alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models.sql import AND, UpdateQuery
from django.db.models.sql.where import ExtraWhere

from .values import Columns, columns

# PostgreSQL's cap on parameters per statement.
MAX_PARAMS = 65_535
# Rows that :func:`write` sends in one statement; more go by COPY (a COPY costs a round trip per table).
FEW = 64
# In :func:`update_then_insert`'s statement: its first UPDATE changed a row.
CHANGED = "EXISTS (SELECT FROM cwom_changed)"


def _plain(model: type[models.Model], connection: Any) -> bool:
    """Whether rows of ``model`` can be written by these paths (no parent rows, no custom placeholders or
    values the database computes, and the auto key returned where there is one)."""
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    plain = not meta.parents and not any(hasattr(f, "get_placeholder") or f.db_returning for f in fields)
    return plain and (meta.auto_field is None or connection.features.can_return_rows_from_bulk_insert)


def _values_sql(cols: Columns, rows: list[list[Any]], connection: Any) -> tuple[str, list[Any]]:
    """``INSERT INTO table (columns) VALUES (...), ...`` of ``rows`` (prepared values) and its parameters."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name in cols.names)
    row = "(" + ", ".join(["%s"] * len(cols.fields)) + ")"
    sql = f"INSERT INTO {quote(cols.model._meta.db_table)} ({names}) VALUES " + ", ".join([row] * len(rows))  # noqa: S608 - names only
    return sql, [value for values in rows for value in values]


def _returning(model: type[models.Model], connection: Any) -> str:
    auto = model._meta.auto_field
    return f" RETURNING {connection.ops.quote_name(auto.column)}" if auto is not None else ""


def _saved(objs: Sequence[models.Model], using: str, keys: Iterable[Sequence[Any]] | None = None) -> None:
    """Mark ``objs`` as saved rows, with the auto keys ``keys`` (in list order) when they were read back."""
    auto = objs[0]._meta.auto_field if objs else None
    if auto is not None and keys is not None:
        for obj, (value,) in zip(objs, keys, strict=True):
            setattr(obj, auto.attname, value)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def _batch_size(cols: Columns, connection: Any, count: int) -> int:
    """Rows per statement: the backend's cap on parameters, and PostgreSQL's."""
    fields = list(cols.fields)
    return max(1, min(connection.ops.bulk_batch_size(fields, [None] * count), MAX_PARAMS // max(len(fields), 1)))


def insert(objs: Sequence[models.Model], using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT ``objs`` (new rows of one model) in one statement per batch; an auto primary key is set from the
    database, in list order. Sends no ``pre_save``/``post_save`` signals."""
    if not objs:
        return
    connection = connections[using]
    model = type(objs[0])
    if not _plain(model, connection):  # Django's own INSERT (not a subclass's save())
        if len(objs) == 1:
            models.Model.save(objs[0], force_insert=True, using=using)
        else:
            model._base_manager.using(using).bulk_create(objs)
        return
    cols = columns(model, connection)
    returning = _returning(model, connection)
    batch = _batch_size(cols, connection, len(objs))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch):
            chunk = objs[start : start + batch]
            sql, params = _values_sql(cols, [cols.of(obj) for obj in chunk], connection)
            cursor.execute(sql + returning, params)
            _saved(chunk, using, cursor.fetchall() if returning else None)


def insert_together(objs: Sequence[models.Model | Sequence[models.Model]], using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT new rows of several models, in order: each item of ``objs`` is one row, or a list of rows of
    one model. In one round trip where the database allows it: on PostgreSQL one statement of data-modifying
    CTEs (foreign keys and triggers are checked as for separate INSERTs; auto keys only for the last item).
    Elsewhere, or when a row needs Django's own INSERT, one statement per item (:func:`insert`).
    """
    connection = connections[using]
    groups = [group for group in (list(i) if isinstance(i, Sequence) else [i] for i in objs) if group]
    models_ = [type(group[0]) for group in groups]
    plans = [columns(model, connection) for model in models_]
    if (
        connection.vendor != "postgresql"
        or len(groups) < 2
        or not all(_plain(model, connection) for model in models_)
        or any(model._meta.auto_field is not None for model in models_[:-1])  # auto keys: the last item only
        or sum(len(group) * len(cols.fields) for group, cols in zip(groups, plans, strict=True)) > MAX_PARAMS
    ):
        with transaction.atomic(using=using, savepoint=False):
            for group in groups:
                insert(group, using)
        return
    statements, params = [], []
    for group, cols in zip(groups, plans, strict=True):
        sql, values = _values_sql(cols, [cols.of(obj) for obj in group], connection)
        statements.append(sql)
        params += values
    *first, last = statements
    returning = _returning(models_[-1], connection)
    ctes = ", ".join(f"cwom_rows_{i} AS ({sql})" for i, sql in enumerate(first))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} {last}{returning}", params)
        _saved(groups[-1], using, cursor.fetchall() if returning else None)
    for group in groups[:-1]:
        _saved(group, using)


@dataclass(frozen=True)
class Values:
    """New rows of ``model`` given as values of some of its columns (``attnames``; the others take their
    database defaults or an auto key): cheaper to build than instances when there are many."""

    model: type[models.Model]
    attnames: Sequence[str]
    rows: Sequence[Sequence[Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def instances(self) -> list[models.Model]:
        return [self.model(**dict(zip(self.attnames, row, strict=True))) for row in self.rows]


def write(groups: Sequence[Sequence[models.Model] | Values], using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT new rows of several models, in order (each group: rows of one model, as instances or
    :class:`Values`), the cheapest way for their number: up to :data:`FEW` rows in one round trip
    (:func:`insert_together`), more by COPY, one per group (:func:`load`, :func:`load_values`: auto keys are
    not read back)."""
    if sum(len(group) for group in groups) <= FEW:
        insert_together([group.instances() if isinstance(group, Values) else group for group in groups], using)
        return
    with transaction.atomic(using=using, savepoint=False):
        for group in groups:
            if isinstance(group, Values):
                load_values(group.model, group.attnames, group.rows, using)
            else:
                load(group, using)


def load(objs: Sequence[models.Model], using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT many new rows of one model: by COPY on PostgreSQL (row triggers and constraints apply to COPY as
    to INSERT), elsewhere as :func:`insert`. An auto primary key is left to the database, in list order, and
    not read back."""
    if not objs:
        return
    connection = connections[using]
    model = type(objs[0])
    if connection.vendor != "postgresql" or not _plain(model, connection):
        insert(objs, using)
        return
    cols = columns(model, connection)
    _copy(connection, cols, (cols.of(obj) for obj in objs))
    _saved(objs, using)


def load_values(
    model: type[models.Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]], using: str = DEFAULT_DB_ALIAS
) -> None:
    """INSERT ``rows`` (values of the columns ``attnames``, in order) as new rows of ``model``, whose other
    columns take their database defaults or an auto key: COPY on PostgreSQL, a multi-row INSERT elsewhere."""
    if not rows:
        return
    connection = connections[using]
    cols = columns(model, connection, attnames)
    if connection.vendor == "postgresql":
        _copy(connection, cols, (cols.prepared(row) for row in rows))
        return
    batch = _batch_size(cols, connection, len(rows))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            sql, params = _values_sql(cols, [cols.prepared(row) for row in rows[start : start + batch]], connection)
            cursor.execute(sql, params)


def _copy(connection: Any, cols: Columns, rows: Iterable[Sequence[Any]]) -> None:
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name in cols.names)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # psycopg's own cursor, for its COPY
        with cursor.cursor.copy(f"COPY {quote(cols.model._meta.db_table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def update(objs: Sequence[models.Model], attnames: Sequence[str], using: str = DEFAULT_DB_ALIAS) -> None:
    """UPDATE the columns ``attnames`` of ``objs`` (rows of one model) to their values, in one statement
    (PostgreSQL: from arrays; elsewhere ``bulk_update``). Row triggers see each row's change as with a single
    UPDATE."""
    if not objs:
        return
    connection = connections[using]
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._base_manager.using(using).bulk_update(objs, list(attnames))
        return
    quote = connection.ops.quote_name
    pk: Any = model._meta.pk
    cols = columns(model, connection, [pk.attname, *attnames])
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in cols.fields)
    aliases = ", ".join(quote(name) for name in cols.names)
    assignments = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in cols.names[1:])
    table = quote(model._meta.db_table)
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({aliases}) "  # noqa: S608 - our own names
        f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    rows = [[getattr(obj, f.attname) for f in cols.fields] for obj in objs]
    params = [list(column) for column in zip(*(cols.prepared(row) for row in rows), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _update_sql(
    queryset: models.QuerySet[Any], values: dict[str, Any], using: str, only_if: str = ""
) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE of ``queryset``'s rows to ``values``, and its parameters; ``only_if``: an SQL condition more."""
    query: UpdateQuery = queryset.query.chain(UpdateQuery)  # type: ignore[assignment]
    query.add_update_values(values)
    query.annotations = {}
    if only_if:
        query.where.add(ExtraWhere([only_if], []), AND)
    return query.get_compiler(using).as_sql()


def update_then_insert(
    queryset: models.QuerySet[Any],
    values: dict[str, Any],
    row: models.Model,
    together: Sequence[tuple[models.QuerySet[Any], dict[str, Any]]] = (),
) -> bool:
    """UPDATE the rows of ``queryset`` to ``values`` (plain values) and, only if that changed a row, INSERT ``row``
    (a new row of another model: the change's event) and UPDATE the rows of each ``(queryset, values)`` of
    ``together`` (other tables' rows that change with it); returns whether a row changed. One statement on
    PostgreSQL (data-modifying CTEs: the row is inserted and the others updated when the first UPDATE returned a
    row), one per write elsewhere. ``row``'s auto key is read back."""
    using = queryset.db
    connection = connections[using]
    model = type(row)
    if connection.vendor != "postgresql" or not _plain(model, connection):
        changed = queryset.update(**values) > 0
        if changed:
            for other, other_values in together:
                other.update(**other_values)
            insert([row], using)
        return changed
    update_sql, update_params = _update_sql(queryset, values, using)
    others = [_update_sql(other, other_values, using, CHANGED) for other, other_values in together]
    cols = columns(model, connection)
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name in cols.names)
    placeholders = ", ".join(["%s"] * len(cols.fields))
    returning = _returning(model, connection) or " RETURNING 1"
    table = quote(model._meta.db_table)
    insert_sql = f"INSERT INTO {table} ({names}) SELECT {placeholders}"  # noqa: S608 - our own names
    ctes = "".join(f", cwom_together_{i} AS ({sql})" for i, (sql, _params) in enumerate(others))
    sql = f"WITH cwom_changed AS ({update_sql} RETURNING 1){ctes} {insert_sql} WHERE {CHANGED}"
    with connection.cursor() as cursor:
        cursor.execute(
            sql + returning, [*update_params, *(p for _sql, params in others for p in params), *cols.of(row)]
        )
        keys = cursor.fetchall()
    if keys:
        _saved([row], using, keys if model._meta.auto_field is not None else None)
    return bool(keys)

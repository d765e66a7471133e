"""Two ways around the model layer: QuerySet methods and raw SQL. The database must refuse both."""

from __future__ import annotations

from typing import Any

from django.db import connection, models

from tests.kernel.assertions import execute


def _column_and_value(model: type[models.Model], name: str, value: Any) -> tuple[str, Any]:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return field.column, field.get_db_prep_save(value, connection)


def _where(model: type[models.Model], filters: dict[str, Any]) -> tuple[str, list[Any]]:
    pairs = [_column_and_value(model, name, value) for name, value in filters.items()]
    return " AND ".join(f"{column} = %s" for column, _ in pairs), [value for _, value in pairs]


class QuerySetWriter:
    """Writes through QuerySet.update() / .delete() / bulk_create(): no save(), no clean()."""

    name = "queryset"

    def insert(self, obj: models.Model) -> None:
        type(obj).objects.bulk_create([obj])

    def update(self, model: type[models.Model], filters: dict[str, Any], **values: Any) -> int:
        return model.objects.filter(**filters).update(**values)

    def delete(self, model: type[models.Model], **filters: Any) -> int:
        deleted, _ = model.objects.filter(**filters).delete()
        return deleted


class RawSqlWriter:
    """Writes through connection.cursor().execute() with hand-written SQL."""

    name = "raw_sql"

    def insert(self, obj: models.Model) -> None:
        fields = [f for f in obj._meta.concrete_fields if not (f.primary_key and getattr(obj, f.attname) is None)]
        columns = ", ".join(f.column for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
        execute(f"INSERT INTO {obj._meta.db_table} ({columns}) VALUES ({marks})", params)  # noqa: S608

    def update(self, model: type[models.Model], filters: dict[str, Any], **values: Any) -> int:
        pairs = [_column_and_value(model, name, value) for name, value in values.items()]
        assignments = ", ".join(f"{column} = %s" for column, _ in pairs)
        where, where_params = _where(model, filters)
        sql = f"UPDATE {model._meta.db_table} SET {assignments} WHERE {where}"  # noqa: S608
        return execute(sql, [value for _, value in pairs] + where_params)

    def delete(self, model: type[models.Model], **filters: Any) -> int:
        where, params = _where(model, filters)
        return execute(f"DELETE FROM {model._meta.db_table} WHERE {where}", params)  # noqa: S608


WRITERS = [QuerySetWriter(), RawSqlWriter()]

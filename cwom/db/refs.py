"""Ref lists of many objects in one query: the read behind every list, lineage and export.

A ref list is rows of one table pointing from an owner to a target: a link table's rows (an issue's
doctrine refs, a run's packets) or the rows whose foreign key names the owner (an issue's runs). Each list
is described by a :class:`RefArm`; :func:`ref_rows` reads every list of a batch of owners in one
``UNION ALL`` of plain tuples, no model instances::

    SELECT n, o, t, r FROM (
        SELECT 0 AS n, "issue_id" AS o, "doctrine_ref_id" AS t, "role" AS r,
               CAST(NULL AS timestamp with time zone) AS k1, "id" AS k2
          FROM "cwom_issuedoctrineref" WHERE "issue_id" = ANY(%s::text[])
        UNION ALL ...
    ) refs ORDER BY n, o, k1, k2, t

Every arm has the same six columns, a typed NULL where it has no such column (on PostgreSQL each column
of a UNION needs one type). The sort keys stay in the database: decoding a timestamp per row costs more
than the rest.

On PostgreSQL the owner ids go as one array literal (:func:`text_array`), built once and bound once per
arm: psycopg binds one string per arm, not one placeholder per id, the planner sees a constant array (an
index scan, or a hashed lookup when it reads a small table whole), and all ids go in one query. (A Python
list as the parameter gives the same SQL but costs up to ~20% more per query: psycopg adapts every element
for every arm.) Elsewhere the ids go as ``IN (%s, ...)``, :data:`BATCH` a query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models

BATCH = 500  # owner ids a query where each is a placeholder (an issue's 7 lists x 500: under SQLite's 32,766)

# The types of the columns an arm may lack: a link row's role, a row's creation time.
_ROLE_FIELD = models.CharField(max_length=64)
_TIME_FIELD = models.DateTimeField()

RefLists = list[dict[Any, list[tuple[Any, str | None]]]]


@dataclass(frozen=True)
class RefArm:
    """One ref list as rows of ``table``: ``owner`` names the owner, ``target`` the object referred to.

    ``role``: the column of the Ref's role (None: no role). The list is in the order of ``time_key`` (a
    timestamp column), then ``int_key`` (an integer column), then ``target``; a key that is None is left out.
    """

    table: str
    owner: str
    target: str
    role: str | None = None
    time_key: str | None = None
    int_key: str | None = None

    def sql(self, number: int, owners: str, connection: Any) -> str:
        """This arm's SELECT: columns ``n`` (``number``), ``o``, ``t``, ``r``, ``k1``, ``k2``, for the rows
        whose owner matches ``owners`` (``IN (%s, ...)`` or ``= ANY(%s::text[])``)."""
        q = connection.ops.quote_name
        role = q(self.role) if self.role else _typed_null(_ROLE_FIELD, connection)
        time_key = q(self.time_key) if self.time_key else _typed_null(_TIME_FIELD, connection)
        int_key = q(self.int_key) if self.int_key else "0"
        return (
            f"SELECT {number} AS n, {q(self.owner)} AS o, {q(self.target)} AS t, {role} AS r, "  # noqa: S608 - names from _meta
            f"{time_key} AS k1, {int_key} AS k2 FROM {q(self.table)} WHERE {q(self.owner)} {owners}"
        )


def _typed_null(field: models.Field[Any, Any], connection: Any) -> str:
    return f"CAST(NULL AS {field.db_type(connection)})"


def text_array(values: Sequence[str]) -> str:
    """``values`` as a PostgreSQL array literal (``{"a","b"}``), every element quoted: bind it as
    ``%s::text[]``. Backslashes and double quotes are escaped; any other character stands for itself."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def ref_rows(arms: Sequence[RefArm], ids: Sequence[Any], using: str = DEFAULT_DB_ALIAS) -> RefLists:
    """For each of ``arms``, ``{owner id: [(target id, role), ...]}`` in the list's order, for the owners
    ``ids``: one query (more on a database without arrays, :data:`BATCH` ids a query)."""
    lists: RefLists = [{} for _ in arms]
    if not ids or not arms:
        return lists
    connection = connections[using]
    array = connection.vendor == "postgresql" and all(isinstance(i, str) for i in ids)
    step = len(ids) if array else BATCH
    for start in range(0, len(ids), step):
        batch = ids[start : start + step]
        if array:
            owners, per_arm = "= ANY(%s::text[])", [text_array(batch)]
        else:
            owners, per_arm = "IN (" + ", ".join(["%s"] * len(batch)) + ")", list(batch)
        union = " UNION ALL ".join(arm.sql(number, owners, connection) for number, arm in enumerate(arms))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT n, o, t, r FROM ({union}) refs ORDER BY n, o, k1, k2, t", per_arm * len(arms))  # noqa: S608 - arms above
            for number, owner_id, target_id, role in cursor.fetchall():
                lists[number].setdefault(owner_id, []).append((target_id, role))
    return lists

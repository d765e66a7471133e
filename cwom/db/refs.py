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

For many owners at once (the export's chunks of 1,000) ``ref_rows(..., once=True)`` binds the array once, in
a CTE the arms join (``WITH owners AS (SELECT unnest(%s::text[]) AS id) ... WHERE o IN (SELECT id FROM
owners)``): planning and execution of 1,000 issues' lists 17 -> 10 ms at 100k, 1,000 runs' 18 -> 14 ms (hash
and index joins instead of each arm planned against its own 1,000-element constant; the totals by their key
instead of a scan); at 1M the same (13 ms: planning 2.9 -> 0.6 ms, the doctrine refs' hash join a little
slower). For a page of 50 the arrays per arm are faster (1.1 against 2.4-3.5 ms), so the API keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models

BATCH = 500  # owner ids a query where each is a placeholder (an issue's 7 lists x 500: under SQLite's 32,766)

# The types of the columns an arm may lack: a link row's role, a row's creation time.
_ROLE_FIELD = models.CharField(max_length=64)
_TIME_FIELD = models.DateTimeField()

RefLists = list[dict[Any, list[tuple[Any, str | None]]]]
RefTotals = dict[tuple[Any, str], int]


@dataclass(frozen=True)
class RefArm:
    """One ref list as rows of ``table``: ``owner`` names the owner, ``target`` the object referred to.

    ``role``: the column of the Ref's role (None: no role). The list is in the order of ``time_key`` (a
    timestamp column), then ``int_key`` (an integer column), then ``target``; a key that is None is left out.
    ``newest``: the list holds only that many rows, the last ones in that order, newest first (a bounded list:
    its length does not grow with the table; its total is in ``cwom_reftotal``, :func:`ref_totals`).
    """

    table: str
    owner: str
    target: str
    role: str | None = None
    time_key: str | None = None
    int_key: str | None = None
    newest: int | None = None

    def sql(self, number: int, owners: str, connection: Any) -> str:
        """This arm's SELECT: columns ``n`` (``number``), ``o``, ``t``, ``r``, ``k1``, ``k2``, for the rows
        whose owner matches ``owners`` (``IN (%s, ...)``, ``= ANY(%s::text[])`` or :data:`_ONCE`, see
        :func:`_owner_batches`)."""
        q = connection.ops.quote_name
        role = q(self.role) if self.role else _typed_null(_ROLE_FIELD, connection)
        time_key = q(self.time_key) if self.time_key else _typed_null(_TIME_FIELD, connection)
        int_key = q(self.int_key) if self.int_key else "0"
        columns = f"{q(self.target)} AS t, {role} AS r, {time_key} AS k1, {int_key} AS k2"
        owner = q(self.owner)
        if self.newest is None:
            return f"SELECT {number} AS n, {owner} AS o, {columns} FROM {q(self.table)} WHERE {owner} {owners}"  # noqa: S608 - names from _meta
        # Only the keys the table has (an index on (owner, keys) then serves the newest rows directly);
        # an integer key is a unique id, so the target is no tie-breaker after it.
        keys = [q(key) for key in (self.time_key, self.int_key or self.target) if key]
        newest_first = ", ".join(f"{key} DESC" for key in keys)
        if owners in (_ARRAY, _ONCE):
            # Per owner, the newest rows by an index scan that stops after ``newest``.
            source = "owners" if owners == _ONCE else "unnest(%s::text[]) AS owners(id)"
            return (
                f"SELECT {number} AS n, owners.id AS o, x.t, x.r, x.k1, x.k2 FROM {source} "  # noqa: S608
                f"CROSS JOIN LATERAL (SELECT {columns} FROM {q(self.table)} WHERE {owner} = owners.id "
                f"ORDER BY {newest_first} LIMIT {int(self.newest)}) x"
            )
        return (
            f"SELECT n, o, t, r, k1, k2 FROM (SELECT {number} AS n, {owner} AS o, {columns}, "  # noqa: S608
            f"ROW_NUMBER() OVER (PARTITION BY {owner} ORDER BY {newest_first}) AS rank "
            f"FROM {q(self.table)} WHERE {owner} {owners}) ranked WHERE rank <= {int(self.newest)}"
        )


def _typed_null(field: models.Field[Any, Any], connection: Any) -> str:
    return f"CAST(NULL AS {field.db_type(connection)})"


def text_array(values: Sequence[str]) -> str:
    """``values`` as a PostgreSQL array literal (``{"a","b"}``), every element quoted: bind it as
    ``%s::text[]``. Backslashes and double quotes are escaped; any other character stands for itself."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


_ARRAY = "= ANY(%s::text[])"
_ONCE = "IN (SELECT id FROM owners)"  # the ids bound once, in the query's CTE ``owners``


def _owner_batches(ids: Sequence[Any], connection: Any, once: bool = False) -> Iterator[tuple[str, list[Any]]]:
    """``ids`` as SQL conditions on an owner column with their parameters: all in one array on PostgreSQL
    (:func:`text_array`; ``once``: in the CTE, the parameters are the CTE's), else :data:`BATCH`
    placeholders at a time."""
    if connection.vendor == "postgresql" and all(isinstance(i, str) for i in ids):
        yield (_ONCE if once else _ARRAY), [text_array(ids)]
        return
    for start in range(0, len(ids), BATCH):
        batch = list(ids[start : start + BATCH])
        yield "IN (" + ", ".join(["%s"] * len(batch)) + ")", batch


def ref_rows(
    arms: Sequence[RefArm],
    ids: Sequence[Any],
    using: str = DEFAULT_DB_ALIAS,
    totals_of: Sequence[str] = (),
    *,
    once: bool = False,
) -> tuple[RefLists, RefTotals]:
    """For each of ``arms``, ``{owner id: [(target id, role), ...]}`` in the list's order (a bounded arm's:
    newest first), for the owners ``ids``; and ``{(owner id, related): total}`` of their bounded lists
    ``totals_of`` from ``cwom_reftotal`` (kept by triggers, :mod:`cwom.db_guards`; no row there: 0).

    One query (more on a database without arrays, :data:`BATCH` ids a query): the totals are one more arm of
    the union, its rows ``(n, owner, related, total as text)``. ``once``: the ids go once, in a CTE the arms
    join (for many ids: see the module's docstring); the same rows.
    """
    lists: RefLists = [{} for _ in arms]
    totals: RefTotals = {}
    if not ids or not (arms or totals_of):
        return lists, totals
    connection = connections[using]
    count_arm = len(arms)
    for owners, params in _owner_batches(ids, connection, once):
        head, head_params = "", []
        if owners == _ONCE:  # the arms' ids are the CTE's
            head, head_params, params = "WITH owners AS (SELECT unnest(%s::text[]) AS id) ", params, []
        selects = [arm.sql(number, owners, connection) for number, arm in enumerate(arms)]
        arm_params = [*head_params, *(params * len(arms))]
        if totals_of:
            selects.append(_totals_sql(count_arm, owners, len(totals_of), connection))
            arm_params += [*params, *totals_of]
        union = " UNION ALL ".join(selects)
        with connection.cursor() as cursor:
            cursor.execute(f"{head}SELECT n, o, t, r FROM ({union}) refs ORDER BY n, o, k1, k2, t", arm_params)  # noqa: S608 - arms above
            for number, owner_id, target_id, role in cursor.fetchall():
                if number == count_arm:
                    totals[(owner_id, target_id)] = int(role)
                else:
                    lists[number].setdefault(owner_id, []).append((target_id, role))
    for arm, grouped in zip(arms, lists, strict=True):
        if arm.newest is not None:
            for rows in grouped.values():
                rows.reverse()
    return lists, totals


def _totals_sql(number: int, owners: str, count: int, connection: Any) -> str:
    """The union's arm of the totals: ``(n, owner id, related, total)`` with the columns typed as the other
    arms' (a total as text where they have the role)."""
    role, time_key = _typed_null(_ROLE_FIELD, connection), _typed_null(_TIME_FIELD, connection)
    as_text = role.replace("NULL", "total")
    related = ", ".join(["%s"] * count)
    return (
        f"SELECT {number} AS n, owner_id AS o, related AS t, {as_text} AS r, {time_key} AS k1, 0 AS k2 "  # noqa: S608
        f"FROM cwom_reftotal WHERE owner_id {owners} AND related IN ({related})"
    )

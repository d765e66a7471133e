"""The contract shape of each kind, written once.

A kind's shape is a tree of nodes that maps the contract's JSON (nested groups, Refs) onto the model's
columns and link tables. From that one description come:

- ``dump(obj)``: the object in the contract's JSON shape (API responses, lineage, export, the
  bundle an executor receives);
- ``json_schema(kind, mode)``: JSON Schema 2020-12 for the object (``out``), a create body (``in``)
  and a PATCH body (``patch``) — committed under ``cwom/spec/jsonschema`` and used by the API docs;
- ``parse(kind, data, mode)``: a body checked against that schema and turned into column values and
  link lists, with every Ref resolved to exactly one object of exactly the right kind;
- ``LINK_TABLES``: every link's table, from which writes, the bulk import, the export's issue links and
  the API's link filters take it.

This package knows nothing about HTTP or DRF; :mod:`cwom.writes` applies what ``parse`` returns.

Reading is cheap whatever the size of an object's ref lists: ``fetch(queryset)`` reads the rows, then every
ref list (link tables, an issue's runs, a run's artifacts) of the whole batch of rows in one ``UNION ALL``
query of plain tuples, no model instances (:mod:`cwom.db.refs`); ``dump_many(objs)`` does the same for rows
already read; ``dump`` is a tree of closures built once per kind.

The modules, by what changes together (each imports only those before it):

- :mod:`~cwom.shapes.nodes`: the node types (a column, a timestamp, a Ref, a list of Refs, a group) and the
  JSON vocabulary they share (``ref_schema``, ``iso``);
- :mod:`~cwom.shapes.shape`: :class:`Shape`, a kind's model and nodes with the fields every kind has, and
  what follows from it: ``dumper``, ``queryset``, ``load_refs``;
- :mod:`~cwom.shapes.kinds`: the per-kind declarations (``SHAPES``, ``PATCHABLE``) and what is derived from
  them (``LINK_TABLES``), ``shape_for``, ``dump``;
- :mod:`~cwom.shapes.refs`: ref lists of objects being read (``fetch``, ``prime``, ``ref_ids``) and the Refs
  of a body being parsed (:class:`RefCollector`);
- :mod:`~cwom.shapes.schema`: ``json_schema``;
- :mod:`~cwom.shapes.parse`: ``parse`` (``read`` then ``resolve``), :class:`Parsed`, :class:`Errors`, ``kind_at``,
  ``error_path``, ``resolve_refs`` (Refs outside a kind's body), ``drop_echoed`` (read-only fields sent back).

Everything is re-exported here: callers write ``from cwom import shapes`` and ``shapes.dump(obj)``.
"""

from __future__ import annotations

from .kinds import LINK_TABLES, PATCHABLE, SHAPES, STR_LIST, dump, dump_many, own_state, shape_for
from .nodes import (
    ID_SCHEMA,
    MAX_LINKS,
    NEWEST,
    REFS_ATTR,
    ROLE_SCHEMA,
    TOTALS_ATTR,
    Col,
    Derived,
    FKRef,
    Group,
    LinkRefs,
    LinkTable,
    ListURL,
    Node,
    RefList,
    ReverseRefs,
    Time,
    Total,
    bounded,
    iso,
    join_path,
    leaves,
    make_ref,
    ref_input_schema,
    ref_schema,
)
from .parse import Errors, Parsed, drop_echoed, error_path, kind_at, parse, parse_own, read, resolve, resolve_refs
from .refs import RefCollector, fetch, prime, ref_ids
from .schema import SCHEMA_VERSION, json_schema
from .shape import ACTOR_OR_NULL, META, TAGS, TS, Shape

__all__ = [
    "ACTOR_OR_NULL",
    "ID_SCHEMA",
    "MAX_LINKS",
    "NEWEST",
    "LINK_TABLES",
    "META",
    "PATCHABLE",
    "REFS_ATTR",
    "TOTALS_ATTR",
    "ROLE_SCHEMA",
    "SCHEMA_VERSION",
    "SHAPES",
    "STR_LIST",
    "TAGS",
    "TS",
    "Col",
    "Derived",
    "Errors",
    "FKRef",
    "Group",
    "LinkRefs",
    "LinkTable",
    "ListURL",
    "Node",
    "Parsed",
    "RefCollector",
    "RefList",
    "ReverseRefs",
    "Shape",
    "Time",
    "Total",
    "bounded",
    "drop_echoed",
    "dump",
    "dump_many",
    "error_path",
    "fetch",
    "iso",
    "join_path",
    "json_schema",
    "kind_at",
    "leaves",
    "make_ref",
    "own_state",
    "parse",
    "parse_own",
    "prime",
    "ref_ids",
    "ref_input_schema",
    "read",
    "ref_schema",
    "resolve",
    "resolve_refs",
    "shape_for",
]

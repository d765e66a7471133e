"""The SQL fast paths: the few places where the service writes its own SQL instead of the ORM's, for
what the ORM would do for these rows in fewer round trips.

Each module is plain functions over tables and columns (names come from the models' ``_meta``); none knows
the contract's shapes or overrides a private Django API.

- :mod:`cwom.db.values`: the one routine that prepares column values for every path;
- :mod:`cwom.db.bulk`: multi-row and CTE inserts, COPY on PostgreSQL, the bulk UPDATE;
- :mod:`cwom.db.refs`: ref lists of a batch of objects in one query.
"""

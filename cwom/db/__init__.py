"""The SQL fast paths: the few places where the service writes its own SQL instead of the ORM's.

Each module here is plain functions over tables and columns (names come from models' ``_meta``); none
knows the contract's shapes or overrides a private Django API. :mod:`cwom.db.refs` reads ref lists.
"""

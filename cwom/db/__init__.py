"""The SQL fast paths of the kernel, in one place: what the ORM would do for these rows, in fewer round trips.

Every path prepares column values with one routine (:mod:`cwom.db.values`); the models and the write path
call them, and read as plain Django.
"""

"""What every CWOM object shares: a global id registry, the common fields, and the event log."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from .. import audit
from ..constraints import evaluate, referenced_fields
from ..db import bulk
from ..enums import EventAction, Kind
from ..fields import JSONField, JSONListField
from ..ids import new_ulid, validate_ulid
from ..validation import ShapeValidator, validate_meta, validate_tags

DUPLICATE_ID = "An object with this id already exists."


class ObjectIndex(models.Model):
    """One row per object of any kind: makes ids unique across kinds and resolves an id alone."""

    id = models.CharField(primary_key=True, max_length=26, validators=[validate_ulid])
    kind = models.CharField(max_length=32, choices=Kind.choices)

    class Meta:
        verbose_name = "object index entry"
        verbose_name_plural = "object index"

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @classmethod
    def kinds_of(cls, ids: Collection[str], using: str = DEFAULT_DB_ALIAS) -> dict[str, str]:
        """{id: kind} for those of ``ids`` that name an object (one indexed query, built without the ORM:
        every write with a Ref asks it)."""
        if not ids:
            return {}
        connection = connections[using]
        quote = connection.ops.quote_name
        marks = ", ".join(["%s"] * len(ids))
        sql = (
            f"SELECT {quote('id')}, {quote('kind')} FROM {quote(cls._meta.db_table)} "  # noqa: S608 - names only
            f"WHERE {quote('id')} IN ({marks})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, list(ids))
            return dict(cursor.fetchall())


class RefTotal(models.Model):
    """How many rows one bounded ref list of an object holds (an issue's runs, a run's artifacts, an issue's
    context packets and constraint snapshots): the ``<name>_total`` of its representation, which embeds only
    the newest rows.

    Written only by database triggers on the tables the lists are read from (:mod:`cwom.db_guards`,
    migration 0011), so every write path (the ORM, COPY, raw SQL, the importer) keeps it exact and a list
    page reads its totals by primary key, however long the lists are. ``related`` is the owner model's
    reverse accessor (``runs``, ``artifacts``, ``context_packet_links``, ``constraint_links``). No row: 0.
    """

    pk = models.CompositePrimaryKey("owner_id", "related")
    owner_id = models.CharField(max_length=26)
    related = models.CharField(max_length=32)
    total = models.BigIntegerField()

    class Meta:
        verbose_name = "ref list total"

    def __str__(self) -> str:
        return f"{self.owner_id}.{self.related} = {self.total}"


def jsonable(value: Any) -> Any:
    """A column value as it is written into an event's ``changes``."""
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


class Event(models.Model):
    """One recorded change: create, update, seal or transition of one object. Append-only."""

    id = models.BigAutoField(primary_key=True)
    object_id = models.CharField(max_length=26)
    object_kind = models.CharField(max_length=32, choices=Kind.choices)
    action = models.CharField(max_length=16, choices=EventAction.choices)
    changes = JSONField(default=dict, encoder=DjangoJSONEncoder)
    principal = models.CharField(max_length=255)
    actor = JSONField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["object_id", "id"], name="event_object_idx"),
            models.Index(fields=["object_kind", "action", "id"], name="event_kind_action_idx"),
            models.Index(fields=["at"], name="event_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=EventAction.values),
                name="event_action_valid",
                violation_error_message="Unknown event action.",
                violation_error_code="invalid_choice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_kind} {self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValidationError("Events are never edited.", code="immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError("Events are never deleted.", code="immutable")


# Sent with every event this module builds, inside the writing transaction (``event=`` the unsaved Event):
# event subscriptions (execution.subscriptions) ask for their deliveries right after the commit.
event_built = Signal()


def new_event(obj: CwomObject, action: str, changes: dict[str, Any], *, announce: bool = True) -> Event:
    """The (unsaved) event for a change of ``obj``, by the current principal; ``announce``: send
    ``event_built`` now (else the writer calls :func:`announce_event` once the event is written)."""
    actor = audit.current_actor()
    if actor is None and action == EventAction.CREATE:
        actor = obj.created_by
    event = Event(
        object_id=obj.pk,
        object_kind=obj.KIND,
        action=action,
        # [before, after] per field; a bounded link list's edit is already {"added": [...], "removed": [...]}.
        changes={
            name: change if isinstance(change, dict) else [jsonable(change[0]), jsonable(change[1])]
            for name, change in changes.items()
        },
        principal=audit.current_principal(),
        actor=actor,
    )
    if announce:
        announce_event(event)
    return event


def announce_event(event: Event) -> None:
    """Send ``event_built`` for ``event`` (inside the writing transaction)."""
    if event_built.receivers:
        event_built.send(Event, event=event)


def record_event(obj: CwomObject, action: str, changes: dict[str, Any]) -> Event:
    """Write the event for a change of ``obj``; call inside the transaction that made the change."""
    event = new_event(obj, action, changes)
    bulk.insert([event], obj._state.db or DEFAULT_DB_ALIAS)
    return event


class CwomObject(models.Model):
    """The fields and the write discipline shared by the seven kinds.

    ``save()`` registers a new id in :class:`ObjectIndex`, refuses changes to frozen fields and,
    unless told otherwise, records the create/update event in the same transaction.
    """

    KIND: ClassVar[str]
    # Fields that never change after creation (checked in clean() and save(), and by triggers).
    FROZEN_FIELDS: ClassVar[frozenset[str]] = frozenset()
    # Columns that move by themselves and are not worth an event diff.
    UNTRACKED_FIELDS: ClassVar[frozenset[str]] = frozenset({"updated_at"})

    id = models.CharField(primary_key=True, max_length=26, default=new_ulid, validators=[validate_ulid])
    created_at = models.DateTimeField(default=timezone.now)
    created_by = JSONField(null=True, blank=True, validators=[ShapeValidator("actor_or_null")])
    tags = JSONListField(default=list, blank=True, validators=[validate_tags])
    meta = JSONField(default=dict, blank=True, validators=[validate_meta])

    class Meta:
        abstract = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The id this instance drew from the field's default (None when it was supplied or read): a
        # fresh ULID is not worth asking the object index about (see clean()).
        self._drawn_id = None if args or "id" in kwargs or "pk" in kwargs else self.pk

    def __str__(self) -> str:
        return f"{self.KIND} {self.pk}"

    # --- writes -----------------------------------------------------------------------------------
    def save(self, *args: Any, record: bool = True, action: str | None = None, **kwargs: Any) -> None:
        """Save the row; with ``record`` also write the create/update event (``action`` overrides)."""
        adding = self._state.adding
        self.check_frozen()
        changes = self.changed_fields()
        # No savepoint of its own: past this point only a database error can fail, and that fails
        # the caller's transaction anyway.
        using = kwargs.get("using") or DEFAULT_DB_ALIAS
        with transaction.atomic(using=using, savepoint=False):
            if hasattr(self, "updated_at") and not adding:
                self.updated_at = timezone.now()
            if adding and not args and set(kwargs) <= {"using", "force_insert"}:
                event = [new_event(self, action or EventAction.CREATE, changes)] if record else []
                type(self).insert_new([self], event, using)
                return
            if adding:
                bulk.insert([ObjectIndex(pk=self.pk, kind=self.KIND)], using)
            super().save(*args, **kwargs)
            if record and (adding or changes):
                record_event(self, action or (EventAction.CREATE if adding else EventAction.UPDATE), changes)
            self._loaded = self._column_values()

    @classmethod
    def insert_new(
        cls, objs: Sequence[CwomObject], with_rows: Sequence[models.Model] = (), using: str = DEFAULT_DB_ALIAS
    ) -> None:
        """Write new objects of this kind (validated: see :meth:`full_clean_many`) with their index rows and
        ``with_rows`` (new rows of one model, e.g. their create events): in one round trip when they are few,
        by COPY when many (``bulk.write``). A taken id fails at the index row (IntegrityError, answered 409
        duplicate) if clean() did not see it."""
        if not objs:
            return
        bulk.write(
            [bulk.Values(ObjectIndex, ("id", "kind"), [(obj.pk, cls.KIND) for obj in objs]), objs, with_rows], using
        )
        for obj in objs:
            obj._loaded = obj._column_values()

    def open_for_links(self) -> dict[str, Any]:
        """Set this new object, validated as it will end up, to the state in which its links can still be
        written (the database refuses link changes after), and return the column values that then make it
        what it is (see ``cwom.writes.write_new``). Most kinds take links as they are: nothing."""
        return {}

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError("CWOM objects are never deleted.", code="immutable")

    @property
    def kind(self) -> str:
        return self.KIND

    # --- change tracking ----------------------------------------------------------------------
    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any) -> Self:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded = dict(zip(field_names, values, strict=True))
        return instance

    def _column_values(self) -> dict[str, Any]:
        return {f.attname: getattr(self, f.attname) for f in self._meta.concrete_fields}

    def loaded_values(self) -> dict[str, Any]:
        """Column values as last read from or written to the database ({} for a new object)."""
        if self._state.adding:
            return {}
        loaded = getattr(self, "_loaded", None)
        if loaded is None:
            row = type(self)._base_manager.filter(pk=self.pk).values(*self._column_values()).first()
            loaded = self._loaded = row or {}
        return loaded

    def changed_fields(self) -> dict[str, tuple[Any, Any]]:
        """{attname: (before, after)} for every column whose value differs from the stored one."""
        loaded = self.loaded_values()
        current = self._column_values()
        return {
            name: (loaded.get(name), value)
            for name, value in current.items()
            if name not in self.UNTRACKED_FIELDS and (not loaded or name not in loaded or loaded[name] != value)
        }

    def frozen_fields(self) -> frozenset[str]:
        """Fields that may not change now; subclasses widen it (a sealed packet freezes all)."""
        return self.FROZEN_FIELDS

    def check_frozen(self) -> None:
        if self._state.adding:
            return
        # An id never changes: a new primary key would save as a second row missing from ObjectIndex. Nor does
        # created_by: it records who created the object.
        frozen = self.frozen_fields() | {"id", "created_by"}
        illegal = sorted(name for name in self.changed_fields() if name in frozen or "*" in frozen)
        if illegal:
            raise ValidationError({name: self.frozen_error(name) for name in illegal})

    def frozen_error(self, name: str) -> ValidationError:
        """The refusal of a change to the frozen field ``name`` (a sealed packet says it is sealed)."""
        return ValidationError(
            "%(kind)s.%(field)s cannot change.", code="immutable", params={"kind": self.KIND, "field": name}
        )

    # --- validation ----------------------------------------------------------------------------
    def fill_defaults(self) -> None:
        """Derive fields that default from other objects (a run's repo); runs before field validation."""

    def full_clean(
        self,
        *args: Any,
        known_refs: Mapping[str, str] | None = None,
        lookups: Mapping[Any, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Django's full_clean; ``known_refs`` ({id: kind}) names objects the caller has just found in the
        object index, so a foreign key to one of them needs no existence query of its own. What the rules read
        from other rows is read first, at once (:meth:`lookups_for`), but for what ``lookups`` answers
        already."""
        batch = self.__dict__.get("_batch")
        if batch is not None:  # full_clean_many's: facts shared by the batch, its lookups asked already
            self._known_refs, self._lookups = batch
        else:
            self._known_refs = dict(known_refs or {})
            self._lookups = dict(lookups or {})
            self._lookups.update(type(self).lookups_for([self], self._lookups))
        try:
            self.fill_defaults()
            super().full_clean(*args, **kwargs)
        finally:
            self._known_refs, self._lookups = {}, {}

    @classmethod
    def full_clean_many(
        cls,
        objs: Sequence[CwomObject],
        *,
        known_refs: Mapping[str, str] | None = None,
        lookups: Mapping[Any, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``full_clean(**kwargs)`` of each of ``objs`` (objects of this kind), the rows their rules read from other
        rows read once for all of them (:meth:`lookups_for`). Raises the first object's errors."""
        known = dict(lookups or {})
        known.update(cls.lookups_for(objs, known))
        # One dict of facts for the batch (ids known to exist, rows read), not a copy per object.
        batch = (dict(known_refs or {}), known)
        for obj in objs:
            obj.__dict__["_batch"] = batch
            try:
                obj.full_clean(**kwargs)
            finally:
                del obj.__dict__["_batch"]

    @classmethod
    def lookups_for(cls, objs: Sequence[CwomObject], known: Mapping[Any, Any]) -> dict[Any, Any]:
        """What ``clean()`` of ``objs`` reads from other rows and ``known`` does not answer, read at once (one
        query per rule): {key: answer} as :meth:`looked_up` keeps them. Here: whether a new object's id,
        unless freshly drawn, is taken (by an object of any kind)."""
        ids = [
            obj.pk
            for obj in objs
            if obj._state.adding and obj.pk != obj._drawn_id and ("id_taken", obj.pk) not in known
        ]
        taken = set(ObjectIndex.objects.filter(pk__in=ids).values_list("id", flat=True)) if ids else set()
        return {("id_taken", pk): pk in taken for pk in ids}

    @classmethod
    def lookups_from(cls, rows: Iterable[models.Model]) -> dict[Any, Any]:
        """What ``rows`` (read by the caller, e.g. under a lock) answer of :meth:`lookups_for`'s questions."""
        return {}

    @staticmethod
    def unanswered(objs: Sequence[CwomObject], known: Mapping[Any, Any], key: str, attname: str) -> set[Any]:
        """The values of ``attname`` over ``objs`` whose lookup ``(key, value)`` ``known`` does not answer."""
        values = {getattr(obj, attname, None) for obj in objs} - {None}
        return {value for value in values if (key, value) not in known}

    def id_is_new(self) -> None:
        """The caller knows this new object's id is free (it drew a fresh ULID just now, or found it free in
        the object index): clean() does not ask again."""
        self._drawn_id = self.pk

    def looked_up(self, key: Any, query: Callable[[], Any]) -> Any:
        """``query()``'s answer, asked once per ``full_clean()`` when several rules need the same row."""
        lookups = getattr(self, "_lookups", None)
        if lookups is None:
            return query()
        if key not in lookups:
            lookups[key] = query()
        return lookups[key]

    def known_to_exist(self, object_id: str | None, kind: str) -> None:
        """Within ``full_clean()``: ``object_id`` is a ``kind`` that exists (e.g. read from another row's key)."""
        if object_id is not None and getattr(self, "_lookups", None) is not None:
            self._known_refs[object_id] = kind

    def clean_columns(self, attnames: Collection[str]) -> None:
        """``clean_fields()`` of the columns ``attnames`` only: a change that writes those columns and no other
        (the others were validated when they were written)."""
        self.clean_fields(exclude={f.name for f in self._meta.concrete_fields if f.attname not in attnames})

    def clean_fields(self, exclude: Any = None) -> None:
        known = getattr(self, "_known_refs", None)
        if known:
            verified = {name for name, attname, kind in self._keys() if known.get(getattr(self, attname)) == kind}
            # A key to an object of the right kind that exists: all ForeignKey.validate() would check.
            exclude = set(exclude or ()) | verified
        super().clean_fields(exclude)

    @classmethod
    def _keys(cls) -> list[tuple[str, str, str]]:
        """(name, attname, kind of the target) of each foreign key to a CWOM object."""
        keys = cls.__dict__.get("_cwom_keys")
        if keys is None:
            fields: list[Any] = list(cls._meta.concrete_fields)
            keys = [
                (f.name, f.attname, f.related_model.KIND)
                for f in fields
                if f.many_to_one and hasattr(f.related_model, "KIND")
            ]
            setattr(cls, "_cwom_keys", keys)  # noqa: B010 - a cache on the class itself
        return keys

    def _get_unique_checks(self, exclude: Any = None, include_meta_constraints: bool = False) -> Any:
        # The id's uniqueness is checked once, across every kind, against ObjectIndex in clean().
        # Django private API, absent from django-stubs.
        unique_checks, date_checks = super()._get_unique_checks(exclude, include_meta_constraints)  # type: ignore[misc]
        return [check for check in unique_checks if check[1] != ("id",)], date_checks

    def validate_constraints(self, exclude: Any = None) -> None:
        """Check constraints in Python (see cwom.constraints); the rest as Django does."""
        errors: dict[str, list[ValidationError]] = {}
        for model_class, model_constraints in self.get_constraints():
            for constraint in model_constraints:
                try:
                    if isinstance(constraint, models.CheckConstraint):
                        self._validate_check(model_class, constraint, exclude)
                    else:
                        constraint.validate(model_class, self, exclude=exclude)
                except ValidationError as error:
                    fields: Sequence[str] = getattr(constraint, "fields", ())
                    if getattr(error, "code", None) == "unique" and len(fields) == 1:
                        errors.setdefault(fields[0], []).append(error)
                    else:
                        errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def _validate_check(self, model_class: Any, constraint: models.CheckConstraint, exclude: Any) -> None:
        condition = constraint.condition
        if not isinstance(condition, models.Q):  # an expression: only the database can evaluate it
            constraint.validate(model_class, self, exclude=exclude)
            return
        if exclude and referenced_fields(condition) & set(exclude):
            return
        verdict = evaluate(condition, self)
        if verdict is None:
            constraint.validate(model_class, self, exclude=exclude)
        elif not verdict:
            raise ValidationError(constraint.get_violation_error_message(), code=constraint.violation_error_code)

    def clean(self) -> None:
        super().clean()
        pk = self.pk
        if (
            self._state.adding
            and pk != getattr(self, "_drawn_id", None)
            and self.looked_up(("id_taken", pk), lambda: ObjectIndex.objects.filter(pk=pk).exists())
        ):
            raise ValidationError({"id": ValidationError(DUPLICATE_ID, code="duplicate")})
        self.check_frozen()


class MutableCwomObject(CwomObject):
    """A kind that changes after creation and so carries ``updated_at``."""

    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class Link(models.Model):
    """Base of the link tables: an ordered pair with an optional role."""

    id = models.BigAutoField(primary_key=True)
    role = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        abstract = True

"""Creating and changing CWOM objects from contract-shaped bodies.

Every face of the service (API, commands, worker, enqueue) writes through these functions, so each
write is validated by the model layer (``full_clean()``), touches its link tables, and records exactly
one event in the same transaction. Errors are ValidationErrors keyed by contract paths.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from . import shapes
from .db import bulk
from .enums import EventAction, Kind, Status
from .models import ContextPacket, CwomObject, Issue, Run, record_event
from .models.base import new_event
from .models.briefing import sealed_error
from .models.runs import OPEN_INPUT_STATUSES

LinkItems = list[tuple[str, str | None]]


def contract_error(kind: str, error: ValidationError) -> ValidationError:
    """Re-key a model ValidationError by contract paths (``inputs_data_blobs`` -> ``inputs.data_blobs``)."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError(
        {
            ("non_field_errors" if name == "__all__" else shapes.error_path(kind, name)): [
                _contract_field(kind, _one_duplicate_code(e)) for e in errors
            ]
            for name, errors in error.error_dict.items()
        }
    )


def _one_duplicate_code(error: ValidationError) -> ValidationError:
    # Django says "unique" for a unique field; a unique constraint or a race in the index says
    # "duplicate" (integrity_code). A taken key has one code whichever layer noticed it.
    if error.code != "unique":
        return error
    message = error.message % error.params if error.params else error.message
    return ValidationError(message, code="duplicate")


def _contract_field(kind: str, error: ValidationError) -> ValidationError:
    # A message naming a model field (``%(field)s``: "its inputs_links never changes") names its contract path.
    params = error.params or {}
    if "field" not in params:
        return error
    return ValidationError(
        error.message, code=error.code, params={**params, "field": shapes.error_path(kind, params["field"])}
    )


def integrity_code(error: IntegrityError) -> str:
    """The machine-readable code of a database refusal: a guard trigger's own, or ``conflict``."""
    text = str(error)
    if "cwom:" in text:
        return text.split("cwom:", 1)[1].split(":", 1)[0]
    if "unique" in text.lower():
        return "duplicate"
    return "conflict"


def _validate(obj: CwomObject, known_refs: dict[str, str] | None = None) -> None:
    try:
        obj.full_clean(known_refs=known_refs)
    except ValidationError as error:
        raise contract_error(obj.KIND, error) from None


# --- links ------------------------------------------------------------------------------------------
def current_links(obj: CwomObject, name: str) -> LinkItems:
    model, owner, target = shapes.LINK_TABLES[(obj.KIND, name)]
    rows = model._default_manager.filter(**{owner: obj.pk}).order_by("id").values_list(f"{target}_id", "role")
    return list(rows)


def _check_links(obj: CwomObject, links: dict[str, LinkItems]) -> None:
    """Link rules that need the owner: nothing links to itself, packets belong to the issue, sealed stays sealed."""
    errors: dict[str, list[ValidationError]] = {}
    if isinstance(obj, ContextPacket) and obj.is_sealed_in_db():
        for name, items in links.items():
            if current_links(obj, name) != items:
                errors.setdefault(name, []).append(sealed_error(obj, name))
    if obj.KIND == Kind.ISSUE:
        for name in ("blocks", "blocked_by", "duplicates"):
            if any(target == obj.pk for target, _ in links.get(name, [])):
                errors.setdefault(f"relationships.{name}", []).append(
                    ValidationError("An issue cannot relate to itself.", code="self_reference")
                )
        packet_ids = [target for target, _ in links.get("context_packets", [])]
        if packet_ids:  # (no list, no query)
            foreign = ContextPacket.objects.filter(pk__in=packet_ids).exclude(for_issue_id=obj.pk)
            for packet_id in foreign.values_list("id", flat=True):
                errors.setdefault("context_packets", []).append(
                    ValidationError(f"Context packet {packet_id} is for another issue.", code="packet_issue_mismatch")
                )
    if obj.KIND == Kind.RUN and "context_packets" in links:
        packet_ids = [t for t, _ in links["context_packets"]]
        # What validate_inputs() reads (a packet's instructions may be large).
        packets = list(ContextPacket.objects.filter(pk__in=packet_ids).only("id", "for_issue_id", "sealed"))
        try:
            obj.validate_inputs(packets=packets)  # type: ignore[attr-defined]
        except ValidationError as error:
            errors.setdefault("inputs.context_packets", []).extend(error.error_dict["inputs"])
    if errors:
        raise ValidationError(errors)


def _write_links(obj: CwomObject, name: str, items: LinkItems) -> tuple[list[str], list[str]] | None:
    """Make the link table hold exactly ``items``; returns (before, after) ids, or None when unchanged."""
    before = current_links(obj, name)
    if before == items:
        return None
    model, owner, _target = shapes.LINK_TABLES[(obj.KIND, name)]
    model._default_manager.filter(**{owner: obj.pk}).delete()
    bulk.write([_link_rows((obj.KIND, name), [(obj.pk, target, role) for target, role in items])])
    return [t for t, _ in before], [t for t, _ in items]


def _bounded(obj: CwomObject, name: str) -> bool:
    """Whether link ``name`` of ``obj`` is embedded bounded (an issue's packets and snapshots)."""
    return any(node.name == name and node.newest is not None for node in shapes.shape_for(obj).links)


def _edited(obj: CwomObject, name: str, add: LinkItems, remove: LinkItems) -> LinkItems:
    """The whole list ``name`` after a PATCH's ``{"add", "remove"}``: removed first, then the added ones that
    are not linked already (with the same role) appended. At most :data:`shapes.MAX_LINKS` (a list that is
    embedded whole stays small)."""
    gone = {target for target, _role in remove}
    kept = [(target, role) for target, role in current_links(obj, name) if target not in gone]
    linked = dict(kept)
    conflicts = [target for target, role in add if target in linked and linked[target] != role]
    if conflicts:
        raise _link_exists(name, conflicts)
    result = kept + [(target, role) for target, role in add if target not in linked]
    if len(result) > shapes.MAX_LINKS:
        raise ValidationError(
            {
                name: [
                    ValidationError(
                        f"At most {shapes.MAX_LINKS} Refs; this change would make {len(result)}.", code="too_many_links"
                    )
                ]
            }
        )
    return result


def _link_exists(name: str, targets: list[str]) -> ValidationError:
    return ValidationError(
        {
            name: [
                ValidationError(
                    f"{', '.join(targets)} is linked already with another role: remove and add it in the same "
                    "change to give it a new role.",
                    code="link_exists",
                )
            ]
        }
    )


def _edit_bounded(obj: CwomObject, name: str, add: LinkItems, remove: LinkItems) -> dict[str, list[str]] | None:
    """Apply ``{"add", "remove"}`` to a bounded link list (whose whole list is never read): only the rows
    named are read and written. Returns ``{"added", "removed"}`` ids for the event, or None when nothing
    changed."""
    model, owner, target = shapes.LINK_TABLES[(obj.KIND, name)]
    rows = model._default_manager.filter(**{owner: obj.pk})
    named = {t for t, _role in add} | {t for t, _role in remove}
    linked = dict(rows.filter(**{f"{target}__in": named}).values_list(f"{target}_id", "role"))
    gone = [t for t, _role in remove if t in linked]
    conflicts = [t for t, role in add if t in linked and t not in gone and linked[t] != role]
    if conflicts:
        raise _link_exists(name, conflicts)
    new = [(t, role) for t, role in add if t in gone or t not in linked]
    if gone:
        rows.filter(**{f"{target}__in": gone}).delete()
    bulk.write([_link_rows((obj.KIND, name), [(obj.pk, t, role) for t, role in new])])
    if not gone and not new:
        return None
    return {"added": [t for t, _role in new], "removed": gone}


def add_links(obj: CwomObject, name: str, items: LinkItems) -> None:
    """Link ``items`` to the bounded list ``name`` of ``obj`` as a side effect of creating them (enqueue's
    snapshot): only the rows named are read; one event if any link is new. The object itself does not change
    (its ``updated_at`` and ETag stay)."""
    edited = _edit_bounded(obj, name, items, [])
    if edited:
        record_event(obj, EventAction.UPDATE, {name: edited})


def _link_rows(key: tuple[str, str], rows: list[tuple[str, str, str | None]]) -> bulk.Values:
    """``(owner id, target id, role)`` rows of the link ``key`` (owner kind, link name), for ``bulk.write``."""
    model, owner, target = shapes.LINK_TABLES[key]
    return bulk.Values(model, (f"{owner}_id", f"{target}_id", "role"), rows)


# --- create -----------------------------------------------------------------------------------------
def create(kind: str, data: Any) -> CwomObject:
    """Create one object of ``kind`` from a contract-shaped body; returns it ready for ``dump``.

    Its writes are one transaction (:func:`write_new`; an object without links: one statement, atomic alone,
    so no BEGIN and COMMIT round trips). A packet's version is drawn under a lock on its issue, held until the
    packet is written: that create is one transaction from the start.
    """
    parsed = shapes.parse(kind, data, "in")
    if kind != Kind.CONTEXT_PACKET:
        return create_parsed(parsed)
    with transaction.atomic():
        return create_parsed(parsed)


def create_parsed(parsed: shapes.Parsed) -> CwomObject:
    """Create from an already parsed body (inside the caller's transaction): :func:`create_many` of one."""
    return create_many(parsed.kind, [parsed])[0]


def create_many(
    kind: str,
    parsed: Sequence[shapes.Parsed],
    *,
    held: Sequence[models.Model] = (),
    drawn_ids: bool = False,
    before_write: Callable[[list[Any]], None] | None = None,
) -> list[Any]:
    """Create objects of ``kind`` from parsed create bodies (inside the caller's transaction): the one creation
    sequence of every face (API, enqueue, the worker's artifacts).

    The objects are validated by the model layer at once (``full_clean_many``: what their rules read from other
    rows is read once for all), ``held`` rows the caller has read (a run it holds locked) answering what they
    can; ``drawn_ids``: the bodies' ids were drawn by the caller just now (not looked up). Then their links are
    checked, ``before_write`` is called with the valid objects, and each is written with its index row, its
    links and its create event (objects without links: all in one round trip). Raises contract-keyed
    ValidationErrors, before anything is written.
    """
    model: Any = shapes.SHAPES[kind].model
    objs = []
    known_refs: dict[str, str] = {}
    for body in parsed:
        obj = model(**body.columns)
        if drawn_ids:
            obj.id_is_new()
        if isinstance(obj, ContextPacket) and not obj.version and obj.for_issue_id:
            # Serialise version picking per issue, so concurrent creates each get the next one.
            Issue.objects.select_for_update().filter(pk=obj.for_issue_id).exists()
            obj.version = ContextPacket.next_version(obj.for_issue_id)
        known_refs.update(body.known_refs)
        objs.append(obj)
    try:
        model.full_clean_many(objs, known_refs=known_refs, lookups=model.lookups_from(held))
    except ValidationError as error:
        raise contract_error(kind, error) from None
    for obj, body in zip(objs, parsed, strict=True):
        checked_links = dict(body.links)
        if isinstance(obj, Run) and obj.status != Status.PLANNED:
            # A run created ready needs its packets even when the body names none.
            checked_links.setdefault("context_packets", [])
        _check_links(obj, checked_links)
    if before_write is not None:
        before_write(objs)
    events = []
    for obj, body in zip(objs, parsed, strict=True):
        changes = _created(obj)
        changes.update({name: (None, [t for t, _ in items]) for name, items in body.links.items()})
        events.append(new_event(obj, EventAction.CREATE, changes))
    # A packet is one of its issue's packets from the start.
    issue_packets = [
        ((Kind.ISSUE, "context_packets"), obj.for_issue_id, obj.pk, None)
        for obj in objs
        if isinstance(obj, ContextPacket)
    ]
    write_new(objs, [body.links for body in parsed], events=events, more_links=issue_packets)
    # Everything dump() reads is known: a new object has exactly these links and nothing points at it.
    for obj, body in zip(objs, parsed, strict=True):
        shapes.prime(obj, body.links)
    return objs


def _created(obj: CwomObject) -> dict[str, tuple[Any, Any]]:
    """A new object's columns as the changes of its create event."""
    return {name: (None, value) for name, value in obj._column_values().items()}


def write_new(
    objs: Sequence[CwomObject],
    links: Sequence[dict[str, LinkItems]],
    *,
    events: Sequence[models.Model] = (),
    more_links: Sequence[tuple[tuple[str, str], str, str, str | None]] = (),
) -> None:
    """The one creation sequence (:func:`create_many`, the importer), for new objects of one kind, validated
    as they will end up, with their links (``links``: per object, by link name).

    Each object is written in the state that still takes links (``open_for_links``: a packet as a draft, a
    doctrine ref unpublished) with its id index row; then its link rows and ``more_links`` (other objects'
    links to these: ``((owner kind, link name), owner id, target id, role)``); then what it ends as, in one
    update per set of columns (a packet sealed, a doctrine ref published); then ``events``. Objects with
    neither links nor a later state: all in one round trip. Few rows go in one statement each, many by COPY
    (``bulk.write``).
    """
    if not objs:
        return
    model: Any = type(objs[0])
    finals = [obj.open_for_links() for obj in objs]
    tables: dict[tuple[str, str], list[tuple[str, str, str | None]]] = defaultdict(list)
    for obj, obj_links in zip(objs, links, strict=True):
        for name, items in obj_links.items():
            tables[(obj.KIND, name)] += [(obj.pk, target, role) for target, role in items]
    for key, owner_id, target, role in more_links:
        tables[key].append((owner_id, target, role))
    if not any(tables.values()) and not any(finals):
        model.insert_new(objs, events)
        return
    with transaction.atomic(savepoint=False):  # the caller's transaction, or one of its own
        model.insert_new(objs)
        bulk.write([_link_rows(key, rows) for key, rows in tables.items()])
        then: dict[tuple[str, ...], list[CwomObject]] = defaultdict(list)
        for obj, final in zip(objs, finals, strict=True):
            for name, value in final.items():
                setattr(obj, name, value)
            if final:
                then[tuple(final)].append(obj)
        for columns, moved in then.items():
            bulk.update(moved, columns)
        for obj in objs:
            obj._loaded = obj._column_values()
        if events:
            bulk.write([events])


# --- update -----------------------------------------------------------------------------------------
def update(obj: CwomObject, data: Any, *, if_match: bool | None = None) -> CwomObject:
    """Apply a PATCH body to ``obj`` (a run's status change goes through its state machine).

    ``if_match``, for a client's PATCH: whether the client made it conditional on the version it read. Only
    then may it replace a whole link list (else a link added meanwhile, by enqueue say, would be dropped
    unseen): :class:`ReplaceNeedsVersion` otherwise; and it never replaces a bounded list, whose
    representation shows only the newest (it sends ``{"add", "remove"}``). None: the service's own change
    (a command, a test), which may replace any list."""
    if not shapes.SHAPES[obj.KIND].mutable:
        raise ValidationError(
            {
                "non_field_errors": [
                    ValidationError(f"{obj.KIND} objects never change after creation.", code="immutable")
                ]
            }
        )
    parsed = shapes.parse(obj.KIND, data, "patch", current=lambda: shapes.dump(obj))
    with transaction.atomic():
        locked = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
        if if_match is not None:
            parsed.extras["if_match"] = if_match
        update_parsed(locked, parsed)
    return reload(locked)


class ReplaceNeedsVersion(Exception):
    """A PATCH replaces a whole link list without ``If-Match`` (the API answers 428)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(
            f"Replacing {', '.join(names)} as a whole needs If-Match with the ETag you read; or change it with "
            '{"add": [...], "remove": [...]}.'
        )


def _check_replacements(obj: CwomObject, parsed: shapes.Parsed, if_match: bool) -> None:
    """A whole list in a PATCH: sent back as read, it changes nothing (dropped); a bounded list cannot be
    replaced (422 ``bounded_list``); another one only under ``If-Match``."""
    paths = shapes.shape_for(obj).column_paths()
    unversioned = []
    for name, items in list(parsed.links.items()):
        if _bounded(obj, name):
            shown = [(ref["id"], ref["role"]) for ref in _at_path(shapes.dump(obj), paths[name])]
            if items == shown:
                del parsed.links[name]
                continue
            raise ValidationError(
                {
                    name: [
                        ValidationError(
                            f"{paths[name]} shows only the newest {shapes.NEWEST}: change it with "
                            '{"add": [...], "remove": [...]}, not by sending a whole list.',
                            code="bounded_list",
                        )
                    ]
                }
            )
        if not if_match and items != current_links(obj, name):
            unversioned.append(paths[name])
    if unversioned:
        raise ReplaceNeedsVersion(unversioned)


def _at_path(document: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        document = document[part]
    return document


def update_parsed(obj: Any, parsed: shapes.Parsed) -> None:
    """Apply a parsed PATCH to ``obj`` (locked by the caller): columns, whole link lists, link edits (a list
    embedded whole is edited as a whole; a bounded one row by row), then the one event."""
    columns = dict(parsed.columns)
    action = EventAction.UPDATE
    target_status = None
    failure: dict[str, Any] = {}
    if isinstance(obj, Run) and "status" in columns and columns["status"] != obj.status:
        target_status = columns.pop("status")
        failure = {k: columns.pop(k) for k in ("failure_category", "failure_message") if k in columns}
    if isinstance(obj, ContextPacket) and columns.get("sealed") and not obj.sealed:
        columns.pop("sealed")
        action = EventAction.SEAL
    if isinstance(obj, Run) and (parsed.links or parsed.link_edits) and obj.status not in OPEN_INPUT_STATUSES:
        raise ValidationError(
            {"inputs": [ValidationError("A run's inputs never change after it starts.", code="inputs_frozen")]}
        )
    if "if_match" in parsed.extras:  # a client's PATCH
        _check_replacements(obj, parsed, parsed.extras["if_match"])
    bounded_edits: dict[str, tuple[LinkItems, LinkItems]] = {}
    for name, (add, remove) in parsed.link_edits.items():
        if _bounded(obj, name):
            bounded_edits[name] = (add, remove)
        else:
            parsed.links[name] = _edited(obj, name, add, remove)
    for name, value in columns.items():
        setattr(obj, name, value)
    _validate(obj, parsed.known_refs)
    # What is added to a bounded list is checked as a list of its own (its rules are per Ref).
    _check_links(obj, {**parsed.links, **{name: add for name, (add, _remove) in bounded_edits.items()}})
    changes: dict[str, Any] = obj.changed_fields()
    for name, items in parsed.links.items():
        moved = _write_links(obj, name, items)
        if moved:
            changes[name] = moved
    for name, (add, remove) in bounded_edits.items():
        edited = _edit_bounded(obj, name, add, remove)
        if edited:
            changes[name] = edited
    if action == EventAction.SEAL:
        obj.seal(record=False)
        changes.update(sealed=(False, True), sealed_at=(None, obj.sealed_at))
    elif changes:
        obj.save(record=False)
    if changes:
        record_event(obj, action, changes)
    if target_status is not None:
        transition(obj, target_status, **failure)


def transition(
    run: Run,
    status: str,
    failure_category: str | None = None,
    failure_message: str | None = None,
    *,
    locked: bool = False,
    together: Sequence[tuple[models.QuerySet[Any], dict[str, Any]]] = (),
    **extra: Any,
) -> Run:
    """Move ``run`` through its state machine (compare-and-set), raising contract-keyed errors.

    ``locked``: ``run`` was read under a row lock in the current transaction; ``together``: other rows' updates
    written with the move (see Run.transition_to)."""
    try:
        run.transition_to(
            status,
            failure_category=failure_category,
            failure_message=failure_message,
            extra=extra or None,
            locked=locked,
            together=together,
        )
    except ValidationError as error:
        raise contract_error(Kind.RUN, error) from None
    return run


def seal(packet: ContextPacket) -> ContextPacket:
    """Seal a draft packet (one-way)."""
    with transaction.atomic():
        locked = ContextPacket.objects.select_for_update().get(pk=packet.pk)
        try:
            locked.seal()
        except ValidationError as error:
            raise contract_error(Kind.CONTEXT_PACKET, error) from None
    return reload(locked)


def reload(obj: models.Model) -> Any:
    """``obj`` read again with everything its contract shape needs."""
    return shapes.shape_for(obj).queryset().get(pk=obj.pk)

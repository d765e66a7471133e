"""Loading a CWOM export into this deployment with ids, timestamps, links and history preserved.

Each object is checked by the same rules as every other write: ``shapes.read`` and ``shapes.resolve`` (the
two halves of ``shapes.parse``) for the contract shape and its Refs, ``full_clean_many()`` for the model's
rules, then the database's constraints and guard triggers. There is one engine, :class:`_Chunk`: lines are
applied a chunk at a time, the checks that read other rows batched (one query per chunk, not per object),
each table written at once. A chunk with a line that is not good is rolled back and its lines are applied
again one by one, each as a chunk of one in its own savepoint, so a bad line leaves nothing behind and is
reported with its line number and why, while the chunk's good lines land (in an atomic import, the whole
file is refused).

The import is idempotent: a line whose object, link or event is already here exactly as the line says
changes nothing; one that differs is reported as a conflict and never overwritten. No new events are
recorded: the file's own events are the history.

Objects whose rules depend on their past are written the way the live write path writes them: a packet
as a draft, its links, then sealed; a doctrine ref unpublished, its links, then published; a run in an
open status, its inputs, then moved to its recorded status and telemetry in one update.

Whether the file is a whole export is decided in one place, :class:`_Frame`: line 1
must be the header of this format version (else nothing is applied: :class:`UnsupportedFormat`), and the
file must end with its trailer, whose counts must match the records seen (else the import is
incomplete: :attr:`ImportResult.incomplete`; an atomic import or a dry run is rolled back before it
commits). The chunks only ever see the lines between the two.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction
from django.db.models import UniqueConstraint

from .. import fields, shapes, writes
from ..db import bulk
from ..enums import EventAction, Kind, Status
from ..ids import ULID_RE
from ..models import KIND_MODELS, Artifact, ContextPacket, Event, Issue, ObjectIndex
from ..models.runs import OPEN_INPUT_STATUSES
from ..validation import parse_timestamp
from . import (
    ARTIFACT_CONTENT,
    EVENT,
    HEADER,
    ISSUE_LINK,
    ISSUE_LINK_RELATIONS,
    ISSUE_LINK_TABLES,
    OBJECT_ORDER,
    PARENT,
    READABLE_VERSIONS,
    TRAILER,
    comparable,
    deferred_fields,
    without,
)

CREATED = "created"
UNCHANGED = "unchanged"
DEFAULT_BATCH = 2000
KEPT_PROBLEMS = 1000
# A run's columns that are set after its inputs are linked (the database refuses new inputs once started).
RUN_FINAL_COLUMNS = ("status", "started_at", "ended_at", "duration_s", "failure_category", "failure_message")


class LineError(Exception):
    """A line that cannot be applied; the messages say why."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class UnsupportedFormat(Exception):
    """The file is not a CWOM export this version can read: empty, unreadable, or line 1 is not the header
    of this format version. Raised before any line is applied."""


class _RollBack(Exception):
    pass


# What a record that is not good raises: the chunk is then applied line by line, and a line says why.
NOT_GOOD = (LineError, ValidationError, DatabaseError)
EVENT_ACTIONS = frozenset(EventAction.values)  # the enum's property builds its list at every call


@dataclass
class Problem:
    """A line that was not applied."""

    line: int
    label: str
    messages: list[str]

    def __str__(self) -> str:
        return f"line {self.line}: {self.label}: {'; '.join(self.messages)}"


@dataclass
class ImportResult:
    """What an import did: records created and found unchanged by record kind, the lines it refused, and
    whether the file held the whole export (``incomplete`` says why not)."""

    created: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)  # record lines read between header and trailer, by kind
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    lines: int = 0
    incomplete: str | None = None
    rolled_back: bool = False

    def refuse(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(problem)

    @property
    def clean(self) -> bool:
        """The whole export, every line applied (or, in a dry run, applicable)."""
        return self.incomplete is None and not self.problem_count


# The record kinds a trailer counts (the exporter's ExportCounts): every record but the header and trailer.
COUNTED_KINDS = frozenset((*OBJECT_ORDER, ARTIFACT_CONTENT, ISSUE_LINK, EVENT))


class _Frame:
    """What makes a file a whole CWOM export, checked here for both engines.

    :meth:`body` checks line 1 (the header of this format version, else :class:`UnsupportedFormat`:
    nothing is applied), decodes bytes, takes the trailer out of the stream and refuses what follows it,
    and hands on the numbered lines in between. :meth:`finish`, once they are applied, says whether the
    file was whole: a file without its trailer was cut short; a trailer whose counts differ from the
    records seen means lines were lost or added. Either way the import is incomplete.
    """

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self.trailer_line: int | None = None
        self.counts: dict[str, int] | None = None  # the trailer's, when they are well formed
        self.read_error: str | None = None

    def body(self, lines: Iterable[str | bytes]) -> Iterator[tuple[int, str]]:
        result = self.result
        source = iter(lines)
        try:
            first = next(source, None)
        except OSError as error:
            raise UnsupportedFormat(f"line 1: the file cannot be read ({error.strerror or error}).") from error
        if first is None:
            raise UnsupportedFormat("The file is empty: a CWOM export starts with its CwomExport header on line 1.")
        self._header(first)
        number = result.lines = 1
        try:
            for number, line in enumerate(source, 2):
                if isinstance(line, str):
                    text = line
                else:
                    try:
                        text = line.decode()
                    except UnicodeDecodeError as error:
                        result.refuse(Problem(number, "?", [f"not UTF-8 text ({error.reason} at byte {error.start})"]))
                        continue
                if self.trailer_line is not None:
                    if text.strip():
                        ended = f"after the {TRAILER} trailer on line {self.trailer_line}, where the export ends"
                        result.refuse(Problem(number, "?", [ended]))
                    continue
                if HEADER in text and self._frame_line(number, text):  # HEADER is a prefix of TRAILER
                    continue
                yield number, text
        except OSError as error:
            self.read_error = f"reading the file failed after line {number} ({error.strerror or error})"
        finally:
            result.lines = number

    def _header(self, line: str | bytes) -> None:
        got, record = _read_record(line)
        if record is None or record.get("kind") != HEADER:
            raise UnsupportedFormat(f"line 1: expected the {HEADER} header, got {got}: this is not a CWOM export.")
        version = record.get("format_version")
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise UnsupportedFormat(
                f"line 1: this is a CWOM export of format version {version!r}; "
                f"this service reads format versions {', '.join(map(str, READABLE_VERSIONS))}."
            )

    def _frame_line(self, number: int, text: str) -> bool:
        """Take a header or trailer line out of the stream (refusing a second header); other lines stay."""
        _got, record = _read_record(text)
        kind = record.get("kind") if record is not None else None
        if kind == HEADER:
            self.result.refuse(Problem(number, HEADER, ["a second header: only line 1 holds one"]))
            return True
        if kind == TRAILER:
            self.trailer_line = number
            counts = record.get("counts") if record is not None else None
            if isinstance(counts, dict) and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
            ):
                self.counts = counts
            return True
        return False

    def finish(self) -> None:
        """Once every line is applied: whether the file held the whole export (``result.incomplete``)."""
        self.result.incomplete = self._incomplete()

    def _incomplete(self) -> str | None:
        if self.read_error is not None:
            return self.read_error
        if self.trailer_line is None:
            return f"the file ends at line {self.result.lines} without its {TRAILER} trailer: it was cut short"
        if self.counts is None:
            return f"the {TRAILER} trailer on line {self.trailer_line} has no counts to check the file against"
        seen = self.result.seen
        kinds = sorted({*self.counts, *(kind for kind in seen if kind in COUNTED_KINDS)})
        wrong = [
            f"{kind} {self.counts.get(kind, 0)} in the trailer, {seen[kind]} in the file"
            for kind in kinds
            if self.counts.get(kind, 0) != seen[kind]
        ]
        if wrong:
            return (
                f"the file does not hold the records its {TRAILER} trailer on line {self.trailer_line} counts "
                f"({'; '.join(wrong)}): lines were lost or added"
            )
        return None


def _read_record(line: str | bytes) -> tuple[str, dict[str, Any] | None]:
    """A line read as a record (a JSON object with a string ``kind``), or None and what the line is instead."""
    try:
        text = line.decode() if isinstance(line, bytes) else line
    except UnicodeDecodeError:
        return "bytes that are not UTF-8 text", None
    if not text.strip():
        return "an empty line", None
    try:
        record = json.loads(text)
    except ValueError:
        return f"text that is not JSON ({_excerpt(text)})", None
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return f"JSON that is not a record ({_excerpt(text)})", None
    return f"a {record['kind']!r} record", record


def _excerpt(text: str, size: int = 40) -> str:
    text = text.strip()
    return repr(text[:size]) + ("..." if len(text) > size else "")


class Importer:
    """Applies the lines of an export (see :mod:`cwom.portability`) to this database."""

    def __init__(self, *, batch_size: int = DEFAULT_BATCH, on_line: Callable[[int], None] | None = None) -> None:
        self.batch_size = batch_size
        self.on_line = on_line
        self.result = ImportResult()

    # --- driving -----------------------------------------------------------------------------------
    def load(self, lines: Iterable[str | bytes], *, atomic: bool = False, dry_run: bool = False) -> ImportResult:
        """Apply ``lines`` (text, or bytes decoded as UTF-8 line by line). Committed every ``batch_size``
        lines, or all at once (``atomic``: nothing is written unless the file is whole and every line is
        good; ``dry_run``: everything is checked and then rolled back).

        Raises UnsupportedFormat for a file this version cannot read (nothing of it is applied).
        """
        self.result = ImportResult()
        frame = _Frame(self.result)
        body = frame.body(lines)
        if atomic or dry_run:
            try:
                with transaction.atomic():
                    while batch := list(itertools.islice(body, self.batch_size)):
                        self._batch(batch)
                    frame.finish()  # before the commit: a cut file is rolled back
                    if dry_run or not self.result.clean:
                        raise _RollBack
            except _RollBack:
                self.result.rolled_back = True
            return self.result
        while batch := list(itertools.islice(body, self.batch_size)):
            with transaction.atomic():
                self._batch(batch)
        frame.finish()
        return self.result

    def _batch(self, batch: list[tuple[int, str]]) -> None:
        """One chunk of lines in bulk; when some line of it is not good, the chunk is rolled back and its lines
        are applied one by one (:meth:`_line`), so the good ones land and the bad one is reported."""
        chunk = _Chunk()
        try:
            records = [_decode(text) for _number, text in batch if text.strip()]
            with transaction.atomic():
                chunk.apply(records)
        except NOT_GOOD:
            for number, text in batch:
                self._line(number, text)
            return
        self.result.seen.update(record["kind"] for record in records)
        self.result.created.update(chunk.created)
        self.result.unchanged.update(chunk.unchanged)
        if self.on_line:
            for number, _text in batch:
                self.on_line(number)

    def _line(self, number: int, text: str) -> None:
        """One line: a chunk of one, in its own savepoint; a line that is not good is reported with why."""
        if self.on_line:
            self.on_line(number)
        if not text.strip():
            return
        try:
            record = _decode(text)
        except LineError as error:
            self.result.refuse(Problem(number, "?", error.messages))
            return
        kind = record["kind"]
        self.result.seen[kind] += 1
        label = f"{kind} {record['id']}" if isinstance(record.get("id"), str) else kind
        chunk = _Chunk(precise=True)
        try:
            with transaction.atomic():
                chunk.apply([record])
        except NOT_GOOD as error:
            self.result.refuse(Problem(number, label, _messages(error)))
            return
        self.result.created.update(chunk.created)
        self.result.unchanged.update(chunk.unchanged)


def _decode(text: str) -> dict[str, Any]:
    """A line's record: a JSON object with a string ``kind``."""
    try:
        record = fields.loads(text)  # json.loads' values (orjson would read a long integer as a float)
    except ValueError as error:
        raise LineError(f"not a JSON document ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        raise LineError("a record is a JSON object with a kind")
    return record


class _Chunk:
    """Records applied in bulk: a fixed number of queries per run of same-kind records.

    Every object is checked by the model layer (``full_clean_many`` reads what its rules need from other rows
    once per chunk), its Refs are resolved at once (``shapes.resolve``), then each table is written at once
    (:mod:`cwom.db.bulk`); the database's constraints and guard triggers check every row. A record that is not
    good raises one of :data:`NOT_GOOD`, saying why. ``precise`` (a chunk of one line): unique fields and
    constraints are checked before the write, for their clearer messages (in bulk, the database refuses the
    chunk and its lines are then applied one by one).
    """

    def __init__(self, *, precise: bool = False) -> None:
        self.precise = precise
        self.created: Counter[str] = Counter()
        self.unchanged: Counter[str] = Counter()

    def apply(self, records: list[dict[str, Any]]) -> None:
        # An artifact's content line follows its artifact: a run of artifacts and their contents is one
        # group (artifacts first, then the contents; see _artifacts).
        for kind, group in itertools.groupby(records, key=_group_kind):
            items = list(group)
            if kind == Kind.ARTIFACT:
                self._artifacts(items)
            elif kind in OBJECT_ORDER:
                self._objects(kind, items)
            elif kind == EVENT:
                self._events(items)
            elif kind == ISSUE_LINK:
                self._issue_links(items)
            else:
                raise LineError(f"unknown record kind {kind!r}")

    def _count(self, kind: str, outcome: str) -> None:
        (self.created if outcome == CREATED else self.unchanged)[kind] += 1

    # --- objects -----------------------------------------------------------------------------------
    def _objects(self, kind: str, records: list[dict[str, Any]]) -> None:
        ids = [record.get("id") for record in records]
        if not all(isinstance(i, str) and ULID_RE.match(i) for i in ids):
            raise LineError("id: an imported object needs its ULID id (ids are preserved)")
        if len(set(ids)) != len(ids):
            raise LineError("id: an object comes twice in one chunk")  # line by line: the second one compares
        found = dict(ObjectIndex.objects.filter(pk__in=ids).values_list("id", "kind"))
        fresh = []
        for record in records:
            if record["id"] in found:
                self._count(kind, _compare_existing(kind, found[record["id"]], record))
            else:
                fresh.append(record)
        if not fresh:
            return
        shape = shapes.SHAPES[kind]
        refs, errors = shapes.RefCollector(), shapes.Errors()
        parsed = [_parse(kind, shape, record, refs, errors) for record in fresh]
        # A Ref may name an object of this group (a run retrying an earlier run): it is written with them.
        resolved = shapes.resolve(shape, refs, errors, known={record["id"]: kind for record in fresh})
        errors.raise_if_any()
        objs = [obj for obj, _links in parsed]
        links = [links for _obj, links in parsed]
        if kind == Kind.CONTEXT_PACKET and any(p.sealed and p.sealed_at is None for p in objs):
            raise LineError("sealed_at: a sealed packet needs its sealed_at")
        finals = [_open_run(run) for run in objs] if kind == Kind.RUN else []
        _validate(shape.model, objs, resolved, constraints=self.precise)
        if kind == Kind.RUN:
            _check_finals(objs, links, finals)
        writes.write_new(objs, links)
        if kind == Kind.RUN:
            moved = []
            for run, final in zip(objs, finals, strict=True):
                if final["status"] != run.status:
                    moved.append(run)
                for name, value in final.items():
                    setattr(run, name, value)
            # Their recorded statuses once their inputs are linked: the database checks each final state here.
            bulk.update(moved, RUN_FINAL_COLUMNS)
        self.created[kind] += len(objs)

    # --- artifact bytes ----------------------------------------------------------------------------
    def _artifacts(self, records: list[dict[str, Any]]) -> None:
        """Artifact lines and ArtifactContent lines, interleaved as an export writes them: the artifacts in
        bulk, then the contents in bulk, which is what line-by-line order gives when each content line
        names an artifact that is here already or comes before it in the group."""
        artifacts = [record for record in records if record["kind"] == Kind.ARTIFACT]
        contents = [record for record in records if record["kind"] == ARTIFACT_CONTENT]
        if artifacts:
            self._objects(Kind.ARTIFACT, artifacts)
        if contents:
            later: set[Any] = set()
            for record in reversed(records):
                if record["kind"] == Kind.ARTIFACT:
                    later.add(record.get("id"))
                elif record.get("artifact") in later:
                    raise LineError("artifact: the artifact's content comes before the artifact")
            self._artifact_contents(contents)

    def _artifact_contents(self, records: list[dict[str, Any]]) -> None:
        """The artifacts' stored names read once, one update."""
        pairs = [(record.get("artifact"), record.get("stored_name")) for record in records]
        for _artifact_id, name in pairs:
            if not isinstance(name, str) or not name or len(name) > 500:
                raise LineError("stored_name: a storage name of 1 to 500 characters")
        wanted = {a for a, _n in pairs if isinstance(a, str)}
        current: dict[Any, Any] = dict(Artifact.objects.filter(pk__in=wanted).values_list("id", "stored_name"))
        stored: dict[Any, Any] = {}
        for artifact_id, name in pairs:
            if artifact_id not in current:
                raise LineError(f"artifact: no Artifact has id {artifact_id!r} here")
            if current[artifact_id] == name:
                self.unchanged[ARTIFACT_CONTENT] += 1
                continue
            if current[artifact_id]:
                raise LineError(f"conflict: artifact {artifact_id} already has stored bytes ({current[artifact_id]})")
            current[artifact_id] = stored[artifact_id] = name
            self.created[ARTIFACT_CONTENT] += 1
        bulk.update([Artifact(pk=pk, stored_name=name) for pk, name in stored.items()], ["stored_name"])

    # --- issue links -------------------------------------------------------------------------------
    def _issue_links(self, records: list[dict[str, Any]]) -> None:
        """The ends resolved and the links already here read once per relation; a parent is set on its own
        (its chain is walked row by row). The rules of the links themselves (nothing relates an issue to
        itself, an issue lists only its own packets) are the database's: a refused row sends the chunk line
        by line, where the line says why."""
        links = [_checked_link(record) for record in records]
        errors = shapes.Errors()
        here: dict[str, dict[tuple[str, str], str | None]] = {}
        for relation in dict.fromkeys(link[0] for link in links):
            refs = shapes.RefCollector()
            for rel, issue_id, target, _role in links:
                if rel == relation:
                    refs.want(issue_id, Kind.ISSUE, "issue")
                    refs.want(target, _target_kind(relation), "target")
            refs.resolve({"issue": Kind.ISSUE, "target": _target_kind(relation)}, errors)
            if relation != PARENT:
                model, owner, target_field, _kind = ISSUE_LINK_TABLES[relation]
                owners = {issue_id for rel, issue_id, _target, _role in links if rel == relation}
                found = model._default_manager.filter(**{f"{owner}_id__in": owners})
                rows = found.values_list(f"{owner}_id", f"{target_field}_id", "role")
                here[relation] = {(issue_id, target_id): role for issue_id, target_id, role in rows}
        errors.raise_if_any()
        new: dict[type[Any], list[Any]] = defaultdict(list)
        for relation, issue_id, target, role in links:
            if relation == PARENT:
                self._count(ISSUE_LINK, _set_parent(issue_id, target["id"]))
                continue
            pair = (issue_id, target["id"])
            if pair in here[relation]:
                if here[relation][pair] != role:
                    raise LineError(f"conflict: this link exists here with role {here[relation][pair]!r}")
                self.unchanged[ISSUE_LINK] += 1
                continue
            model, owner, target_field, _kind = ISSUE_LINK_TABLES[relation]
            here[relation][pair] = role
            new[model].append(model(**{f"{owner}_id": issue_id, f"{target_field}_id": target["id"], "role": role}))
            self.created[ISSUE_LINK] += 1
        for link_rows in new.values():
            bulk.load(link_rows)

    # --- events ------------------------------------------------------------------------------------
    def _events(self, records: list[dict[str, Any]]) -> None:
        """The objects' kinds and their events already here read once; the new ones written at once."""
        events = [_checked_event(record) for record in records]
        ids = {event.object_id for event in events}
        kinds = dict(ObjectIndex.objects.filter(pk__in=ids).values_list("id", "kind"))
        here: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
        columns = ("object_id", "action", "at", "principal", "changes", "actor", "object_kind")
        for object_id, action, at, principal, *rest in Event.objects.filter(object_id__in=ids).values_list(*columns):
            here[(object_id, action, at, principal)].append(tuple(rest))
        new = []
        for event in events:
            if kinds.get(event.object_id) != event.object_kind:
                raise LineError(f"object: no {event.object_kind} has id {event.object_id!r} here")
            key = (event.object_id, event.action, event.at, event.principal)
            if (event.changes, event.actor, event.object_kind) in here[key]:
                self.unchanged[EVENT] += 1
                continue
            here[key].append((event.changes, event.actor, event.object_kind))
            new.append(event)
        bulk.load(new)  # COPY on PostgreSQL
        self.created[EVENT] += len(new)


def _compare_existing(kind: str, found: str, record: dict[str, Any]) -> str:
    """A line whose id is here already: UNCHANGED when the object here is the line's, else a conflict."""
    if found != kind:
        raise LineError(f"id: {record['id']} already belongs to a {found} here")
    current = shapes.dump(shapes.SHAPES[kind].queryset().get(pk=record["id"]))
    mine = comparable(kind, json.loads(json.dumps(current, cls=DjangoJSONEncoder)))
    theirs = comparable(kind, record)
    if mine == theirs:
        return UNCHANGED
    differing = sorted(name for name in {*mine, *theirs} if mine.get(name) != theirs.get(name))
    raise LineError(
        f"conflict: {kind} {record['id']} exists here with different {', '.join(differing)}; an import never overwrites"
    )


def _set_parent(issue_id: str, parent_id: str) -> str:
    issue = Issue.objects.get(pk=issue_id)
    if issue.parent_id == parent_id:
        return UNCHANGED
    if issue.parent_id is not None:
        raise LineError(f"conflict: issue {issue_id} already has parent {issue.parent_id} here")
    issue.parent_id = parent_id
    issue.check_parent_chain()
    # A direct update: the issue's updated_at is the one in the file, not now.
    Issue.objects.filter(pk=issue_id).update(parent_id=parent_id)
    return CREATED


def _checked_link(record: dict[str, Any]) -> tuple[str, str, dict[str, Any], str | None]:
    """An IssueLink line's (relation, issue id, target Ref, role), its fields checked for their form."""
    relation, issue_id, target = record.get("relation"), record.get("issue"), record.get("target")
    if not isinstance(issue_id, str):
        raise LineError("issue: the id of an Issue")
    if relation not in ISSUE_LINK_RELATIONS:
        raise LineError(f"relation: one of {', '.join(ISSUE_LINK_RELATIONS)}")
    if not isinstance(target, dict) or not isinstance(target.get("id"), str):
        raise LineError("target: a Ref ({kind, id, role})")
    if not isinstance(target.get("kind", ""), str):
        raise LineError("target.kind: a kind")
    role = target.get("role")
    if role is not None and (not isinstance(role, str) or len(role) > 64):
        raise LineError("target.role: a string of at most 64 characters, or null")
    return relation, issue_id, target, role


def _target_kind(relation: str) -> str:
    return Kind.ISSUE if relation == PARENT else ISSUE_LINK_TABLES[relation][3]


def _checked_event(record: dict[str, Any]) -> Event:
    """An Event line as an unsaved Event, its fields checked (the object it is about is not looked up)."""
    about = record.get("object")
    if not isinstance(about, dict) or about.get("kind") not in OBJECT_ORDER or not isinstance(about.get("id"), str):
        raise LineError("object: a Ref to the object the event is about")
    action, changes, principal, actor = (record.get(k) for k in ("action", "changes", "principal", "actor"))
    if action not in EVENT_ACTIONS:
        raise LineError(f"action: one of {', '.join(EventAction.values)}")
    if not isinstance(changes, dict):
        raise LineError("changes: a JSON object")
    if not isinstance(principal, str) or not principal or len(principal) > 255:
        raise LineError("principal: a string of 1 to 255 characters")
    if actor is not None and not isinstance(actor, dict):
        raise LineError("actor: an Actor or null")
    at = _moment(record.get("at"), "at")
    values = {"object_id": about["id"], "object_kind": about["kind"], "action": action, "changes": changes}
    return _new(Event, {**values, "principal": principal, "actor": actor, "at": at})


def _group_kind(record: dict[str, Any]) -> str:
    kind: str = record["kind"]
    return Kind.ARTIFACT if kind == ARTIFACT_CONTENT else kind


_ATTNAMES: dict[type[Any], tuple[list[Any], frozenset[str]]] = {}


def _new(model: type[Any], values: dict[str, Any]) -> Any:
    """``model(**values)`` for column values by attname, built the way Django builds a row it reads
    (positional values, every other field its default): Django's keyword path costs a lookup per field."""
    if model not in _ATTNAMES:
        concrete = list(model._meta.concrete_fields)
        _ATTNAMES[model] = (concrete, frozenset(f.attname for f in concrete))
    concrete, attnames = _ATTNAMES[model]
    if not attnames.issuperset(values):
        return model(**values)
    return model(*[values[f.attname] if f.attname in values else f.get_default() for f in concrete])


def _parse(
    kind: str, shape: shapes.Shape, record: dict[str, Any], refs: shapes.RefCollector, errors: shapes.Errors
) -> tuple[Any, dict[str, writes.LinkItems]]:
    """An object line as a new object and its links: ``shapes.read`` of its create body (its Refs gathered in
    ``refs`` for one look-up per chunk, its problems in ``errors``), its read-only columns kept as they are."""
    preserved: dict[str, Any] = {}
    deferred = deferred_fields(kind, record)
    # ``without``, minus its deep copy (the record is this chunk's own): deferred fields are top-level.
    line = {k: v for k, v in record.items() if k not in deferred} if all("." not in d for d in deferred) else None
    body = _split(shape.nodes, line if line is not None else without(record, deferred), preserved, "")
    parsed = shapes.read(kind, body, "in", refs, errors)
    return _new(shape.model, {**parsed.columns, **preserved}), parsed.links


def _open_run(run: Any) -> dict[str, Any]:
    """Set ``run`` to the open status it is inserted in (its inputs are linked before it starts), its final
    columns cleared; returns those final columns (its recorded status and telemetry)."""
    final = {name: getattr(run, name) for name in RUN_FINAL_COLUMNS}
    for name in RUN_FINAL_COLUMNS:
        setattr(run, name, None)
    run.status = final["status"] if final["status"] in OPEN_INPUT_STATUSES else Status.PLANNED
    return final


def _check_finals(runs: list[Any], links: list[dict[str, writes.LinkItems]], finals: list[dict[str, Any]]) -> None:
    """The model's rules for moving ``runs`` (inserted open) to their recorded statuses and telemetry
    (``finals``): those columns' own, and the packet rules of that status (the runs' packets read once)."""
    packet_ids = {pk for run_links in links for pk, _role in run_links.get("context_packets", [])}
    packets = {p.pk: p for p in ContextPacket.objects.filter(pk__in=packet_ids).only("id", "for_issue_id", "sealed")}
    for run, run_links, final in zip(runs, links, finals, strict=True):
        opened = {name: getattr(run, name) for name in final}
        for name, value in final.items():
            setattr(run, name, value)
        try:
            run.clean_columns(final)
            run.validate_inputs(
                status=final["status"],
                packets=[packets[pk] for pk, _role in run_links.get("context_packets", []) if pk in packets],
            )
        except ValidationError as error:
            raise writes.contract_error(Kind.RUN, error) from None
        finally:
            for name, value in opened.items():
                setattr(run, name, value)


# --- helpers -------------------------------------------------------------------------------------------
def _split(nodes: dict[str, shapes.Node], data: dict[str, Any], preserved: dict[str, Any], path: str) -> dict[str, Any]:
    """The writable part of an object line (a create body); read-only columns go to ``preserved``.

    Read-only columns (timestamps, telemetry, ``sealed_at``) are what the service set when the object was
    made; an import keeps them. Derived values (an issue's runs, a run's artifacts) are dropped.
    """
    body: dict[str, Any] = {}
    for name, value in data.items():
        node = nodes.get(name)
        where = f"{path}.{name}" if path else name
        if node is None:
            body[name] = value  # unknown: shapes.parse names it
        elif isinstance(node, shapes.Group) and isinstance(value, dict):
            inner = _split(node.children, value, preserved, where)
            if not node.read_only:
                body[name] = inner
        elif not node.read_only:
            body[name] = value
        elif isinstance(node, shapes.Time):
            preserved[node.column] = None if value is None else _moment(value, where)
        elif isinstance(node, shapes.Col):
            preserved[node.column] = value
    return body


def _moment(value: Any, path: str) -> dt.datetime:
    moment = parse_timestamp(value)
    if moment is None or moment.tzinfo is None:
        raise LineError(f"{path}: an ISO-8601 timestamp with a timezone")
    return moment


def _validate(model: Any, objs: list[Any], known_refs: dict[str, str], *, constraints: bool = True) -> None:
    """The model's rules for new objects (``full_clean_many``) whose ids the caller found free in the id index
    and whose Refs it resolved (``known_refs``: no existence query of their own).

    Check constraints are the database's (it refuses a violating row with the constraint's own message, see
    :func:`_database_refusal`); unique constraints and fields are checked here for their clearer messages,
    unless ``constraints`` is false (the bulk path: the database refuses the chunk, then the lines say why).
    """
    for obj in objs:
        obj.id_is_new()
    try:
        model.full_clean_many(objs, known_refs=known_refs, validate_unique=constraints, validate_constraints=False)
        if constraints:
            for obj in objs:
                for constraint in obj._meta.constraints:
                    if isinstance(constraint, UniqueConstraint):
                        constraint.validate(type(obj), obj)
    except ValidationError as error:
        raise writes.contract_error(model.KIND, error) from None


def _database_refusal(error: DatabaseError) -> str:
    """A database refusal in words: a constraint's own message where one is named, a guard's message with its
    code, else the first line."""
    text = str(error).strip()
    models: list[Any] = [*KIND_MODELS.values(), *(table for table, *_rest in ISSUE_LINK_TABLES.values()), Event]
    for model in models:
        for constraint in model._meta.constraints:
            if f'"{constraint.name}"' in text and constraint.violation_error_message:
                return f"{constraint.violation_error_message} ({constraint.name})"
    first = text.splitlines()[0] if text else type(error).__name__
    if "cwom:" in first:
        code, _colon, message = first.split("cwom:", 1)[1].partition(":")
        return f"{message.strip()} ({code})"
    return first


def _messages(error: Exception) -> list[str]:
    """Why a line is not good, in words: a LineError's, a ValidationError's by path, a database refusal's."""
    if isinstance(error, LineError):
        return error.messages
    if isinstance(error, DatabaseError):
        return [_database_refusal(error)]
    if not isinstance(error, ValidationError):
        return [str(error)]
    if hasattr(error, "error_dict"):
        return [
            message if path in ("__all__", "non_field_errors") else f"{path}: {message}"
            for path, messages in error.message_dict.items()
            for message in messages
        ]
    return list(error.messages)

"""Loading a CWOM export into this deployment with ids, timestamps, links and history preserved.

Each object is checked by the same rules as every other write: ``shapes.parse`` for the contract shape
and its Refs, ``full_clean()`` for the model's rules, then the database's constraints and guard triggers.
Lines are applied a chunk at a time (:class:`_Chunk`): the same checks with the ones that read other rows
batched (one query per chunk, not per object), each table written at once. A chunk with a line that is not
good is rolled back and applied line by line, each line in its own savepoint, so a bad line leaves nothing
behind and is reported with its line number and skipped while the chunk's good lines land (in an atomic
import, the whole file is refused).

The import is idempotent: a line whose object, link or event is already here exactly as the line says
changes nothing; one that differs is reported as a conflict and never overwritten. No new events are
recorded: the file's own events are the history.

Objects whose rules depend on their past are written the way the live write path writes them: a packet
as a draft, its links, then sealed; a doctrine ref unpublished, its links, then published; a run in an
open status, its inputs, then moved to its recorded status and telemetry in one update.

Whether the file is a whole export is decided in one place, :class:`_Frame`, for both engines: line 1
must be the header of this format version (else nothing is applied: :class:`UnsupportedFormat`), and the
file must end with its trailer, whose counts must match the records seen (else the import is
incomplete: :attr:`ImportResult.incomplete`; an atomic import or a dry run is rolled back before it
commits). The engines only ever see the lines between the two.
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
from ..models import KIND_MODELS, Artifact, ContextPacket, CwomObject, DoctrineRef, Event, Issue, ObjectIndex, Run
from ..models.runs import OPEN_INPUT_STATUSES
from ..validation import parse_timestamp
from . import (
    ARTIFACT_CONTENT,
    DEFERRED_FIELDS,
    EVENT,
    FORMAT_VERSION,
    HEADER,
    ISSUE_LINK,
    ISSUE_LINK_RELATIONS,
    ISSUE_LINK_TABLES,
    OBJECT_ORDER,
    PARENT,
    TRAILER,
    checks,
    comparable,
    without,
)
from .checks import Refused

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
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise UnsupportedFormat(
                f"line 1: this is a CWOM export of format version {version!r}; "
                f"this service reads format version {FORMAT_VERSION}."
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
        self._handlers: dict[str, Callable[[dict[str, Any]], str | None]] = {
            **{kind: self._object for kind in OBJECT_ORDER},
            ARTIFACT_CONTENT: self._artifact_content,
            ISSUE_LINK: self._issue_link,
            EVENT: self._event,
        }
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
        """One chunk of lines: in bulk, or, when some line of it is not good, line by line."""
        chunk = _Chunk(self)
        try:
            with transaction.atomic():
                chunk.apply(batch)
        except Refused:
            for number, text in batch:
                self._line(number, text)
            return
        self.result.created.update(chunk.created)
        self.result.unchanged.update(chunk.unchanged)
        self.result.seen.update(chunk.seen)
        if self.on_line:
            for number, _text in batch:
                self.on_line(number)

    def _line(self, number: int, text: str) -> None:
        if self.on_line:
            self.on_line(number)
        if not text.strip():
            return
        try:
            record = json.loads(text)
        except ValueError as error:
            self.result.refuse(Problem(number, "?", [f"not a JSON document ({error})"]))
            return
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            self.result.refuse(Problem(number, "?", ["a record is a JSON object with a kind"]))
            return
        kind = record["kind"]
        self.result.seen[kind] += 1
        label = f"{kind} {record['id']}" if isinstance(record.get("id"), str) else kind
        handler = self._handlers.get(kind)
        if handler is None:
            self.result.refuse(Problem(number, label, [f"unknown record kind {kind!r}"]))
            return
        try:
            with transaction.atomic():
                outcome = handler(record)
        except LineError as error:
            self.result.refuse(Problem(number, label, error.messages))
        except ValidationError as error:
            self.result.refuse(Problem(number, label, _messages(error)))
        except DatabaseError as error:
            self.result.refuse(Problem(number, label, [_database_refusal(error)]))
        else:
            if outcome == CREATED:
                self.result.created[kind] += 1
            elif outcome == UNCHANGED:
                self.result.unchanged[kind] += 1

    # --- objects -------------------------------------------------------------------------------------
    def _object(self, record: dict[str, Any]) -> str:
        kind = record["kind"]
        object_id = record.get("id")
        if not isinstance(object_id, str) or not ULID_RE.match(object_id):
            raise LineError("id: an imported object needs its ULID id (ids are preserved)")
        found = ObjectIndex.objects.filter(pk=object_id).values_list("kind", flat=True).first()
        if found is not None:
            return self._compare_existing(kind, found, record)
        shape = shapes.SHAPES[kind]
        preserved: dict[str, Any] = {}
        body = _split(shape.nodes, without(record, DEFERRED_FIELDS.get(kind, ())), preserved, "")
        parsed = shapes.parse(kind, body, "in")
        obj: Any = shape.model(**{**parsed.columns, **preserved})
        if isinstance(obj, ContextPacket):
            self._create_packet(obj, parsed.links, parsed.known_refs)
        elif isinstance(obj, DoctrineRef):
            _validate(DoctrineRef, [obj], parsed.known_refs)
            obj.save(record=False)
            _write_links(obj, parsed.links)
            DoctrineRef.objects.filter(pk=obj.pk).update(published=True)
        elif isinstance(obj, Run):
            self._create_run(obj, parsed.links, parsed.known_refs)
        else:
            _validate(shape.model, [obj], parsed.known_refs)
            obj.save(record=False)
            _write_links(obj, parsed.links)
        return CREATED

    def _compare_existing(self, kind: str, found: str, record: dict[str, Any]) -> str:
        if found != kind:
            raise LineError(f"id: {record['id']} already belongs to a {found} here")
        current = shapes.dump(shapes.SHAPES[kind].queryset().get(pk=record["id"]))
        mine = comparable(kind, json.loads(json.dumps(current, cls=DjangoJSONEncoder)))
        theirs = comparable(kind, record)
        if mine == theirs:
            return UNCHANGED
        differing = sorted(name for name in {*mine, *theirs} if mine.get(name) != theirs.get(name))
        raise LineError(
            f"conflict: {kind} {record['id']} exists here with different {', '.join(differing)}; "
            "an import never overwrites"
        )

    def _create_packet(
        self, packet: ContextPacket, links: dict[str, list[tuple[str, str | None]]], known_refs: dict[str, str]
    ) -> None:
        """Validated as it will end up, written as a draft, linked, then sealed with its own time."""
        sealed, sealed_at = packet.sealed, packet.sealed_at
        if sealed and sealed_at is None:
            raise LineError("sealed_at: a sealed packet needs its sealed_at")
        _validate(ContextPacket, [packet], known_refs)
        packet.sealed, packet.sealed_at = False, None
        packet.save(record=False)
        _write_links(packet, links)
        if sealed:
            ContextPacket.objects.filter(pk=packet.pk).update(sealed=True, sealed_at=sealed_at)

    def _create_run(self, run: Run, links: dict[str, list[tuple[str, str | None]]], known_refs: dict[str, str]) -> None:
        """Inserted in an open status, its inputs linked, then moved to its recorded status in one update."""
        final = _open_run(run)
        opening = run.status
        _validate(Run, [run], known_refs)
        run.save(record=False)
        _write_links(run, links)
        packets = list(ContextPacket.objects.filter(pk__in=[pk for pk, _ in links.get("context_packets", [])]))
        _check_final(run, final, packets)
        for name, value in final.items():
            setattr(run, name, value)
        if final["status"] != opening:  # the database checks the final state's constraints here
            Run.objects.filter(pk=run.pk).update(**final)

    # --- artifact bytes ------------------------------------------------------------------------------
    def _artifact_content(self, record: dict[str, Any]) -> str:
        artifact_id, name = record.get("artifact"), record.get("stored_name")
        if not isinstance(name, str) or not name or len(name) > 500:
            raise LineError("stored_name: a storage name of 1 to 500 characters")
        current = Artifact.objects.filter(pk=artifact_id).values_list("stored_name", flat=True).first()
        if current is None:
            raise LineError(f"artifact: no Artifact has id {artifact_id!r} here")
        if current == name:
            return UNCHANGED
        if current:
            raise LineError(f"conflict: artifact {artifact_id} already has stored bytes ({current})")
        Artifact.objects.filter(pk=artifact_id, stored_name="").update(stored_name=name)
        return CREATED

    # --- issue links ---------------------------------------------------------------------------------
    def _issue_link(self, record: dict[str, Any]) -> str:
        relation, issue_id, target_kind, target_id, role = _checked_link(record)
        kinds = dict(ObjectIndex.objects.filter(pk__in=[issue_id, target_id]).values_list("id", "kind"))
        _check_link_ends(relation, issue_id, target_kind, target_id, record["target"], kinds)
        if relation == PARENT:
            return self._set_parent(issue_id, target_id)
        model, owner, target_field, _kind = ISSUE_LINK_TABLES[relation]
        existing = model._default_manager.filter(**{f"{owner}_id": issue_id, f"{target_field}_id": target_id}).first()
        if existing is not None:
            if existing.role == role:  # type: ignore[attr-defined]
                return UNCHANGED
            raise LineError(f"conflict: this link exists here with role {existing.role!r}")  # type: ignore[attr-defined]
        if (
            relation == "context_packets"
            and not ContextPacket.objects.filter(pk=target_id, for_issue_id=issue_id).exists()
        ):
            raise LineError(f"target: context packet {target_id} is for another issue")
        model._default_manager.create(**{f"{owner}_id": issue_id, f"{target_field}_id": target_id, "role": role})
        return CREATED

    def _set_parent(self, issue_id: str, parent_id: str) -> str:
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

    # --- events --------------------------------------------------------------------------------------
    def _event(self, record: dict[str, Any]) -> str:
        event = _checked_event(record)
        if ObjectIndex.objects.filter(pk=event.object_id).values_list("kind", flat=True).first() != event.object_kind:
            raise LineError(f"object: no {event.object_kind} has id {event.object_id!r} here")
        same_key = Event.objects.filter(
            object_id=event.object_id, action=event.action, at=event.at, principal=event.principal
        )
        for found in same_key:
            if found.changes == event.changes and found.actor == event.actor and found.object_kind == event.object_kind:
                return UNCHANGED
        event.save()
        return CREATED


def _checked_link(record: dict[str, Any]) -> tuple[str, str, str, str, str | None]:
    """An IssueLink line's (relation, issue id, target kind, target id, role), its fields checked."""
    relation, issue_id, target = record.get("relation"), record.get("issue"), record.get("target")
    if not isinstance(issue_id, str):
        raise LineError("issue: the id of an Issue")
    if relation not in ISSUE_LINK_RELATIONS:
        raise LineError(f"relation: one of {', '.join(ISSUE_LINK_RELATIONS)}")
    if not isinstance(target, dict) or not isinstance(target.get("id"), str):
        raise LineError("target: a Ref ({kind, id, role})")
    target_kind = Kind.ISSUE if relation == PARENT else ISSUE_LINK_TABLES[relation][3]
    target_id, role = target["id"], target.get("role")
    if role is not None and (not isinstance(role, str) or len(role) > 64):
        raise LineError("target.role: a string of at most 64 characters, or null")
    return relation, issue_id, target_kind, target_id, role


def _check_link_ends(
    relation: str, issue_id: str, target_kind: str, target_id: str, target: dict[str, Any], kinds: dict[str, str]
) -> None:
    """Both ends of an issue link exist here with the right kinds (``kinds``: their ids' kinds here)."""
    if kinds.get(issue_id) != Kind.ISSUE:
        raise LineError(f"issue: no Issue has id {issue_id!r} here")
    if kinds.get(target_id) != target_kind or target.get("kind", target_kind) != target_kind:
        raise LineError(f"target: no {target_kind} has id {target_id!r} here")
    if relation != "context_packets" and target_id == issue_id:
        raise LineError(f"target: an issue cannot be its own {relation}")


def _checked_event(record: dict[str, Any]) -> Event:
    """An Event line as an unsaved Event, its fields checked (the object it is about is not looked up)."""
    about = record.get("object")
    if not isinstance(about, dict) or about.get("kind") not in OBJECT_ORDER or not isinstance(about.get("id"), str):
        raise LineError("object: a Ref to the object the event is about")
    action, changes, principal, actor = (record.get(k) for k in ("action", "changes", "principal", "actor"))
    if action not in EventAction.values:
        raise LineError(f"action: one of {', '.join(EventAction.values)}")
    if not isinstance(changes, dict):
        raise LineError("changes: a JSON object")
    if not isinstance(principal, str) or not principal or len(principal) > 255:
        raise LineError("principal: a string of 1 to 255 characters")
    if actor is not None and not isinstance(actor, dict):
        raise LineError("actor: an Actor or null")
    at = _moment(record.get("at"), "at")
    return Event(
        object_id=about["id"],
        object_kind=about["kind"],
        action=action,
        changes=changes,
        principal=principal,
        actor=actor,
        at=at,
    )


# --- bulk ------------------------------------------------------------------------------------------------
class _Chunk:
    """A chunk of lines applied in bulk: a fixed number of queries per run of same-kind records.

    Every object is checked by the same rules as on the line-by-line path (the model layer's
    ``full_clean_many`` reads what they need from other rows once per chunk), then each table is written
    at once (:mod:`cwom.db.bulk`); the database's constraints and guard triggers check every row. A line
    that is not good as it stands raises Refused: the caller rolls the chunk back and applies it line by
    line, where the good lines land and the bad one is reported with its reasons.
    """

    def __init__(self, importer: Importer) -> None:
        self.importer = importer
        self.created: Counter[str] = Counter()
        self.unchanged: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()

    def apply(self, batch: list[tuple[int, str]]) -> None:
        records = []
        for _number, text in batch:
            if not text.strip():
                continue
            try:
                record = fields.loads(text)  # json.loads' values (orjson would read a long integer as a float)
            except ValueError:
                raise Refused("not a JSON document") from None  # the line-by-line replay says why
            if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
                raise Refused("not a record")
            records.append(record)
        self.seen.update(record["kind"] for record in records)
        try:
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
                    for record in items:
                        self._one(kind, record)
        except (LineError, ValidationError, DatabaseError) as error:
            raise Refused(str(error)) from error

    def _count(self, kind: str, outcome: str | None) -> None:
        if outcome == CREATED:
            self.created[kind] += 1
        elif outcome == UNCHANGED:
            self.unchanged[kind] += 1

    def _one(self, kind: str, record: dict[str, Any]) -> None:
        """A record the bulk path has no batch for: through its line handler (without a savepoint)."""
        handler = self.importer._handlers.get(kind)
        if handler is None:
            raise Refused(f"unknown record kind {kind!r}")
        self._count(kind, handler(record))

    # --- objects -----------------------------------------------------------------------------------
    def _artifacts(self, records: list[dict[str, Any]]) -> None:
        """Artifact lines and ArtifactContent lines, interleaved as an export writes them: the artifacts in
        bulk, then the contents in bulk, which is what line-by-line order gives when each content line
        names an artifact that is here already or comes before it in the group (else: Refused)."""
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
                    raise Refused("an artifact's content comes before the artifact")
            self._artifact_contents(contents)

    def _artifact_contents(self, records: list[dict[str, Any]]) -> None:
        """As Importer._artifact_content, for many: the artifacts' stored names read once, one update."""
        pairs = [(record.get("artifact"), record.get("stored_name")) for record in records]
        for artifact_id, name in pairs:
            if not isinstance(name, str) or not name or len(name) > 500 or not isinstance(artifact_id, str):
                raise Refused("stored_name: a storage name of 1 to 500 characters")
        current: dict[Any, Any] = dict(
            Artifact.objects.filter(pk__in={a for a, _n in pairs}).values_list("id", "stored_name")
        )
        stored: dict[Any, Any] = {}
        for artifact_id, name in pairs:
            if artifact_id not in current:
                raise Refused(f"artifact: no Artifact has id {artifact_id!r} here")
            if current[artifact_id] == name:
                self.unchanged[ARTIFACT_CONTENT] += 1
                continue
            if current[artifact_id]:
                raise Refused(f"conflict: artifact {artifact_id} already has stored bytes")
            current[artifact_id] = stored[artifact_id] = name
            self.created[ARTIFACT_CONTENT] += 1
        bulk.update([Artifact(pk=pk, stored_name=name) for pk, name in stored.items()], ["stored_name"])

    def _objects(self, kind: str, records: list[dict[str, Any]]) -> None:
        ids = [record.get("id") for record in records]
        if not all(isinstance(i, str) and ULID_RE.match(i) for i in ids) or len(set(ids)) != len(ids):
            raise Refused("an id is missing, malformed or repeated")
        found = set(ObjectIndex.objects.filter(pk__in=ids).values_list("id", flat=True))
        fresh = []
        for record in records:
            if record["id"] in found:
                self._one(kind, record)  # compared with what is here: unchanged, or a conflict
            else:
                fresh.append(record)
        if not fresh:
            return
        shape = shapes.SHAPES[kind]
        parsed = [self._parse(kind, shape, record) for record in fresh]
        resolved = _check_refs(shape, [want for _obj, _links, wanted in parsed for want in wanted])
        objs = [obj for obj, _links, _wanted in parsed]
        links = [links for _obj, links, _wanted in parsed]
        if kind == Kind.CONTEXT_PACKET and any(p.sealed and p.sealed_at is None for p in objs):
            raise Refused("a sealed packet needs its sealed_at")
        finals = [_open_run(run) for run in objs] if kind == Kind.RUN else []
        # The model's rules, for the chunk at once; unique and check constraints are the database's (a row it
        # refuses sends the chunk line by line, where the line's problem is named).
        _validate(shape.model, objs, resolved, constraints=False)
        if kind == Kind.CONTEXT_PACKET:
            self._create_packets(objs, links)
        elif kind == Kind.DOCTRINE_REF:
            _insert(kind, objs, links)
            DoctrineRef.objects.filter(pk__in=[obj.pk for obj in objs]).update(published=True)
        elif kind == Kind.RUN:
            self._create_runs(objs, links, finals)
        else:
            _insert(kind, objs, links)
        self.created[kind] += len(objs)

    def _parse(
        self, kind: str, shape: shapes.Shape, record: dict[str, Any]
    ) -> tuple[Any, dict[str, list[tuple[str, str | None]]], list[tuple[str, str, str]]]:
        """``shapes.parse`` of the line's create body, its Refs collected for one look-up per chunk."""
        preserved: dict[str, Any] = {}
        deferred = DEFERRED_FIELDS.get(kind, ())
        # ``without``, minus its deep copy (the record is this chunk's own): deferred fields are top-level.
        line = {k: v for k, v in record.items() if k not in deferred} if all("." not in d for d in deferred) else None
        body = _split(shape.nodes, line if line is not None else without(record, deferred), preserved, "")
        if not checks.body_is_valid(kind, body):
            raise Refused("the body does not fit the contract's schema")
        parsed = shapes.Parsed(kind)
        errors = shapes.Errors()
        refs = shapes.RefCollector()
        _body_group(kind).load({k: v for k, v in body.items() if k != "kind"}, "", parsed, errors, refs)
        if errors.items:
            raise Refused("the body does not parse")
        return _new(shape.model, {**parsed.columns, **preserved}), parsed.links, refs.wanted

    def _create_packets(self, packets: list[Any], links: list[dict[str, list[tuple[str, str | None]]]]) -> None:
        """As Importer._create_packet, for many: written as drafts, linked, then sealed with their own times."""
        seals = []
        for packet in packets:
            seals.append((packet.sealed, packet.sealed_at))
            packet.sealed, packet.sealed_at = False, None
        _insert(Kind.CONTEXT_PACKET, packets, links)
        sealed = []
        for packet, (was_sealed, sealed_at) in zip(packets, seals, strict=True):
            packet.sealed, packet.sealed_at = was_sealed, sealed_at
            if was_sealed:
                sealed.append(packet)
        bulk.update(sealed, ["sealed", "sealed_at"])

    def _create_runs(
        self, runs: list[Any], links: list[dict[str, list[tuple[str, str | None]]]], finals: list[dict[str, Any]]
    ) -> None:
        """As Importer._create_run, for many: inserted open (``finals``: their recorded statuses and telemetry,
        see _open_run), inputs linked, then moved to their recorded status."""
        packet_ids = {pk for run_links in links for pk, _role in run_links.get("context_packets", [])}
        packets = {
            p.pk: p for p in ContextPacket.objects.filter(pk__in=packet_ids).only("id", "for_issue_id", "sealed")
        }
        for run, run_links, final in zip(runs, links, finals, strict=True):
            mine = [packets[pk] for pk, _role in run_links.get("context_packets", []) if pk in packets]
            _check_final(run, final, mine)
        _insert(Kind.RUN, runs, links)
        moved = []
        for run, final in zip(runs, finals, strict=True):
            if final["status"] != run.status:
                moved.append(run)
            for name, value in final.items():
                setattr(run, name, value)
        # The database checks each final state's constraints here.
        bulk.update(moved, RUN_FINAL_COLUMNS)

    # --- issue links -------------------------------------------------------------------------------
    def _issue_links(self, records: list[dict[str, Any]]) -> None:
        """As Importer._issue_link, for many: the ends, the links already here and the packets' issues read
        once per chunk; a parent goes through the line handler (its chain is walked row by row)."""
        links = [_checked_link(record) for record in records]
        ends = {end for _relation, issue_id, _kind, target_id, _role in links for end in (issue_id, target_id)}
        kinds = dict(ObjectIndex.objects.filter(pk__in=ends).values_list("id", "kind"))
        here: dict[str, dict[tuple[str, str], str | None]] = {}
        for relation, (model, owner, target_field, _kind) in ISSUE_LINK_TABLES.items():
            owners = {issue_id for rel, issue_id, *_rest in links if rel == relation}
            rows = model._default_manager.filter(**{f"{owner}_id__in": owners}) if owners else None
            found = rows.values_list(f"{owner}_id", f"{target_field}_id", "role") if rows is not None else []
            here[relation] = {(issue_id, target_id): role for issue_id, target_id, role in found}
        packet_ids = {target_id for rel, _issue, _kind, target_id, _role in links if rel == "context_packets"}
        packet_issues = dict(ContextPacket.objects.filter(pk__in=packet_ids).values_list("id", "for_issue_id"))
        new: dict[type[Any], list[Any]] = defaultdict(list)
        for record, (relation, issue_id, target_kind, target_id, role) in zip(records, links, strict=True):
            _check_link_ends(relation, issue_id, target_kind, target_id, record["target"], kinds)
            if relation == PARENT:
                self._one(ISSUE_LINK, record)
                continue
            pair = (issue_id, target_id)
            if pair in here[relation]:
                if here[relation][pair] != role:
                    raise Refused("conflict: this link exists here with another role")
                self.unchanged[ISSUE_LINK] += 1
                continue
            if relation == "context_packets" and packet_issues.get(target_id) != issue_id:
                raise Refused(f"target: context packet {target_id} is for another issue")
            model, owner, target_field, _kind = ISSUE_LINK_TABLES[relation]
            here[relation][pair] = role
            new[model].append(model(**{f"{owner}_id": issue_id, f"{target_field}_id": target_id, "role": role}))
            self.created[ISSUE_LINK] += 1
        for link_rows in new.values():
            bulk.load(link_rows)

    # --- events ------------------------------------------------------------------------------------
    def _events(self, records: list[dict[str, Any]]) -> None:
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
                raise Refused(f"no {event.object_kind} has id {event.object_id!r} here")
            key = (event.object_id, event.action, event.at, event.principal)
            if (event.changes, event.actor, event.object_kind) in here[key]:
                self.unchanged[EVENT] += 1
                continue
            here[key].append((event.changes, event.actor, event.object_kind))
            new.append(event)
        Event.objects.bulk_create(new)
        self.created[EVENT] += len(new)


def _group_kind(record: dict[str, Any]) -> str:
    kind: str = record["kind"]
    return Kind.ARTIFACT if kind == ARTIFACT_CONTENT else kind


_BODY_GROUPS: dict[str, shapes.Group] = {}


def _body_group(kind: str) -> shapes.Group:
    if kind not in _BODY_GROUPS:
        _BODY_GROUPS[kind] = shapes.Group({n: node for n, node in shapes.SHAPES[kind].nodes.items() if n != "kind"})
    return _BODY_GROUPS[kind]


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


def _check_refs(shape: shapes.Shape, wanted: list[tuple[str, str, str]]) -> dict[str, str]:
    """Every Ref of a chunk names an object of the right kind here: one query (as RefCollector.resolve);
    returns what it found, {id: kind}."""
    if not wanted:
        return {}
    found = dict(ObjectIndex.objects.filter(pk__in={w[0] for w in wanted}).values_list("id", "kind"))
    expected: dict[str, str] = {}
    for object_id, declared, path in wanted:
        if path not in expected:
            expected[path] = shapes.kind_at(shape, path)
        if declared != expected[path] or found.get(object_id) != expected[path]:
            raise Refused(f"{path}: no {expected[path]} has id {object_id!r} here")
    return found


def _open_run(run: Any) -> dict[str, Any]:
    """Set ``run`` to the open status it is inserted in (its inputs are linked before it starts), its final
    columns cleared; returns those final columns (its recorded status and telemetry)."""
    final = {name: getattr(run, name) for name in RUN_FINAL_COLUMNS}
    for name in RUN_FINAL_COLUMNS:
        setattr(run, name, None)
    run.status = final["status"] if final["status"] in OPEN_INPUT_STATUSES else Status.PLANNED
    return final


def _check_final(run: Any, final: dict[str, Any], packets: list[Any]) -> None:
    """The model's rules for moving ``run`` (inserted open) to its recorded status and telemetry ``final``:
    those columns' own, and the packet rules of that status (``packets``: the run's)."""
    opened = {name: getattr(run, name) for name in final}
    for name, value in final.items():
        setattr(run, name, value)
    try:
        run.clean_columns(final)
        run.validate_inputs(status=final["status"], packets=packets)
    except ValidationError as error:
        raise writes.contract_error(Kind.RUN, error) from None
    finally:
        for name, value in opened.items():
            setattr(run, name, value)


def _insert(kind: str, objs: list[Any], links: list[dict[str, list[tuple[str, str | None]]]]) -> None:
    """Index rows, object rows and link rows, one write each (link rows in the order of the lines)."""
    bulk.load_values(ObjectIndex, ("id", "kind"), [(obj.pk, kind) for obj in objs])
    bulk.load(objs)
    rows: dict[type[Any], list[tuple[Any, ...]]] = defaultdict(list)
    columns: dict[type[Any], tuple[str, ...]] = {}
    for obj, obj_links in zip(objs, links, strict=True):
        for name, items in obj_links.items():
            model, owner, target = shapes.LINK_TABLES[(kind, name)]
            columns[model] = (f"{owner}_id", f"{target}_id", "role")
            pk = obj.pk
            rows[model] += [(pk, t, r) for t, r in items]
    for model, link_rows in rows.items():
        bulk.load_values(model, columns[model], link_rows)


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
    """A database refusal in words: a constraint's own message where one is named, else the first line."""
    text = str(error).strip()
    models: list[Any] = [*KIND_MODELS.values(), Event]
    for model in models:
        for constraint in model._meta.constraints:
            if f'"{constraint.name}"' in text and constraint.violation_error_message:
                return f"{constraint.violation_error_message} ({constraint.name})"
    return text.splitlines()[0] if text else type(error).__name__


def _write_links(obj: CwomObject, links: dict[str, list[tuple[str, str | None]]]) -> None:
    for name, items in links.items():
        model, owner, target = shapes.LINK_TABLES[(obj.KIND, name)]
        model._default_manager.bulk_create(
            [model(**{f"{owner}_id": obj.pk, f"{target}_id": t, "role": r}) for t, r in items]
        )


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [
            message if path in ("__all__", "non_field_errors") else f"{path}: {message}"
            for path, messages in error.message_dict.items()
            for message in messages
        ]
    return list(error.messages)

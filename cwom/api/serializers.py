"""Thin DRF serializers: the kernel describes every kind once (:mod:`cwom.shapes`), writes go through
:mod:`cwom.writes`. Nothing here re-describes a field.

- :class:`KindSerializer` (one subclass per kind, from :func:`serializer_for`): ``to_representation``
  is ``shapes.dump``; ``update`` calls ``writes.update``, which validates through the model layer and
  returns the object ready for ``dump`` (a create goes from the view to ``writes.create`` directly). A page of objects
  (:class:`KindListSerializer`) has its ref lists loaded for all its rows in one query first.
- :class:`EventSerializer`: an event of the history feed (the API's own small shape, ``EVENT_SCHEMA``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from rest_framework import serializers

from cwom import shapes, writes
from cwom.enums import EventAction, Kind
from cwom.models import Event
from cwom.validation import ACTOR, nullable


class KindListSerializer(serializers.ListSerializer):
    """A page of CWOM objects: ``shapes.dump_many``, every ref list of the page's rows in one query.
    (Dumped one by one, each row would load its own: a query per row.)"""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        return shapes.dump_many(data)


class KindSerializer(serializers.BaseSerializer):
    """A CWOM object in the contract's shape; the body is handed to the kernel untouched."""

    kind: str = ""

    class Meta:
        list_serializer_class = KindListSerializer

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return shapes.dump(instance)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        return self.to_internal_value(data)

    def to_internal_value(self, data: Any) -> Any:
        # The kernel checks the body against the kind's JSON Schema and the model rules; DRF only needs
        # a mapping to carry it to create()/update().
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [serializers.ErrorDetail("The body must be a JSON object.", code="invalid_shape")]}
            )
        return data

    def update(self, instance: Any, validated_data: Any) -> Any:
        return writes.update(instance, validated_data, if_match=self.context.get("if_match", False))


@cache
def serializer_for(kind: str) -> type[KindSerializer]:
    """The serializer class of ``kind`` (one class per kind, so the schema names components by kind)."""
    return type(f"{kind}Serializer", (KindSerializer,), {"kind": kind, "__doc__": f"A {kind} (contract shape)."})


def object_ref(kind: str, object_id: str) -> dict[str, Any]:
    return {"kind": kind, "id": object_id, "role": None}


# The sub-lists of bounded link lists (an issue's packets and snapshots): action -> the kind of their Refs.
LINK_LIST_ACTIONS: dict[str, str] = {
    node.name: node.kind for node in shapes.SHAPES[Kind.ISSUE].links if node.newest is not None
}


EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Event",
    "description": "One recorded change of one object (create, update, seal, transition). Append-only.",
    "properties": {
        "id": {"type": "integer", "description": "Increasing: the feed's natural order."},
        "object": shapes.ref_schema(None),
        "action": {"type": "string", "enum": list(EventAction.values)},
        "changes": {
            "type": "object",
            "description": "Changed fields (model columns and link names) as [before, after] pairs; a bounded "
            "link list (an issue's context_packets, constraints) edited with add/remove as the ids added and removed.",
            "additionalProperties": {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {"description": "Any JSON value: the field before the change, then after."},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "added": {"type": "array", "items": {"type": "string"}},
                            "removed": {"type": "array", "items": {"type": "string"}},
                        },
                        "required": ["added", "removed"],
                        "additionalProperties": False,
                    },
                ]
            },
        },
        "principal": {"type": "string", "description": "The authenticated principal (token:<name>, user:<name>)."},
        "actor": nullable(ACTOR),
        "at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "object", "action", "changes", "principal", "actor", "at"],
    "additionalProperties": False,
}


class EventSerializer(serializers.BaseSerializer):
    """An event in the history feed (``EVENT_SCHEMA``)."""

    def to_representation(self, instance: Event) -> dict[str, Any]:
        return {
            "id": instance.pk,
            "object": object_ref(instance.object_kind, instance.object_id),
            "action": instance.action,
            "changes": instance.changes,
            "principal": instance.principal,
            "actor": instance.actor,
            "at": shapes.iso(instance.at),
        }


KINDS: tuple[str, ...] = tuple(Kind.values)

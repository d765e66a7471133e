"""JSON columns read through orjson give exactly what Django's json.loads gives, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db.models import TextField
from django.db.models.functions import Cast

from cwom.fields import JSONField
from cwom.models import Issue, Repo

pytestmark = pytest.mark.django_db

DOCUMENTS: list[Any] = [
    {"a": 1, "b": [1.5, 1e16, 1e-07, -0.0], "c": None, "d": True, "nested": {"x": ["y", {"z": 2}]}},
    {"unicode": "Ünïcødé ✓ 😀", "escapes": 'tab\t nl\n quote" back\\', "digits": "12345678901234567890123"},
    # Beyond 64 bits (orjson would read floats), and the edges of 64 bits.
    {"big": 2**70 + 1, "negative_big": -(2**70) - 1, "u64": 2**64 - 1, "i64": -(2**63), "digits": 10**18},
    {"precise": 0.12345678901234567, "tiny": 5e-324, "huge": 1.7976931348623157e308},
    [],
    {},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_json_column_reads_back_what_json_loads_would(repo: Repo, make: Any, document: Any) -> None:
    issue = make.issue(repo)
    Issue.objects.filter(pk=issue.pk).update(meta=document)

    read = Issue.objects.get(pk=issue.pk).meta

    # What Django's own JSONField makes of the stored text (PostgreSQL normalises numbers: 1e16 is
    # 10000000000000000 there). Compared as text: 2**70 == float(2**70), but not on the wire.
    stored = Issue.objects.annotate(text=Cast("meta", TextField())).values_list("text", flat=True).get(pk=issue.pk)
    assert json.dumps(read, sort_keys=True) == json.dumps(json.loads(stored), sort_keys=True)


def test_key_transforms_and_null_are_read_as_before(repo: Repo, make: Any) -> None:
    issue = make.issue(repo, created_by=None)
    Issue.objects.filter(pk=issue.pk).update(meta={"n": 3, "s": "x"})

    assert Issue.objects.values_list("meta__n", "meta__s", "created_by").get(pk=issue.pk) == (3, "x", None)


def test_migrations_see_a_plain_json_field() -> None:
    assert JSONField().deconstruct()[1] == "django.db.models.JSONField"
    assert Issue._meta.get_field("tags").deconstruct()[1] == "cwom.fields.JSONListField"

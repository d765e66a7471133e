"""One conflict, one machine-readable code, however the refusal was reached.

A duplicate unique key is refused either by model validation (the other row was already committed when
the request was checked) or by the database's unique index (two requests met there). Agents branch on
``code``, so both paths should answer with the same one.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from cwom.api.errors import problem_exception_handler
from cwom.models import ApiToken
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db


def test_a_duplicate_slug_has_one_code_whichever_layer_refuses_it() -> None:
    _, secret = ApiToken.issue("codes-writer", can_write=True)
    writer = Api(secret, "codes-writer")
    assert writer.post("repos", {"name": "A", "slug": "taken"}).status_code == 201
    validated = writer.post("repos", {"name": "B", "slug": "taken"})
    assert validated.status_code == 409
    raced = problem_exception_handler(
        IntegrityError('duplicate key value violates unique constraint "cwom_repo_slug_key"'), {"request": None}
    )
    assert raced.status_code == 409
    assert validated.json()["code"] == raced.data["code"]

"""``manage.py cwom_enqueue [FILE|-]``: enqueue a run from the same JSON body as POST /api/v1/enqueue."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from cwom import audit
from cwom.management.base import CwomCommand
from execution.enqueue import enqueue


class Command(CwomCommand):
    help = (
        "Enqueue a run from an enqueue body (the JSON of POST /api/v1/enqueue) read from FILE, or from stdin "
        "with '-' or no argument; prints the new refs as JSON. Exit 0 when enqueued, 1 when the body is refused, "
        "2 when FILE cannot be read or is not JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", default="-", help="path to the JSON body, or '-' for stdin")
        parser.add_argument(
            "--principal", default="system:cli", help="recorded as the principal of every event (default system:cli)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["file"]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
            body = json.loads(text)
        except OSError as error:
            raise CommandError(f"Cannot read {source}: {error}", returncode=2) from None
        except ValueError as error:
            raise CommandError(f"{source} is not JSON: {error}", returncode=2) from None
        try:
            with audit.acting_as(options["principal"]):
                result = enqueue(body)
        except ValidationError as error:
            details = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
            raise CommandError("Refused: " + json.dumps(details, sort_keys=True)) from None
        self.stdout.write(json.dumps({**result.refs(), "run_url": f"/api/v1/runs/{result.run.pk}"}))

"""``manage.py cwom_token``: create, list and revoke the API tokens agents authenticate with."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from cwom.management.base import CwomCommand
from cwom.models import ApiToken
from cwom.shapes import iso


class Command(CwomCommand):
    help = (
        "Manage agent API tokens. 'create NAME [--write]' prints the secret once (only its hash is stored); "
        "tokens are read-only unless --write. 'list [--all] [--json]' shows active tokens (--all: revoked too). "
        "'revoke NAME' stops a token at once. Exit 0 on success, 1 on an unknown or duplicate name, 2 on bad usage."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = actions.add_parser("create", help="create a token and print its secret (shown once)")
        create.add_argument("name", help="a unique name saying who uses the token, e.g. github-importer")
        create.add_argument("--write", action="store_true", help="allow writes (default: read-only)")
        listing = actions.add_parser("list", help="list tokens (never their secrets)")
        listing.add_argument("--all", action="store_true", help="include revoked tokens")
        listing.add_argument("--json", action="store_true", help="machine-readable output")
        revoke = actions.add_parser("revoke", help="revoke a token by name")
        revoke.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        name = options["name"].strip()
        if not name or len(name) > 100:
            raise CommandError("A token name is 1 to 100 characters.", returncode=2)
        try:
            with transaction.atomic():
                token, secret = ApiToken.issue(name, can_write=options["write"])
        except IntegrityError:
            raise CommandError(f"A token named {name!r} already exists; pick another name.", returncode=1) from None
        scope = "read-write" if token.can_write else "read-only"
        self.stderr.write(f"Created {scope} token {name!r}. Store the secret now: it is not shown again.")
        self.stdout.write(secret)

    def _list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.order_by("name")
        if not options["all"]:
            tokens = tokens.filter(revoked_at__isnull=True)
        rows = [
            {
                "name": t.name,
                "key_id": t.key_id,
                "scope": "read-write" if t.can_write else "read-only",
                "created_at": iso(t.created_at),
                "last_used_at": iso(t.last_used_at),
                "revoked_at": iso(t.revoked_at),
            }
            for t in tokens
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No tokens.")
            return
        columns = ("name", "key_id", "scope", "created_at", "last_used_at", "revoked_at")
        widths = {c: max(len(c), *(len(str(r[c] or "-")) for r in rows)) for c in columns}
        self.stdout.write("  ".join(c.ljust(widths[c]) for c in columns))
        for row in rows:
            self.stdout.write("  ".join(str(row[c] or "-").ljust(widths[c]) for c in columns))

    def _revoke(self, options: dict[str, Any]) -> None:
        token = ApiToken.objects.filter(name=options["name"]).first()
        if token is None:
            raise CommandError(f"No token is named {options['name']!r}.", returncode=1)
        if token.revoked_at is not None:
            self.stdout.write(f"Token {token.name!r} was already revoked at {iso(token.revoked_at)}.")
            return
        token.revoke()
        self.stdout.write(self.style.SUCCESS(f"Revoked token {token.name!r}: it no longer authenticates."))

"""API tokens (issue 12): an optional expiry, and names that are lowercase slugs of at most 64 characters.

- ``cwom_apitoken.expires_at``: nullable (every existing token keeps never expiring);
- ``name``: ``varchar(100)`` -> ``varchar(64)`` and the CHECK ``apitoken_name_slug``
  (``cwom.models.access.TOKEN_NAME_PATTERN``).

Names were free text up to 100 characters before. A name that does not fit the new rule is renamed
before the column shrinks, so the migration cannot fail on old rows: to its slug (``CI Bot`` ->
``ci-bot``), cut to fit, with ``-2``, ``-3``... when that is taken. Each rename is printed; the token's
key and secret do not change, so it keeps authenticating, but events it writes from now on record the
new principal (``token:ci-bot``; older events keep the old one). Going back keeps the new names.
"""

import re
import sys

from django.db import migrations, models
from django.utils.text import slugify

import cwom.models.access

# A copy of cwom.models.access.TOKEN_NAME_PATTERN as of this migration (migrations do not follow the code).
PATTERN = r"\A[a-z0-9][a-z0-9_-]{0,63}\Z"
MAX_LENGTH = 64


def fitting_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]", "", slugify(name)).lstrip("-_")[:MAX_LENGTH] or "token"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = base[: MAX_LENGTH - len(suffix)] + suffix
    return candidate


def rename_unfit_tokens(apps, schema_editor):
    ApiToken = apps.get_model("cwom", "ApiToken")
    tokens = list(ApiToken.objects.using(schema_editor.connection.alias).order_by("id"))
    taken = {token.name for token in tokens if re.search(PATTERN, token.name)}
    for token in tokens:
        if re.search(PATTERN, token.name):
            continue
        old, token.name = token.name, fitting_name(token.name, taken)
        taken.add(token.name)
        token.save(update_fields=["name"])
        sys.stdout.write(f"\n  API token {old!r} renamed to {token.name!r} (token names are now slugs)")


class Migration(migrations.Migration):

    dependencies = [
        ('cwom', '0004_read_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='apitoken',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(rename_unfit_tokens, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name='apitoken',
            name='name',
            field=models.CharField(max_length=64, unique=True, validators=[cwom.models.access.validate_token_name]),
        ),
        migrations.AddConstraint(
            model_name='apitoken',
            constraint=models.CheckConstraint(
                condition=models.Q(('name__regex', '\\A[a-z0-9][a-z0-9_-]{0,63}\\Z')),
                name='apitoken_name_slug',
                violation_error_code='invalid_token_name',
                violation_error_message="A token name is 1 to 64 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit.",
            ),
        ),
    ]

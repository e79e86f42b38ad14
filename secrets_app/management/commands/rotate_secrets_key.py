"""``manage.py rotate_secrets_key``: re-encrypt every secret under a new SECRETS_ENCRYPTION_KEY.

Run it with the current key configured, then switch every process (web, worker, beat) to the new
key. Best with writers stopped: a process still running with the old key after the commit writes
rows only the old key can read. Prints counts only — never a value, never a key.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from molecule_site.env import EnvError
from secrets_app import services
from secrets_app.crypto import parse_key


class Command(BaseCommand):
    help = (
        "Re-encrypt every workspace and global secret under a new key in one transaction, verifying "
        "each with the new key before commit. Nothing changes if any secret cannot be decrypted."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--new-key", metavar="KEY", help="the new key: base64 of 32 bytes, or 32 characters"
        )
        source.add_argument(
            "--new-key-env", metavar="VAR",
            help="name of an environment variable holding the new key (keeps it out of shell history)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="decrypt, re-encrypt and verify everything, but write nothing"
        )

    def handle(self, *args, new_key=None, new_key_env=None, dry_run=False, **options):
        if new_key_env:
            raw, source = os.environ.get(new_key_env), new_key_env
            if not raw:
                raise CommandError(f"environment variable {new_key_env} is not set")
        else:
            raw, source = new_key, "--new-key"
        try:
            key = parse_key(raw, variable=source)
        except EnvError as exc:
            raise CommandError(str(exc)) from None

        try:
            result = services.secrets_rotate_key(new_key=key, dry_run=dry_run)
        except services.RotationError as exc:
            raise CommandError(str(exc)) from None

        counts = f"{result.workspace_secrets} workspace secrets and {result.global_secrets} global secrets"
        if dry_run:
            self.stdout.write(f"dry run: would re-encrypt {counts}; nothing was changed")
            return
        self.stdout.write(self.style.SUCCESS(f"re-encrypted {counts}"))
        if os.environ.get("SECRETS_ENCRYPTION_KEY"):
            where = "set SECRETS_ENCRYPTION_KEY to the new key"
        else:  # outside production the key may come from the file settings generated
            where = (
                f"put the new key in {settings.MOLECULE_HOME / 'secrets_encryption.key'} "
                "(or set SECRETS_ENCRYPTION_KEY)"
            )
        self.stdout.write(
            f"Now {where} for every process (web, worker, beat) and restart them: "
            "until then they cannot decrypt secrets."
        )

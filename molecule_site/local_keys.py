"""Keys kept under ``MOLECULE_HOME`` when the environment does not give them.

Outside production the platform generates what it needs once (the secrets encryption key, the
Django secret key, the admin token) and keeps each in a file only its user can read (0600), so
every process of one install — web, worker, beat, ``manage.py`` — shares the same values
without them travelling through environment variables, which child processes would inherit.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from pathlib import Path

ADMIN_TOKEN_FILE = "admin_token"
SECRETS_KEY_FILE = "secrets_encryption.key"
DJANGO_KEY_FILE = "django_secret.key"


def local_key(home: Path, name: str, make) -> tuple[str, bool]:
    """The key in ``home/name``, written with ``make()`` first when missing; and whether it was.

    Several processes of one install start at once (the web processes, worker, beat): the key is
    written to a private temporary file and linked into place, so a reader never sees a file
    that exists but is still empty, and the first writer wins.
    """
    path = Path(home) / name
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
        os.link(draft, path)
        created = True
    except FileExistsError:
        created = False  # another process of this install linked its key first: use that one
    finally:
        os.unlink(draft)
    return path.read_text().strip(), created


def admin_token(home: Path) -> tuple[str, bool]:
    """The generated ``ADMIN_TOKEN`` of this install (43 url-safe characters)."""
    return local_key(home, ADMIN_TOKEN_FILE, lambda: secrets.token_urlsafe(32))


def secrets_encryption_key(home: Path) -> str:
    return local_key(home, SECRETS_KEY_FILE, lambda: base64.b64encode(secrets.token_bytes(32)).decode())[0]


def django_secret_key(home: Path) -> str:
    return local_key(home, DJANGO_KEY_FILE, lambda: secrets.token_urlsafe(50))[0]

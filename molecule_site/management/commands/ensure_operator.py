"""Create the first operator account when none exists (``make run`` calls this on every start)."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from molecule_site.env import env_str


class Command(BaseCommand):
    help = (
        "Create a superuser if there is none. Credentials come from MOLECULE_ADMIN_USER / "
        "MOLECULE_ADMIN_PASSWORD / MOLECULE_ADMIN_EMAIL; without a password one is generated "
        "and printed once."
    )

    def handle(self, *args, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True, is_active=True).exists():
            return
        username = env_str("MOLECULE_ADMIN_USER", "admin")
        email = env_str("MOLECULE_ADMIN_EMAIL", "")
        password = env_str("MOLECULE_ADMIN_PASSWORD")
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(18)
        users.objects.create_superuser(username=username, email=email, password=password)
        if generated:
            self.stdout.write(
                f"Created operator account {username!r} with password {password}\n"
                "This password is shown once; change it in the admin."
            )
        else:
            self.stdout.write(f"Created operator account {username!r} (password from MOLECULE_ADMIN_PASSWORD).")

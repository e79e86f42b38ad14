"""Restart the local workspace runtimes that should run (``make run`` calls this at start)."""

from django.core.management.base import BaseCommand

from workspaces.provisioning import restart_runtimes_after_platform_start


class Command(BaseCommand):
    help = (
        "Put every workspace the local-process provisioner runs, whose runtime should be running but "
        "is not (the platform was stopped), back to provisioning and queue its restart."
    )

    def handle(self, *args, **options):
        restarted = restart_runtimes_after_platform_start()
        if restarted:
            self.stdout.write(f"restarting {restarted} local workspace runtime(s)")

"""Stop every local-process workspace runtime of ``MOLECULE_HOME`` (``make run`` calls this on exit)."""

from django.core.management.base import BaseCommand

from workspaces.provisioners.local import LocalProcessProvisioner


class Command(BaseCommand):
    help = (
        "Stop every molecule-runtime process the local-process provisioner started under MOLECULE_HOME "
        "(SIGTERM, up to 10 s, then SIGKILL). Workspace rows are left as they are: the next start "
        "restarts the ones that should run (restart_local_runtimes)."
    )

    def handle(self, *args, **options):
        stopped = LocalProcessProvisioner().stop_all()
        if stopped:
            self.stdout.write(f"stopped {stopped} local workspace runtime(s)")

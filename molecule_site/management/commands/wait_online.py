"""Wait until workspaces (and their teams) are online — the README's "Try it" uses it."""

import time
import uuid

from django.core.management.base import BaseCommand, CommandError

from workspaces import selectors
from workspaces.models import Workspace, WorkspaceStatus

POLL_SECONDS = 0.5
GIVEN_UP = (WorkspaceStatus.FAILED, WorkspaceStatus.REMOVED)


class Command(BaseCommand):
    help = "Wait until the given workspaces and all their descendants are online (exit 1 on timeout or failure)."

    def add_arguments(self, parser):
        parser.add_argument("workspace_ids", nargs="+", help="workspace ids (their teams are included)")
        parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait (default 90)")

    def handle(self, *args, workspace_ids, timeout, **options):
        for workspace_id in workspace_ids:
            try:
                uuid.UUID(workspace_id)
            except ValueError:
                raise CommandError(f"not a workspace id: {workspace_id!r}") from None
        deadline = time.monotonic() + timeout
        while True:
            ids = set(workspace_ids)
            for workspace_id in workspace_ids:
                ids |= {str(i) for i in selectors.descendant_ids(workspace_id)}
            statuses = dict(Workspace.objects.filter(pk__in=ids).values_list("name", "status"))
            failed = sorted(name for name, status in statuses.items() if status in GIVEN_UP)
            if failed:
                raise CommandError(f"not starting: {', '.join(failed)} (see the admin for the error)")
            waiting = sorted(name for name, status in statuses.items() if status != WorkspaceStatus.ONLINE)
            if len(statuses) == len(ids) and not waiting:
                self.stdout.write(f"online: {', '.join(sorted(statuses))}")
                return
            if time.monotonic() > deadline:
                raise CommandError(f"still not online after {timeout:.0f}s: {', '.join(waiting) or 'unknown ids'}")
            time.sleep(POLL_SECONDS)

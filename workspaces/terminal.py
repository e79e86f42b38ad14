"""Who may open a workspace's terminal, and opening it (spec §18; the consumer is
:mod:`workspaces.terminal_consumer`).

A caller that names itself with ``X-Workspace-ID`` must present its own token for that id
(``Authorization: Bearer``; 401 ``{"error":"invalid token for claimed workspace"}``) and may
only reach workspaces it can talk to under ``can_communicate`` (403 ``{"error":"not
authorized to access this workspace's terminal"}``), exactly as in the original. Without
``X-Workspace-ID`` the original opens the shell to anyone who can reach the port; here that is
dev mode only, and otherwise an operator is needed: a logged-in staff session (how the canvas
connects, from an allowed ``Origin``, as ``/ws`` checks it) or the admin token (401 ``{"error":
"admin auth required"}`` for anyone else). Then the workspace must exist (404 ``{"error":
"workspace not found"}``) and the provisioner port opens the shell
(:meth:`Provisioner.exec_terminal`), whose :class:`TerminalUnavailable` is the answer — 503
``{"error":"Docker not available"}`` where nothing runs workspaces, 404 ``{"error":"container
not running"}``…

A shell is a process (and two threads) per client, so a web process holds at most
``MAX_SESSIONS``; one more is 503 ``{"error":"too many terminal sessions"}``. Opening one is
recorded as a ``TERMINAL_OPENED`` event (who, never what was typed).
"""

from __future__ import annotations

import logging
import threading
import time

from activity.events import emit
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.auth import dev_mode, is_admin_token
from workspaces import selectors
from workspaces.models import WorkspaceStatus
from workspaces.provisioners import get_provisioner
from workspaces.provisioners.base import TerminalSession, TerminalUnavailable

log = logging.getLogger(__name__)

MAX_SESSIONS = 32
OPENED_EVENT = "TERMINAL_OPENED"

BAD_ORIGIN = "origin not allowed"
INVALID_CALLER_TOKEN = "invalid token for claimed workspace"
NOT_AUTHORIZED = "not authorized to access this workspace's terminal"
ADMIN_REQUIRED = "admin auth required"
WORKSPACE_NOT_FOUND = "workspace not found"
TOO_MANY_SESSIONS = "too many terminal sessions"
AUTH_CHECK_FAILED = "auth check failed"


class _Slots:
    """How many terminals this process holds (threads call acquire/release)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.used = max(0, self.used - 1)


slots = _Slots(MAX_SESSIONS)


async def terminal_principal(
    *, target_id: str, origin_ok: bool, caller_id: str | None, token: str | None, staff_name: str | None,
) -> str:
    """Who is opening ``target_id``'s terminal (``workspace:<id>``, ``admin``, ``operator:<name>``
    or ``dev-mode``), or :class:`TerminalUnavailable` with the refusal."""
    if not origin_ok:
        raise TerminalUnavailable(403, BAD_ORIGIN)
    if caller_id is not None:
        try:
            valid = token is not None and await registry_services.atoken_validate(
                token=token, workspace_id=caller_id) is not None
            allowed = valid and await registry_selectors.acan_communicate(caller_id, target_id)
        except Exception:  # noqa: BLE001 - a failed check refuses the shell (fail closed)
            log.exception("terminal: auth check of caller %s for workspace %s failed", caller_id, target_id)
            raise TerminalUnavailable(500, AUTH_CHECK_FAILED) from None
        if not valid:
            raise TerminalUnavailable(401, INVALID_CALLER_TOKEN)
        if not allowed:
            raise TerminalUnavailable(403, NOT_AUTHORIZED)
        return f"workspace:{caller_id}"
    if is_admin_token(token):
        return "admin"
    if staff_name is not None and token is None:
        return f"operator:{staff_name}"
    if dev_mode():
        return "dev-mode"
    raise TerminalUnavailable(401, ADMIN_REQUIRED)


def terminal_open(*, workspace_id: str, principal: str) -> TerminalSession:
    """A shell in ``workspace_id``'s runtime for ``principal`` (sync: the backend may block on
    a fork or the Docker engine). Close it with :func:`terminal_close`."""
    workspace = selectors.workspace_get(workspace_id)
    if workspace is None or workspace.status == WorkspaceStatus.REMOVED:
        raise TerminalUnavailable(404, WORKSPACE_NOT_FOUND)
    if not slots.acquire():
        log.warning("terminal: refused workspace %s for %s: %d sessions open", workspace.id, principal, slots.used)
        raise TerminalUnavailable(503, TOO_MANY_SESSIONS)
    try:
        session = get_provisioner().exec_terminal(workspace)
    except BaseException:
        slots.release()
        raise
    log.info("terminal: opened for workspace %s by %s", workspace.id, principal)
    emit(OPENED_EVENT, workspace.id, {"by": principal}, persist=True)
    return session


def terminal_close(session: TerminalSession, *, workspace_id: str, opened_at: float, bytes_in: int, bytes_out: int) -> None:
    """End the shell and give its slot back (sync: the backend waits for the shell to exit)."""
    try:
        session.close()
    except Exception:  # noqa: BLE001 - the slot is given back whatever the backend says
        log.exception("terminal: closing the session of workspace %s failed", workspace_id)
    finally:
        slots.release()
    log.info("terminal: closed for workspace %s after %.1fs (%d bytes in, %d out)",
             workspace_id, time.monotonic() - opened_at, bytes_in, bytes_out)

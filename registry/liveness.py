"""The beat sweeps of the registry: liveness, provision timeout, stale tokens, containers and idle
hibernation (spec §7.4, §6.5).

Each sweep follows Healthchecks' ``sendalerts``: read candidate rows (through an index where
there are many), then claim each one with a conditional UPDATE that repeats the condition it was
selected by, and act only when the claim changed a row. Several sweepers may run at once (two
beat ticks overlapping in the worker pool, or a stray second beat): a row is handled once, and
each state change emits exactly one event, after commit (DESIGN flow 3, style rule 3).

Restarts are asked only for workspaces the provisioner started itself
(``Provisioner.provisioned_workspace_ids``): one that merely registered goes offline like an
external agent, and nothing is spawned for it.

The Celery tasks in ``registry.tasks`` only call the functions here.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max, TextField
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from activity.events import emit
from registry.models import WorkspaceAuthToken
from registry.redis_keys import clear_workspace_keys
from workspaces.models import EXTERNAL_RUNTIME, LIVE_STATUSES, Workspace, WorkspaceStatus
from workspaces.provisioners import ManagedContainer, Provisioner, get_provisioner
from workspaces.provisioning import request_restarts
from workspaces.services import hibernate
from workspaces.selectors import as_uuid

log = logging.getLogger(__name__)

# --- idle hibernation (spec §6.5, §19) -------------------------------------------------------------------

def hibernation_sweep(*, now: datetime | None = None, batch: int = 100) -> int:
    """Hibernate idle workspaces whose ``hibernation_deadline`` passed; returns how many.

    The deadline is ``hibernation_idle_minutes`` after the workspace was last seen working (its
    register, a heartbeat with active tasks, the setting's change), so idle workspaces are read
    through the partial index on due live rows instead of a scan. Each row is claimed by the
    hibernate procedure's conditional UPDATE, which repeats the selection (idle, still due), so a
    task that started meanwhile or a second sweeper leaves it alone. External runtimes are never
    hibernated: nothing of ours would wake them.
    """
    now = now or timezone.now()
    hibernated = 0
    while True:
        due = list(
            Workspace.objects.filter(status__in=LIVE_STATUSES, hibernation_deadline__isnull=False,
                                     hibernation_deadline__lte=now, hibernation_idle_minutes__gt=0, active_tasks=0)
            .exclude(runtime=EXTERNAL_RUNTIME)
            .order_by("hibernation_deadline")
            .values_list("id", flat=True)[:batch]
        )
        if not due:
            return hibernated
        claimed = 0
        for workspace_id in due:
            try:
                claimed += hibernate(workspace_id=workspace_id, due_before=now)
            except DatabaseError:
                log.exception("hibernating idle workspace %s failed", workspace_id)
        hibernated += claimed
        if len(due) < batch or not claimed:
            return hibernated


# --- liveness (DESIGN flow 3) -------------------------------------------------------------------------

def liveness_sweep(*, now: datetime | None = None, batch: int = 100) -> int:
    """Take live workspaces whose ``liveness_deadline`` has passed offline; return how many.

    Rows are read through the partial index on live rows, oldest deadline first, ``batch`` at a
    time; another batch follows while the last one was full and made progress (each successful
    claim removes a row from the selection, so the pass ends). A heartbeat that lands between
    the read and the claim moves the deadline forward, and the claim then matches nothing.
    """
    now = now or timezone.now()
    provisioner = get_provisioner()
    offline = 0
    while True:
        expired = _expired_live_rows(now=now, batch=batch)
        if not expired:
            return offline
        ours = _provisioned_ids(provisioner)
        claimed = sum(
            _take_offline(workspace_id, old_status=status, now=now,
                          restart=runtime != EXTERNAL_RUNTIME and workspace_id in ours,
                          liveness_deadline__lt=now)
            for workspace_id, status, runtime in expired
        )
        offline += claimed
        if len(expired) < batch or not claimed:
            return offline


def _provisioned_ids(provisioner: Provisioner) -> set[uuid.UUID]:
    """The workspaces whose runtime ``provisioner`` started, where it runs runtimes locally; none
    when it cannot tell (they go offline all the same, and nothing is restarted)."""
    if not provisioner.runs_local_runtimes:
        return set()
    try:
        return _as_uuids(provisioner.provisioned_workspace_ids())
    except Exception:  # noqa: BLE001 - not knowing must not look like "ours"
        log.exception("could not list the workspaces the provisioner started; restarting none")
        return set()


def _expired_live_rows(*, now: datetime, batch: int) -> list[tuple[uuid.UUID, str, str]]:
    # The WHERE implies the predicate of idx_workspaces_live_deadline (status IN live statuses,
    # deadline not null), so PostgreSQL reads the index in deadline order and stops at ``batch``.
    return list(
        Workspace.objects.filter(
            status__in=LIVE_STATUSES, liveness_deadline__isnull=False, liveness_deadline__lt=now
        )
        .order_by("liveness_deadline")
        .values_list("id", "status", "runtime")[:batch]
    )


def _take_offline(workspace_id, *, old_status: str, now: datetime, restart: bool,
                  **still) -> bool:
    """Claim ``workspace_id`` for offline if it is still ``old_status`` (and matches ``still``).

    On a successful claim, after commit: ``WORKSPACE_OFFLINE {}``, the workspace's Redis keys
    cleared, and with ``restart`` (its runtime is one our provisioner started) a restart
    asked for (spec §6.2).
    """
    with transaction.atomic():
        claimed = Workspace.objects.filter(pk=workspace_id, status=old_status, **still).update(
            status=WorkspaceStatus.OFFLINE, updated_at=now
        )
        if not claimed:
            return False  # another sweeper, a heartbeat or a lifecycle change got there first
        emit("WORKSPACE_OFFLINE", workspace_id, {})
        transaction.on_commit(lambda: clear_workspace_keys([workspace_id]), robust=True)
        if restart:
            transaction.on_commit(lambda: request_restarts([workspace_id]), robust=True)
    log.info("workspace %s went offline (was %s)", workspace_id, old_status)
    return True


# --- provision timeout (spec §7.4) --------------------------------------------------------------------

PROVISION_TIMEOUT_MESSAGE = (
    "provisioning timed out — container started but never called /registry/register. "
    "Check container logs and network connectivity to the platform."
)
DEFAULT_PROVISION_TIMEOUT_SECONDS = 10 * 60
SLOW_RUNTIME_PROVISION_TIMEOUT_SECONDS = {"hermes": 30 * 60}


def provision_timeout_seconds(runtime: str) -> int:
    """``PROVISION_TIMEOUT_SECONDS`` when set, else 30 min for hermes and 10 min for the others."""
    if settings.PROVISION_TIMEOUT_SECONDS:
        return settings.PROVISION_TIMEOUT_SECONDS
    return SLOW_RUNTIME_PROVISION_TIMEOUT_SECONDS.get(runtime, DEFAULT_PROVISION_TIMEOUT_SECONDS)


def provision_timeout_sweep(*, now: datetime | None = None) -> int:
    """Fail workspaces stuck in ``provisioning`` past their timeout; return how many."""
    now = now or timezone.now()
    return sum(
        _fail_provisioning(workspace_id, runtime=runtime, now=now)
        for workspace_id, runtime in _provisioning_candidates(now=now)
    )


def _provisioning_candidates(*, now: datetime) -> list[tuple[uuid.UUID, str]]:
    """``provisioning`` rows old enough for the shortest timeout; the exact one is checked per row."""
    shortest = settings.PROVISION_TIMEOUT_SECONDS or min(
        DEFAULT_PROVISION_TIMEOUT_SECONDS, *SLOW_RUNTIME_PROVISION_TIMEOUT_SECONDS.values()
    )
    return list(
        Workspace.objects.filter(status=WorkspaceStatus.PROVISIONING, updated_at__lte=now - timedelta(seconds=shortest))
        .order_by("updated_at")
        .values_list("id", "runtime")
    )


def _fail_provisioning(workspace_id, *, runtime: str, now: datetime) -> bool:
    """Claim a timed-out ``provisioning`` row for ``failed``; the UPDATE repeats the age check, so a
    workspace that registered or was re-provisioned meanwhile is left alone."""
    timeout = provision_timeout_seconds(runtime)
    with transaction.atomic():
        claimed = Workspace.objects.filter(
            pk=workspace_id, status=WorkspaceStatus.PROVISIONING, updated_at__lte=now - timedelta(seconds=timeout)
        ).update(status=WorkspaceStatus.FAILED, last_sample_error=PROVISION_TIMEOUT_MESSAGE, updated_at=now)
        if not claimed:
            return False
        emit("WORKSPACE_PROVISION_FAILED", workspace_id, {
            "error": PROVISION_TIMEOUT_MESSAGE,
            "timeout_secs": timeout,
            "runtime": runtime,
            "source": "provision_timeout_sweep",
        })
    log.warning("workspace %s (%s) timed out after %d s in provisioning", workspace_id, runtime, timeout)
    return True


# --- stale tokens without a runtime (spec §7.4 item 3, the seed's sweepStaleTokensWithoutContainer) -----

STALE_TOKEN_AGE = timedelta(minutes=5)


def stale_token_sweep(*, now: datetime | None = None) -> int:
    """Revoke the live tokens of workspaces whose runtime is gone; return how many workspaces.

    Only where the provisioner runs runtimes locally (Docker, local processes) — elsewhere it
    cannot know which runtimes are alive, and the pass is a no-op. A workspace qualifies when
    its runtime is not among the live ones, it is neither ``removed`` nor ``provisioning`` nor
    ``external``, and none of its live tokens has been used (or minted) for 5 minutes. When the
    runtimes cannot be listed the cycle is skipped; a database error ends the pass, and the next
    cycle picks up what is left.
    """
    provisioner = get_provisioner()
    if not provisioner.runs_local_runtimes:
        return 0
    try:
        live = provisioner.live_workspace_ids()
    except Exception:  # noqa: BLE001 - a backend failure must not look like "nothing is alive"
        log.exception("stale-token sweep: could not list live runtimes; skipping this cycle")
        return 0
    now = now or timezone.now()
    cutoff = now - STALE_TOKEN_AGE
    try:
        candidates = _stale_token_candidates(live_ids=live, cutoff=cutoff)
    except DatabaseError:
        log.exception("stale-token sweep: could not select candidates; retrying next cycle")
        return 0
    revoked_workspaces = 0
    for workspace_id in candidates:
        try:
            revoked = _revoke_stale_tokens(workspace_id, cutoff=cutoff, now=now)
        except DatabaseError:
            log.exception("stale-token sweep: stopping at workspace %s; the next cycle retries", workspace_id)
            break
        if revoked:
            revoked_workspaces += 1
            log.info("stale-token sweep: revoked %d token(s) of workspace %s (no live runtime)", revoked, workspace_id)
    return revoked_workspaces


def _stale_token_candidates(*, live_ids, cutoff: datetime) -> list[uuid.UUID]:
    """Workspaces with live tokens, no live runtime, and no token activity since ``cutoff``."""
    live = _as_uuids(live_ids)
    return list(
        WorkspaceAuthToken.objects.filter(revoked_at__isnull=True)
        .exclude(workspace__status__in=[WorkspaceStatus.REMOVED, WorkspaceStatus.PROVISIONING])
        .exclude(workspace__runtime=EXTERNAL_RUNTIME)
        .exclude(workspace_id__in=live)
        .values("workspace_id")
        .annotate(last_activity=Max(Coalesce("last_used_at", "created_at")))
        .filter(last_activity__lt=cutoff)
        .order_by("last_activity")
        .values_list("workspace_id", flat=True)
    )


def _revoke_stale_tokens(workspace_id, *, cutoff: datetime, now: datetime) -> int:
    """Revoke the workspace's live tokens that are still stale: the UPDATE repeats the staleness
    condition, so a token used since the candidates were read survives."""
    return (
        WorkspaceAuthToken.objects.alias(activity=Coalesce("last_used_at", "created_at"))
        .filter(workspace_id=workspace_id, revoked_at__isnull=True, activity__lt=cutoff)
        .update(revoked_at=now)
    )


def _as_uuids(values) -> set[uuid.UUID]:
    return {parsed for parsed in map(as_uuid, values) if parsed is not None}


# --- Docker only: orphan containers and container health (spec §7.4) ------------------------------------

ORPHAN_PASS_DEADLINE_SECONDS = 30
WORKSPACE_CONTAINER_PREFIX = "ws-"
_ID_PREFIX = re.compile(r"[0-9a-f-]+")


def _container_provisioner() -> Provisioner | None:
    provisioner = get_provisioner()
    return provisioner if provisioner.has_containers else None


def orphan_container_sweep() -> int:
    """Remove containers whose workspace is gone; return how many were removed (Docker only).

    Pass 1: ``ws-<prefix>`` containers (running or stopped) whose prefix matches only removed
    rows. Pass 2: containers labelled managed whose prefix matches no row at all (purged).
    Prefixes must be hex/dash only; the pass gives up after 30 s and the next one continues.
    """
    provisioner = _container_provisioner()
    if provisioner is None:
        return 0
    started = time.monotonic()
    try:
        containers = provisioner.list_managed_containers()
    except Exception:  # noqa: BLE001 - the engine may be down; try again next cycle
        log.exception("orphan sweep: could not list containers")
        return 0
    removed = 0
    for container in containers:
        if time.monotonic() - started > ORPHAN_PASS_DEADLINE_SECONDS:
            log.warning("orphan sweep: pass deadline reached; the next pass continues")
            break
        if not _is_orphan(container):
            continue
        try:
            provisioner.remove_orphan_container(container)
        except Exception:  # noqa: BLE001 - one stuck container must not stop the pass
            log.exception("orphan sweep: could not remove container %s", container.name)
            continue
        removed += 1
        log.info("orphan sweep: removed container %s", container.name)
    return removed


def _is_orphan(container: ManagedContainer) -> bool:
    if not container.name.startswith(WORKSPACE_CONTAINER_PREFIX):
        return False
    prefix = container.name[len(WORKSPACE_CONTAINER_PREFIX):]
    if not _ID_PREFIX.fullmatch(prefix):
        return False
    statuses = set(
        Workspace.objects.annotate(id_text=Cast("id", TextField()))
        .filter(id_text__startswith=prefix)
        .values_list("status", flat=True)
    )
    if statuses:
        return statuses == {WorkspaceStatus.REMOVED}
    return container.managed


def _health_swept_provisioner() -> Provisioner | None:
    """The backends that ask for the health sweep (``health_sweep``: Docker, local processes)."""
    provisioner = get_provisioner()
    return provisioner if provisioner.health_sweep else None


def container_health_sweep(*, now: datetime | None = None) -> int:
    """Take live workspaces whose container (or local process) is gone offline; return how many.

    The spec's health sweep (a), for Docker and for backends with ``health_sweep`` (local
    processes: a crashed runtime is noticed within a sweep instead of the liveness TTL), over the
    workspaces the backend provisioned: one that registered on its own has no runtime of ours to
    be missing. Its part (b), external workspaces with a stale heartbeat, is the deadline-based
    ``liveness_sweep``, which covers every runtime. A workspace written to after the runtimes
    were listed (a register or heartbeat) is left for the next cycle.
    """
    provisioner = _health_swept_provisioner()
    if provisioner is None:
        return 0
    now = now or timezone.now()
    try:
        running = _as_uuids(provisioner.live_workspace_ids())
        gone = _as_uuids(provisioner.provisioned_workspace_ids()) - running
    except Exception:  # noqa: BLE001 - Docker errors are ignored: nothing is taken offline on them
        log.exception("container health sweep: could not list running containers")
        return 0
    rows = (
        Workspace.objects.filter(status__in=LIVE_STATUSES, pk__in=gone)
        .exclude(runtime=EXTERNAL_RUNTIME)
        .values_list("id", "status")
    )
    return sum(
        _take_offline(workspace_id, old_status=status, now=now, restart=True, updated_at__lte=now)
        for workspace_id, status in rows
    )

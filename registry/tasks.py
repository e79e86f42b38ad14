"""Celery tasks of the registry: the beat sweeps (scheduled in ``molecule_site.celery``).

Thin wrappers: the work and its rules live in ``registry.liveness``.
"""

from celery import shared_task

from registry import liveness


@shared_task
def sweep_liveness() -> int:
    """Live workspaces past their liveness deadline go offline (DESIGN flow 3)."""
    return liveness.liveness_sweep()


@shared_task
def sweep_provision_timeouts() -> int:
    """Workspaces stuck in provisioning past their timeout become failed (spec §7.4)."""
    return liveness.provision_timeout_sweep()


@shared_task
def sweep_stale_tokens() -> int:
    """Tokens of workspaces without a live runtime are revoked (spec §7.4 item 3)."""
    return liveness.stale_token_sweep()


@shared_task
def sweep_orphan_containers() -> int:
    """Containers of removed or purged workspaces are removed (Docker only, spec §7.4 items 1–2)."""
    return liveness.orphan_container_sweep()


@shared_task
def sweep_container_health() -> int:
    """Live workspaces whose container or local process stopped go offline (spec §7.4 health sweep)."""
    return liveness.container_health_sweep()


@shared_task
def sweep_idle_hibernation() -> int:
    """Idle workspaces with ``hibernation_idle_minutes`` past their deadline hibernate (spec §6.5)."""
    return liveness.hibernation_sweep()

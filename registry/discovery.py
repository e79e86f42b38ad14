"""Where a workspace's agent can be reached, and from where (spec §8.3 discovery, the proxy's URL trust).

Discovery and the proxy consult the provisioner port here, above it in the import layers:
the backend knows which URL it assigned to a runtime it started (trusted by the SSRF filters),
where its runtimes answer on the workspace network, and how a URL looks from where a caller
runs — a container reaches the platform host's loopback through the Docker host alias, a local
process reaches it as registered, an external caller gets the URL as registered.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

from molecule_site.redis_client import get_redis
from registry.redis_keys import URL_TTL_SECONDS, internal_url_key
from registry.selectors import can_communicate
from registry.ssrf import discover_url_allowed
from workspaces.models import EXTERNAL_RUNTIME, Workspace, WorkspaceStatus
from workspaces.provisioners import get_provisioner
from workspaces.selectors import as_uuid

log = logging.getLogger(__name__)

DISCOVERY_PORT = 8000


def synthesized_internal_url(workspace_id) -> str:
    """The original's answer for a runtime it did not place: ``http://ws-<id12>:8000``."""
    return f"http://ws-{str(workspace_id)[:12]}:{DISCOVERY_PORT}"


def provisioner_assigned_url(workspace_id) -> str | None:
    """The URL our own provisioner gave the workspace's runtime (a local process's loopback port,
    a container's published port), or None. Best effort: a backend that cannot tell trusts nothing."""
    try:
        return get_provisioner().assigned_url(workspace_id)
    except Exception:  # noqa: BLE001 - fall back to the ordinary SSRF checks
        log.warning("the provisioner could not tell the URL of workspace %s", workspace_id, exc_info=True)
        return None


def is_provisioner_assigned_url(workspace_id, url: str) -> bool:
    """Whether ``url`` is exactly the one our provisioner assigned to ``workspace_id``.

    Such a URL points at a runtime the platform started itself, so the SSRF filters of the proxy
    and of discovery trust it in every mode; a URL reported by an agent is trusted only when it
    is this very URL, otherwise it is checked as before.
    """
    return bool(url) and url == provisioner_assigned_url(workspace_id)


def internal_url(workspace_id) -> str:
    """Where peers reach a non-external runtime: on the workspace network for containers, where
    the backend put it for local processes, else the original's synthesized container name."""
    provisioner = get_provisioner()
    try:
        placed = provisioner.internal_url(workspace_id) or provisioner.assigned_url(workspace_id)
    except Exception:  # noqa: BLE001 - the engine cannot tell: answer what the original would
        log.warning("the provisioner could not place workspace %s", workspace_id, exc_info=True)
        placed = None
    return placed or synthesized_internal_url(workspace_id)


def docker_rewrite(target_id: str, url: str) -> str:
    """When the platform itself runs in a container on the workspace network, loopback means that
    container: reach a provisioned runtime by its name there instead.

    Only with ``MOLECULE_IN_DOCKER`` (the deployment says so) and a backend that runs containers
    (``ws-<id12>``). The original also guessed from ``/.dockerenv``, but a platform in a container
    that is not on the workspace network (a dev container, CI) reaches the published ports on
    its own loopback, and there the names do not resolve.
    """
    if url.startswith(("http://127.0.0.1:", "http://localhost:")) and settings.MOLECULE_IN_DOCKER \
            and get_provisioner().has_containers:
        return internal_url(target_id)
    return url


def url_seen_from(caller_id, url: str) -> str:
    """``url`` as the runtime of ``caller_id`` reaches it (the backend's answer; unchanged when
    it cannot tell)."""
    try:
        return get_provisioner().url_seen_from(caller_id, url)
    except Exception:  # noqa: BLE001 - as registered is the safe default
        log.warning("the provisioner could not place caller %s", caller_id, exc_info=True)
        return url


def workspace_discover(*, caller_id, target_id) -> tuple[int, dict]:
    """``GET /registry/discover/:id`` after the caller passed auth: ``(status, body)`` (spec §8.3).

    A read with a read-through cache fill: the internal URL is written to ``ws:{id}:internal_url``
    as the original does. The hierarchy check comes first, so a target that does not exist is
    normally a 403 (``can_communicate`` is false for unknown ids); the 404 is only reachable when
    a workspace discovers itself.
    """
    if not can_communicate(caller_id, target_id):
        return 403, {"error": "not authorized to discover this workspace"}
    target = as_uuid(target_id)
    row = Workspace.objects.filter(pk=target).values("id", "name", "status", "runtime", "url").first()

    if row is not None and row["runtime"] == EXTERNAL_RUNTIME and row["url"]:
        url = url_seen_from(caller_id, row["url"])
        # Trusted without the SSRF check only when it is the URL our provisioner assigned.
        if not (is_provisioner_assigned_url(target, url) or discover_url_allowed(url)):
            return 503, {"error": "workspace URL failed safety check"}
        return 200, {"id": str(target), "url": url, "name": row["name"]}

    name = row["name"] if row is not None else ""
    try:
        cached = get_redis().get(internal_url_key(target))
    except redis.RedisError:
        cached = None
    if cached:
        return 200, {"id": str(target), "url": cached, "name": name}
    if row is None:
        return 404, {"error": "workspace not found"}
    if row["status"] in (WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED):
        url = internal_url(target)
        try:
            get_redis().set(internal_url_key(target), url, ex=URL_TTL_SECONDS)
        except redis.RedisError:
            pass  # a cache; the next discovery places it again
        return 200, {"id": str(target), "url": url, "name": name}
    return 503, {"error": "workspace not available", "status": row["status"]}

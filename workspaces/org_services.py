"""Importing an org template: the whole workspace tree in one transaction (spec §19).

``POST /org/import`` validates everything first (:mod:`workspaces.org_templates`: the files, the
tree, the templates it names), then checks ``required_env`` against the global secrets, and only
then creates anything. Each workspace is made by ``workspace_create`` exactly as
``POST /workspaces`` makes one — row, layout, ``WORKSPACE_PROVISIONING``, provisioning on commit
(or the ``none`` backend's ``failed`` row and event) — parents before children; its initial
memories go through ``agent_memory_commit`` (redacted; GLOBAL ones audited); a ``model`` becomes its ``MODEL_PROVIDER``
secret, as ``PUT /workspaces/:id/model`` sets it; its ``schedules`` follow its template's (one of
the same name replaces the template's); an ``initial_prompt`` is written into the workspace's own
config.yaml (its template's copied in, the key set) before its runtime first starts. Any failure
rolls the whole tree back (files written so far are discarded) and nothing is announced.

201 body: ``{"org": <name>, "count": N, "workspaces": [{"id", "name", "parent_id"}…]}`` with
``parent_id`` null for roots, parents listed before their children (depth first, in file
order). There is no partial success, so the body never carries ``error``. A missing required
secret: 400 ``{"error": "missing required env: A, B", "missing_env": ["A", "B"]}`` unless
``force``.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from memory.services import agent_memory_commit
from molecule_site.errors import ApiError
from schedules.services import schedules_over_template
from secrets_app.selectors import global_secret_listing
from workspaces import org_templates
from workspaces.files import FileStore, config_keys_set
from workspaces.models import Workspace
from workspaces.org_templates import OrgTemplate, OrgWorkspace
from workspaces.services import NewWorkspace, workspace_create


def org_import(*, directory: str | None = None, inline: dict | None = None, force: bool = False,
               platform_url: str) -> dict:
    """Create the org of ``ORG_TEMPLATES_DIR/<directory>`` or the ``inline`` one; the 201 body."""
    org = org_templates.org_template_load(directory) if directory is not None else (
        org_templates.org_template_from_object(inline)
    )
    if not force:
        missing = missing_required_env(org)
        if missing:
            raise ApiError(f"missing required env: {', '.join(missing)}", missing_env=missing)
    created: list[dict] = []
    stores: list[FileStore] = []
    try:
        with transaction.atomic():
            for root in org.workspaces:
                _create(root, parent_id=None, created=created, stores=stores, platform_url=platform_url)
    except BaseException:
        for store in stores:
            store.discard()
        raise
    return {"org": org.name, "count": len(created), "workspaces": created}


def missing_required_env(org: OrgTemplate) -> list[str]:
    """The org's ``required_env`` names that no global secret provides, in the org's order."""
    present = {item["key"] for item in global_secret_listing()}
    return [name for name in org.required_env if name not in present]


def _create(node: OrgWorkspace, *, parent_id: uuid.UUID | None, created: list[dict], stores: list[FileStore],
            platform_url: str) -> None:
    body = workspace_create(
        new=NewWorkspace(
            name=node.name, role=node.role, template=node.template, tier=node.tier,
            model=node.model, runtime=node.runtime, parent_id=parent_id,
        ),
        platform_url=platform_url,
    )
    workspace_id = uuid.UUID(body["id"])
    if node.initial_prompt is not None:  # in place before the runtime starts (provisioning runs on commit)
        stores.append(config_keys_set(
            workspace=Workspace.objects.get(pk=workspace_id), values={"initial_prompt": node.initial_prompt},
            note=f"Written by the org import: template {node.template or '(none)'} with org.yaml's initial_prompt."))
    if node.schedules:
        schedules_over_template(workspace_id=workspace_id, entries=node.schedules)
    for scope, content in node.memories:
        # the namespace POST /workspaces gives initial memories
        agent_memory_commit(workspace_id=workspace_id, content=content, scope=scope, namespace=body["awareness_namespace"])
    created.append({"id": body["id"], "name": node.name, "parent_id": str(parent_id) if parent_id else None})
    for child in node.children:
        _create(child, parent_id=workspace_id, created=created, stores=stores, platform_url=platform_url)

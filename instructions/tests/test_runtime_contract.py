"""Our runtime's client reads the platform instructions from the real platform over HTTP
(pytest-django's ``live_server``), the wire the runtime's tests check against the fake platform."""

from __future__ import annotations

import asyncio

import pytest

from instructions import services as instruction_services
from registry.tokens import token_mint
from workspaces.models import Workspace

molecule_runtime = pytest.importorskip("molecule_runtime")
from molecule_runtime.platform import PlatformClient  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dev(settings):
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = "contract-admin"
    workspace = Workspace.objects.create(name="Dev")
    _, workspace.token = token_mint(workspace=workspace)
    return workspace


def _client(live_server, workspace, tmp_path) -> PlatformClient:
    return PlatformClient(platform_url=live_server.url, workspace_id=str(workspace.id), config_dir=tmp_path,
                          initial_token=workspace.token)


def test_the_runtime_reads_the_resolved_instructions(live_server, dev, tmp_path):
    instruction_services.instruction_create(scope="global", title="Rules", content="Write tests.")
    instruction_services.instruction_create(scope="workspace", workspace_id=dev.id, title="Dev", content="Use Go.")

    async def read():
        client = _client(live_server, dev, tmp_path)
        try:
            return await client.platform_instructions()
        finally:
            await client.aclose()

    assert asyncio.run(read()) == "## Rules\n\nWrite tests.\n\n## Dev\n\nUse Go."

"""Our runtime's client reads the platform instructions from the real platform over HTTP
(pytest-django's ``live_server``), the wire the runtime's tests check against the fake platform."""

from __future__ import annotations

import asyncio

import pytest

from instructions import services as instruction_services
from molecule_site.tests.runtime_contract import dev, platform_client  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_runtime_reads_the_resolved_instructions(live_server, dev, tmp_path):
    instruction_services.instruction_create(scope="global", title="Rules", content="Write tests.")
    instruction_services.instruction_create(scope="workspace", workspace_id=dev.id, title="Dev", content="Use Go.")

    async def read():
        client = platform_client(live_server, dev, tmp_path)
        try:
            return await client.platform_instructions()
        finally:
            await client.aclose()

    assert asyncio.run(read()) == "## Rules\n\nWrite tests.\n\n## Dev\n\nUse Go."

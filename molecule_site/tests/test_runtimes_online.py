"""Every runtime's ``<runtime>-default`` template, deployed through the API, comes online on the
local backend (issue 14): each runtime from the environment it needs (crewai, hermes, google-adk
from their own, see the Makefile), the npm CLIs from ``make npm-tools``. No model is called while
a runtime boots; the keys are stand-ins and the endpoints closed loopback ports.
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from molecule_site.tests.launch import platform_on_fresh_database, wait_until
from workspaces.provisioners.docker import known_runtimes

pytestmark = pytest.mark.slow

ADMIN = "runtimes-online-admin"
STAND_INS = {"OPENAI_API_KEY": "sk-fake-online-openai", "ANTHROPIC_API_KEY": "sk-ant-fake-online",
             "GOOGLE_API_KEY": "fake-online-google", "OPENROUTER_API_KEY": "sk-or-fake-online",
             "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
             "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9"}


def test_every_default_template_comes_online_on_the_local_backend(home):
    with platform_on_fresh_database(home, redis_db=13, ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="local",
                                    RATE_LIMIT="1000000") as platform, \
            httpx.Client(base_url=platform.url, timeout=30, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
        for key, value in STAND_INS.items():
            assert api.put("/settings/secrets", json={"key": key, "value": value}).json()["status"] == "saved"
        ids = {}
        for runtime in known_runtimes():
            response = api.post("/workspaces", json={"name": f"{runtime}-{secrets.token_hex(2)}",
                                                     "template": f"{runtime}-default"})
            assert response.status_code == 201, response.text
            ids[runtime] = response.json()["id"]

        def rows():
            return {runtime: api.get(f"/workspaces/{w}").json() for runtime, w in ids.items()}

        def all_online():
            current = rows()
            failed = {r: row.get("last_sample_error") for r, row in current.items() if row["status"] == "failed"}
            assert not failed, failed
            return all(row["status"] == "online" for row in current.values())

        wait_until(all_online, 300, "every runtime to come online")
        assert {runtime: row["runtime"] for runtime, row in rows().items()} == {r: r for r in known_runtimes()}
        for runtime, workspace_id in ids.items():
            card = api.get(f"/workspaces/{workspace_id}").json()["agent_card"]
            assert card and card.get("name"), (runtime, card)

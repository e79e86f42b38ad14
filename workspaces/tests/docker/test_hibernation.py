"""Hibernation on the Docker backend, end to end (spec §6.5): the whole platform with
``MOLECULE_PROVISIONER=docker``; a workspace hibernates (its container stops), an A2A message
wakes it (503 ``waking``), it comes back online in a fresh start and answers."""

from __future__ import annotations

import tempfile

import pytest

from molecule_site.tests.launch import platform_on_fresh_database, wait_until
from workspaces.tests.docker.conftest import TEST_NETWORK
from workspaces.tests.docker.test_lifecycle import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    api,
    container,
    created,
    status,
    wait_status,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MESSAGE = {"method": "message/send",
           "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "wake up"}]}}}


@pytest.fixture(scope="module")
def platform(workspace_image):
    with tempfile.TemporaryDirectory(prefix="molecule-docker-hibernate-") as home:
        with platform_on_fresh_database(
            home, redis_db=5, ADMIN_TOKEN=ADMIN_TOKEN, MOLECULE_PROVISIONER="docker", WORKSPACE_NETWORK=TEST_NETWORK,
            CONTAINER_SWEEP_SECONDS="2", LIVENESS_SWEEP_SECONDS="2", RATE_LIMIT="1000000", WEB_CONCURRENCY="1",
        ) as launch:
            yield launch


def test_hibernate_stops_the_container_and_an_a2a_message_wakes_it(api, created, engine):
    workspace_id = created(tier=2)
    wait_status(api, workspace_id, "online")

    refused = api.post(f"/workspaces/{workspace_id}/hibernate?force=true", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    assert api.post(f"/workspaces/{workspace_id}/hibernate").json() == {"status": "hibernated"}
    assert status(api, workspace_id) == "hibernated"
    assert not container(engine, workspace_id)["State"]["Running"]
    assert api.get(f"/workspaces/{workspace_id}").json()["url"] in ("", None)
    again = api.post(f"/workspaces/{workspace_id}/hibernate")
    assert again.status_code == 404  # not online any more

    waking = api.post(f"/workspaces/{workspace_id}/a2a", json=MESSAGE)
    assert waking.status_code == 503 and waking.json()["waking"] is True
    assert waking.headers["Retry-After"] == "15"
    wait_status(api, workspace_id, "online")
    assert container(engine, workspace_id)["State"]["Running"]

    def answered() -> bool:
        reply = api.post(f"/workspaces/{workspace_id}/a2a", json=MESSAGE)
        return reply.status_code == 200 and reply.json()["result"]["parts"][0]["text"] == "echo: wake up"

    wait_until(answered, timeout=60, interval=1, what="an answer after the wake")

"""Issue 13's "done when", in Chromium: on the Docker backend the demo team deploys from the
canvas as containers that come online, and a card's Terminal tab is a shell inside its container.

The whole platform (web + worker + beat, ``MOLECULE_PROVISIONER=docker``, a fresh database, Redis
db 10) serves this module; the team is the shipped ``engineering-team`` org on the echo runtime,
whose image the docker conftest builds. The canvas is driven along the same paths as
``browser/test_first_hour.py`` (palette → Import org) and ``browser/test_terminal.py``.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from workspaces.provisioners.docker import container_name
from workspaces.provisioners.docker_files import WORKSPACE_LABEL
from workspaces.tests.browser.conftest import (  # noqa: F401 (browser_type_launch_args, page_errors: fixtures)
    ADMIN_TOKEN,
    NEEDS_CHROMIUM,
    OPERATOR,
    VIEWPORT,
    admin_client,
    browser_type_launch_args,
    log_in,
    page_errors,
    platform_on_fresh_database,
    screenshot,
)
from workspaces.tests.browser.test_terminal import open_terminal, run
from workspaces.tests.docker.conftest import TEST_NETWORK, cleanup

pytestmark = [pytest.mark.browser, pytest.mark.slow, NEEDS_CHROMIUM]

TEAM = ("PM", "Dev Lead", "Backend", "QA")
ONLINE_WITHIN = 120_000  # ms: four containers start at once on a small host (image start, boot, register)
SHELL_TIMEOUT = 20_000


@pytest.fixture(scope="module")
def platform(workspace_image):
    with tempfile.TemporaryDirectory(prefix="molecule-canvas-docker-") as home, platform_on_fresh_database(
        home, redis_db=10, ADMIN_TOKEN=ADMIN_TOKEN, MOLECULE_PROVISIONER="docker", WORKSPACE_NETWORK=TEST_NETWORK,
        MOLECULE_ADMIN_USER=OPERATOR[0], MOLECULE_ADMIN_PASSWORD=OPERATOR[1], RATE_LIMIT="1000000",
        WEB_CONCURRENCY="1", CONTAINER_SWEEP_SECONDS="2",
    ) as launch:
        yield launch


@pytest.fixture(scope="module")
def admin_api(platform):
    with admin_client(platform) as client:
        yield client


@pytest.fixture
def browser_context_args(platform):
    """A browser with no session yet: the test logs in through the form."""
    return {"base_url": platform.url, "viewport": VIEWPORT}


@pytest.fixture
def workspaces_removed(admin_api, engine):
    """Whatever the test made is deleted through the API, then its containers and volumes go."""
    yield
    rows = admin_api.get("/workspaces").json()
    for row in rows:
        if not row["parent_id"]:
            admin_api.delete(f"/workspaces/{row['id']}", params={"confirm": "true"})
    for row in rows:
        cleanup(engine, row["id"])


def running_container(engine, workspace_id: str) -> dict:
    inspected = engine.api.inspect_container(container_name(workspace_id))
    assert inspected["State"]["Running"] and not inspected["State"]["Restarting"], inspected["State"]
    assert inspected["Config"]["Labels"][WORKSPACE_LABEL] == workspace_id
    return inspected


@pytest.mark.usefixtures("page_errors", "workspaces_removed")  # fail on page errors; clean up the team
def test_the_demo_team_runs_in_containers_and_a_cards_terminal_is_a_shell_inside_one(page, admin_api, engine):
    log_in(page)
    expect(page.locator("#ws-pill")).to_have_text("Live", timeout=10_000)

    # Deploy the team from the palette, as in test_first_hour.
    page.get_by_title("Template Palette").click()
    section = page.get_by_test_id("org-templates-section")
    section.locator(".org-row", has_text="Engineering Team").get_by_role("button", name="Import org").click()
    page.get_by_role("dialog", name="Import Engineering Team").get_by_role("button", name="Import").click()
    expect(page.locator(".ws-node")).to_have_count(len(TEAM), timeout=30_000)
    expect(page.locator("#palette-toggle")).to_have_attribute("aria-expanded", "false")  # the import closes it

    # Every card goes online, and each is a running container of its own on the engine.
    for name in TEAM:
        expect(page.locator(f'.ws-node[data-name="{name}"]')).to_have_attribute("data-status", "online",
                                                                                timeout=ONLINE_WITHIN)
    rows = {row["name"]: row for row in admin_api.get("/workspaces").json()}
    assert sorted(rows) == sorted(TEAM)
    containers = {name: running_container(engine, rows[name]["id"]) for name in TEAM}
    assert len({c["Id"] for c in containers.values()}) == len(TEAM)
    assert all(rows[name]["status"] == "online" for name in TEAM)
    page.get_by_role("button", name="Fit all workspaces").click()
    screenshot(page, "docker-team-online")

    # Backend's Terminal tab: what is typed runs in Backend's container, not on the host.
    backend = rows["Backend"]["id"]
    hostname = containers["Backend"]["Config"]["Hostname"]
    assert hostname and hostname != Path("/etc/hostname").read_text().strip()  # not this host's shell
    panel = open_terminal(page, backend)
    expect(panel.get_by_role("status")).to_have_text("Shell active", timeout=SHELL_TIMEOUT)
    # the output lines, in order: the computed value, then the container's /etc/hostname alone on
    # its line (the prompt may name the host too, so the name alone somewhere proves nothing)
    run(page, "echo in-container-$((6*7)) && cat /etc/hostname",
        rf"in-container-42\s*\n\s*{re.escape(hostname)}\s*(\n|$)")
    screenshot(page, "docker-terminal")

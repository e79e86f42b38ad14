"""Browser tests of the canvas: Debian's Chromium driven by Playwright against the whole platform.

One platform (web + worker + beat, as ``make run`` starts it, on a fresh database, Redis db 6 and
the local provisioner) serves the whole session; every test starts from an empty org. The
browser logs in once as the operator and each test gets a new context with that session.
Pages fail their test on any uncaught error or console error (WebSocket/favicon noise aside).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from molecule_site.tests.launch import platform_on_fresh_database, wait_until  # noqa: F401 (the browser tests import it from here)

CHROMIUM = "/usr/bin/chromium"
ADMIN_TOKEN = "browser-tests-admin-token"
OPERATOR = ("operator", "canvas-tests-password-1")
ARTIFACTS = Path(__file__).resolve().parents[3] / ".molecule" / "test" / "artifacts" / "canvas"
VIEWPORT = {"width": 1280, "height": 800}
# Console noise that is not the page's fault (a socket closing as a test ends, a missing icon).
CONSOLE_NOISE = re.compile(r"WebSocket|favicon|Failed to load resource", re.I)

pytestmark = pytest.mark.browser
# In CI (CI=true) a missing browser fails the tests rather than skipping them. Browser tests kept
# elsewhere (workspaces/tests/docker) put this mark on themselves.
NEEDS_CHROMIUM = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                    reason=f"{CHROMIUM} not installed (make test installs it)")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            item.add_marker(NEEDS_CHROMIUM)


@pytest.fixture(scope="session")
def platform():
    """The live platform; its MOLECULE_HOME is under /tmp so local runtimes' uids can reach it."""
    home = Path(tempfile.mkdtemp(prefix="molecule-canvas-"))
    home.chmod(0o755)
    try:
        with platform_on_fresh_database(
            home, redis_db=6, ADMIN_TOKEN=ADMIN_TOKEN, MOLECULE_PROVISIONER="local", RATE_LIMIT="1000000",
            MOLECULE_ADMIN_USER=OPERATOR[0], MOLECULE_ADMIN_PASSWORD=OPERATOR[1], WEB_CONCURRENCY="1",
        ) as launch:
            yield launch
    finally:
        shutil.rmtree(home, ignore_errors=True)


def admin_client(platform) -> httpx.Client:
    """An httpx client of ``platform``'s API with the admin token (close it, or use it in ``with``)."""
    return httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)


@pytest.fixture(scope="session")
def admin_api(platform):
    """An httpx client of the platform API with the admin token."""
    with admin_client(platform) as client:
        yield client


@pytest.fixture(autouse=True)
def empty_org(admin_api):
    """Every test starts with no workspaces (and the default viewport)."""
    for row in admin_api.get("/workspaces").json():
        if not row["parent_id"]:
            admin_api.delete(f"/workspaces/{row['id']}", params={"confirm": "true"})
    admin_api.put("/canvas/viewport", json={"x": 0, "y": 0, "zoom": 1})
    yield


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
    }


@pytest.fixture(scope="session")
def operator_state(browser, platform, tmp_path_factory):
    """Storage state of a logged-in operator, made once through the real login form."""
    context = browser.new_context(base_url=platform.url, viewport=VIEWPORT)
    page = context.new_page()
    log_in(page)
    # only the session cookie: what the canvas kept in localStorage at login (the onboarding step,
    # moved on when cards were there) must not follow every later test
    page.evaluate("localStorage.clear()")
    path = tmp_path_factory.mktemp("browser") / "operator.json"
    context.storage_state(path=str(path))
    context.close()
    return str(path)


def log_in(page) -> None:
    """Log in as the operator through the real login form at / and wait for the canvas."""
    page.goto("/")
    page.fill("#id_username", OPERATOR[0])
    page.fill("#id_password", OPERATOR[1])
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-canvas-ready]")


@pytest.fixture
def browser_context_args(platform, operator_state):
    return {"base_url": platform.url, "viewport": VIEWPORT, "storage_state": operator_state}


class PageErrors(list):
    def check(self):
        assert not self, "the page reported errors:\n" + "\n".join(self)


@pytest.fixture
def page_errors(page):
    errors = PageErrors()
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("console", lambda msg: msg.type == "error" and not CONSOLE_NOISE.search(msg.text) and errors.append(f"console: {msg.text}"))
    yield errors
    errors.check()


@pytest.fixture
def canvas(page, page_errors):
    """The canvas page, loaded and its scripts installed; fails the test on page errors."""
    page.goto("/")
    page.wait_for_selector("body[data-canvas-ready]")
    page.wait_for_selector("#ws-pill.is-live", timeout=10_000)
    return page


def screenshot(page, name: str) -> Path:
    """Save a screenshot as a test artifact (look at them: the canvas is judged by its looks)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def create_workspace(admin_api, name: str, **fields) -> dict:
    """A workspace that needs no runtime (external, no URL) unless ``fields`` say otherwise."""
    body = {"name": name, "external": True, **fields}
    response = admin_api.post("/workspaces", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def register_online(admin_api, workspace_id: str, **card) -> None:
    """Make a workspace online the way an agent does: ``POST /registry/register``."""
    response = admin_api.post("/registry/register", json={
        "id": workspace_id, "url": "http://localhost:9", "agent_card": {"name": "agent", **card},
    })
    assert response.status_code == 200, response.text



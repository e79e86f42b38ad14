"""Every runtime's workspace image builds and passes smoke mode, and every ``<runtime>-default``
template deployed through the API comes online on the Docker backend (issue 14).

The images are built here from ``runtime/Dockerfile`` with each runtime's pip extra and its
Debian/npm packages (the first build of all of them takes a while; later ones reuse the layers).
Smoke mode runs the real adapter's setup and one ``execute`` inside the image with no network:
its lazy imports run and the call stops at the network boundary.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from molecule_site.tests.launch import platform_on_fresh_database, wait_until
from workspaces.provisioners.docker import build_image, image_name, known_runtimes
from workspaces.tests.docker.conftest import TEST_NETWORK, cleanup

pytestmark = pytest.mark.slow

TEMPLATES = Path(settings.BASE_DIR) / "workspace-configs-templates"
FAKE_KEYS = {"OPENAI_API_KEY": "sk-fake-smoke-openai", "ANTHROPIC_API_KEY": "sk-ant-fake-smoke",
             "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat-fake-smoke", "GOOGLE_API_KEY": "fake-smoke-google",
             "GEMINI_API_KEY": "fake-smoke-gemini", "OPENROUTER_API_KEY": "sk-or-fake-smoke"}
# The Claude Code CLI's first start takes long (spec §9 gives it 90 s); a timeout is a pass.
SMOKE_TIMEOUT = {"claude-code": "90"}
ADMIN_TOKEN = "runtime-images-admin-token"


@pytest.fixture(scope="module")
def images(engine):
    return {runtime: build_image(engine, runtime, progress=lambda line: None) for runtime in known_runtimes()}


@pytest.mark.parametrize("runtime", known_runtimes())
def test_the_runtime_image_passes_smoke_mode_with_its_default_template(engine, images, runtime, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(TEMPLATES / f"{runtime}-default", configs)
    for path in (tmp_path, configs, *configs.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's runtime user reads the bind mount
    env = {"MOLECULE_SMOKE_MODE": "1", "MOLECULE_SMOKE_TIMEOUT_SECS": SMOKE_TIMEOUT.get(runtime, "20"),
           "WORKSPACE_ID": "fake-smoke", **FAKE_KEYS}
    container = engine.containers.run(images[runtime], environment=env, network_mode="none", detach=True,
                                      volumes={str(configs): {"bind": "/configs", "mode": "ro"}})
    try:
        result = container.wait(timeout=300)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == 0, logs
    assert "[smoke-mode] PASS" in logs, logs
    assert engine.images.get(image_name(runtime)).labels["molecule.runtime"] == runtime


def test_every_default_template_comes_online_on_the_docker_backend(engine, images):
    home = Path(tempfile.mkdtemp(prefix="molecule-runtimes-docker-"))
    ids: list[str] = []
    try:
        with platform_on_fresh_database(
            home, redis_db=12, ADMIN_TOKEN=ADMIN_TOKEN, MOLECULE_PROVISIONER="docker", WORKSPACE_NETWORK=TEST_NETWORK,
            LIVENESS_SWEEP_SECONDS="2", RATE_LIMIT="1000000", WEB_CONCURRENCY="1",
        ) as platform, httpx.Client(base_url=platform.url, timeout=30,
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as api:
            # keys the templates ask for; the model endpoint is never called while a runtime boots
            for key, value in {**FAKE_KEYS, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}.items():
                assert api.put("/settings/secrets", json={"key": key, "value": value}).status_code == 200
            for runtime in known_runtimes():
                response = api.post("/workspaces", json={"name": f"{runtime}-{secrets.token_hex(2)}",
                                                         "template": f"{runtime}-default"})
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])

            def statuses():
                return {row["runtime"]: row["status"] for row in (api.get(f"/workspaces/{w}").json() for w in ids)}

            wait_until(lambda: set(statuses().values()) == {"online"}, 300, "every runtime to come online")
            assert set(statuses()) == set(known_runtimes())
            for workspace_id in ids:
                api.delete(f"/workspaces/{workspace_id}", params={"confirm": "true"})
    finally:
        for workspace_id in ids:
            cleanup(engine, workspace_id)
        shutil.rmtree(home, ignore_errors=True)

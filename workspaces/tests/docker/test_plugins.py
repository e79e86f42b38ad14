"""Plugins and promoted skills through the container file store: what the platform installs or
promotes lands in the running container's /configs, readable by the runtime's user."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from activity.models import ActivityLog
from plugins_app import services, skills
from workspaces import provisioning
from workspaces.provisioners import get_provisioner
from workspaces.tests.docker.conftest import run

SHIPPED = Path(django_settings.BASE_DIR) / "plugins"


@pytest.fixture
def docker_backend(settings, monkeypatch, provisioner):
    settings.MOLECULE_PROVISIONER = "docker"
    settings.PLUGINS_DIR = SHIPPED
    get_provisioner.cache_clear()
    restarts = []
    monkeypatch.setattr(provisioning.restart_workspace, "delay",
                        lambda workspace_id, **options: restarts.append((workspace_id, options.get("reason"))))
    yield restarts
    get_provisioner.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_a_plugin_installs_into_and_leaves_the_running_containers_configs(docker_backend, running, engine):
    result = services.plugin_install(workspace_id=running.id, source="local://code-review")
    assert result["plugin"] == "code-review"
    assert docker_backend == [(str(running.id), "the plugin code-review was installed")]  # what the briefing says
    skill_md = (SHIPPED / "code-review" / "skills" / "code-review" / "SKILL.md").read_text()
    assert run(engine, running, "cat", "/configs/plugins/code-review/skills/code-review/SKILL.md") == (0, skill_md)
    assert [p["name"] for p in services.plugins_installed(workspace_id=running.id)] == ["code-review"]
    services.plugin_uninstall(workspace_id=running.id, name="code-review")
    assert run(engine, running, "test", "-e", "/configs/plugins/code-review")[0] == 1
    assert services.plugins_installed(workspace_id=running.id) == []


@pytest.mark.django_db(transaction=True)
def test_a_promoted_skill_is_written_into_the_container_and_listed_in_its_config(docker_backend, running, engine):
    candidate = ActivityLog.objects.create(
        workspace=running, activity_type="skill_promotion", method="memory/skill-promotion", summary="Triage CI",
        request_body={"promote_to_skill": True, "procedure": ["rerun", "bisect"]})
    skills.candidate_promote(workspace_id=running.id, candidate_id=str(candidate.id), body={}, actor="admin",
                             operator=True)
    code, text = run(engine, running, "cat", "/configs/skills/triage-ci/SKILL.md")
    assert code == 0 and text.endswith("1. rerun\n2. bisect\n")
    code, config = run(engine, running, "cat", "/configs/config.yaml")
    assert code == 0 and "- triage-ci" in config

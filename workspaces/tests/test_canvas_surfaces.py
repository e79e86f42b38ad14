"""Fragments of the canvas's surfaces (workspaces/canvas/surface_views.py): create form, palette,
empty-state gallery, secrets list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secrets_app.models import GlobalSecret
from secrets_app.services import global_secret_set
from workspaces.models import CanvasLayout, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(settings, tmp_path):
    """Two workspace templates (one needing a key) and one org template with required env."""
    configs, orgs = tmp_path / "configs", tmp_path / "orgs"
    (configs / "writer").mkdir(parents=True)
    (configs / "writer" / "config.yaml").write_text(
        "name: Writer\ndescription: Writes <b>copy</b>.\ntier: 2\nruntime: echo\nskills: [draft, edit, review, publish]\n"
    )
    (configs / "analyst").mkdir()
    (configs / "analyst" / "config.yaml").write_text(
        "name: Analyst\ntier: 3\nruntime: langgraph\nmodel: openai:gpt-4.1-mini\n"
        "runtime_config:\n  required_env: [OPENAI_API_KEY, SERP_API_KEY]\n"
    )
    (orgs / "desk").mkdir(parents=True)
    (orgs / "desk" / "org.yaml").write_text(
        "name: Desk\ndescription: A small desk.\nrequired_env: [OPENAI_API_KEY]\nrecommended_env: [GITHUB_TOKEN]\n"
        "defaults: {runtime: echo, template: writer}\n"
        "workspaces:\n  - name: Lead\n    children:\n      - name: A\n      - name: B\n"
    )
    settings.CONFIGS_DIR = configs
    settings.ORG_TEMPLATES_DIR = orgs
    return Path(tmp_path)


def _ws(name, parent=None, tier=2):
    workspace = Workspace.objects.create(name=name, parent=parent, tier=tier, status="online")
    CanvasLayout.objects.create(workspace=workspace, x=0, y=0)
    return workspace


def test_fragments_need_an_operator_session(client, catalogue):
    for path in ("/canvas/create-form/", "/canvas/palette/", "/canvas/welcome/", "/canvas/settings/secrets/"):
        assert client.get(path, HTTP_X_MOLECULE_FRAGMENT="1").status_code == 401
        assert client.get(path).status_code == 302


def test_create_form_lists_templates_tiers_and_parents_as_a_tree(operator_client, catalogue):
    lead = _ws("Lead", tier=3)
    dev = _ws("Dev", parent=lead, tier=2)
    html = operator_client.get(f"/canvas/create-form/?parent={dev.id}").content.decode()
    assert 'placeholder="e.g. SEO Agent"' in html
    assert re.findall(r'<option value="(\w*)" data-tier', html) == ["analyst", "writer"]
    assert re.findall(r'name="tier" value="(\d)"', html) == ["1", "2", "3", "4"]
    assert re.search(r'value="3" checked', html)  # the self-hosted default tier
    for label in ("Sandboxed", "Standard", "Privileged", "Full Access"):
        assert label in html
    assert "None (root level)" in html
    assert f'<option value="{lead.id}">T3 · Lead</option>' in html
    assert f'<option value="{dev.id}" selected>\u2003T2 · Dev</option>' in html  # indented under its parent
    assert 'list="cw-model-options"' in html and '<option value="openai:gpt-4.1-mini">' in html


def test_palette_shows_templates_with_their_keys_and_one_import_button_per_org(operator_client, catalogue):
    html = operator_client.get("/canvas/palette/").content.decode()
    assert html.count('data-action="deploy-template"') == 2
    assert 'data-template-id="analyst"' in html and 'data-required-env="OPENAI_API_KEY,SERP_API_KEY"' in html
    assert 'data-template-id="writer"' in html and 'data-required-env=""' in html
    assert "Writes &lt;b&gt;copy&lt;/b&gt;." in html  # template text is escaped
    assert "4 skills · echo" in html and "+1</span>" in html  # three chips, then +1
    assert 'data-testid="org-templates-section"' in html and ">Org Templates</h3>" in html
    assert html.count(">Import org</button>") == 1
    assert 'data-org-dir="desk"' in html and 'data-required-env="OPENAI_API_KEY"' in html
    assert 'data-recommended-env="GITHUB_TOKEN"' in html and "3 workspaces" in html


def test_welcome_gallery_uses_its_own_section_id(operator_client, catalogue):
    html = operator_client.get("/canvas/welcome/").content.decode()
    assert 'class="tpl-grid"' in html and html.count('data-action="deploy-template"') == 2
    assert 'data-testid="welcome-org-templates"' in html and 'data-testid="org-templates-section"' not in html


def test_palette_says_so_when_there_are_no_templates(operator_client, settings, tmp_path):
    settings.CONFIGS_DIR = tmp_path / "none"
    settings.ORG_TEMPLATES_DIR = tmp_path / "none"
    html = operator_client.get("/canvas/palette/").content.decode()
    assert "No templates in CONFIGS_DIR." in html and "No org templates" in html and "Import org" not in html


def test_secrets_list_groups_keys_by_service_and_never_renders_a_value(operator_client):
    for key, value in (("ANTHROPIC_API_KEY", "sk-ant-very-secret"), ("GITHUB_TOKEN", "ghp_very_secret"), ("ZED", "zzz-secret")):
        global_secret_set(key=key, value=value)
    html = operator_client.get("/canvas/settings/secrets/").content.decode()
    assert re.findall(r"<h4>(\w+)</h4>", html) == ["GitHub", "Anthropic", "Other"]
    assert re.findall(r'data-key="(\w+)"', html) == ["GITHUB_TOKEN", "ANTHROPIC_API_KEY", "ZED"]
    assert "very-secret" not in html and "very_secret" not in html and "zzz" not in html
    assert 'data-total="3"' in html


def test_secrets_list_empty_state(operator_client):
    assert not GlobalSecret.objects.exists()
    html = operator_client.get("/canvas/settings/secrets/").content.decode()
    assert "No API keys yet" in html and 'data-total="0"' in html


def test_the_page_carries_the_surfaces_shell(operator_client):
    html = operator_client.get("/").content.decode()
    assert 'title="Template Palette"' in html and 'id="settings-toggle"' in html
    assert "+ Create blank workspace" in html and "Deploy your first agent" in html
    assert 'accept=".bundle.json,application/json"' in html and "Drop Bundle to Import" in html
    assert ">Skip guide</button>" in html and "Step 1 of 4" in html
    assert 'aria-labelledby="create-title"' in html and ">Create Workspace</h2>" in html

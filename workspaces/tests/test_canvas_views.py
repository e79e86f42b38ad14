"""The canvas page, its card fragments and the login (workspaces/canvas/views.py)."""

from __future__ import annotations

import json
import re

import pytest

from workspaces.models import CanvasLayout, CanvasViewport, Workspace

pytestmark = pytest.mark.django_db

FRAGMENT = {"HTTP_X_MOLECULE_FRAGMENT": "1"}


def _ws(name, parent=None, x=100.0, y=100.0, **fields):
    workspace = Workspace.objects.create(name=name, parent=parent, status=fields.pop("status", "online"), **fields)
    CanvasLayout.objects.create(workspace=workspace, x=x, y=y)
    return workspace


@pytest.mark.parametrize("path", ["/", "/canvas/cards/"])
def test_anonymous_visitors_are_sent_to_the_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize("path", ["/canvas/cards/", "/canvas/cards/00000000-0000-0000-0000-000000000000/"])
def test_fragments_answer_401_to_the_page_script_when_the_session_is_gone(client, path):
    response = client.get(path, **FRAGMENT)
    assert response.status_code == 401
    assert json.loads(response.content) == {"error": "login required"}


def test_a_logged_in_user_who_is_not_staff_is_not_let_in(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-for-viewer-1")
    client.force_login(user)
    assert client.get("/").status_code == 302
    client.logout()
    response = client.post("/accounts/login/", {"username": "viewer", "password": "pw-for-viewer-1"})
    assert response.status_code == 200
    assert b"not an operator account" in response.content
    assert "_auth_user_id" not in client.session


def test_the_login_form_logs_a_staff_user_in_and_logout_needs_a_post(client, operator):
    response = client.post("/accounts/login/", {"username": "operator", "password": "correct horse battery", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_the_login_refuses_a_redirect_to_another_site(client, operator):
    response = client.post("/accounts/login/", {
        "username": "operator", "password": "correct horse battery", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_the_page_nests_a_childs_markup_inside_its_parents(operator_client, settings):
    settings.ADMIN_TOKEN = "canvas-page-admin-token-value"
    root = _ws("Root")
    child = _ws("Child", root, x=116, y=230)
    grandchild = _ws("Grandchild", child, x=132, y=360)
    html = operator_client.get("/").content.decode()
    root_at = html.index(f'data-workspace-id="{root.id}"')
    child_at = html.index(f'data-workspace-id="{child.id}"')
    grandchild_at = html.index(f'data-workspace-id="{grandchild.id}"')
    assert root_at < child_at < grandchild_at
    assert '<title>Molecule AI</title>' in html
    assert 'aria-label="Molecule AI workspace canvas"' in html
    assert 'aria-label="Root workspace — Online"' in html
    assert '<span class="ws-sub" title="2 sub-workspaces">2 sub</span>' in html
    assert re.search(rf'data-workspace-id="{child.id}"[^>]*data-x="16" data-y="130"', html, re.S)
    assert settings.ADMIN_TOKEN not in html  # the page acts with the session, never a token


def test_the_page_carries_the_saved_viewport_and_no_token(operator_client):
    CanvasViewport.objects.create(x=-120.5, y=40, zoom=0.75)
    html = operator_client.get("/").content.decode()
    assert 'data-viewport-x="-120.5" data-viewport-y="40" data-viewport-zoom="0.75"' in html
    assert re.search(r'<meta name="csrf-token" content="[A-Za-z0-9]{32,}">', html)


def test_workspace_text_is_escaped(operator_client):
    _ws('<img src=x onerror=alert(1)>', role="<script>alert(2)</script>", current_task="<b>bold</b>")
    html = operator_client.get("/").content.decode()
    assert "<img src=x" not in html and "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_card_fragment_renders_one_subtree_at_its_page_position(operator_client):
    root = _ws("Root")
    child = _ws("Child", root, x=116, y=230, status="degraded", last_sample_error="boom", active_tasks=2,
                current_task="Writing the report")
    html = operator_client.get(f"/canvas/cards/{child.id}/", **FRAGMENT).content.decode()
    assert html.startswith('<div class="ws-node status-degraded')
    assert f'data-parent-id="{root.id}"' in html and 'data-x="16" data-y="130"' in html
    assert 'class="ws-status-label">Degraded<' in html
    assert '<span class="ws-busy-text">2 tasks</span>' in html
    assert 'title="Writing the report"' in html
    assert '<div class="ws-error" title="boom">boom</div>' in html
    assert str(root.id) not in html.split("data-parent-id")[0]


@pytest.mark.parametrize("workspace_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "..%2F..%2Fetc"])
def test_an_unknown_card_is_404(operator_client, workspace_id):
    assert operator_client.get(f"/canvas/cards/{workspace_id}/", **FRAGMENT).status_code == 404


def test_the_cards_fragment_is_every_root_with_its_subtree(operator_client):
    root = _ws("Root")
    _ws("Child", root, x=116, y=230)
    other = _ws("Other", x=900, y=100)
    html = operator_client.get("/canvas/cards/", **FRAGMENT).content.decode()
    assert html.count('class="ws-node') == 3
    assert html.index(str(root.id)) < html.index(str(other.id))


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_pages_and_fragments_serve_only_get_and_head(operator_client, method):
    for path in ("/", "/canvas/cards/"):
        assert getattr(operator_client, method)(path).status_code == 405
    assert operator_client.head("/").status_code == 200


def test_no_template_has_a_multi_line_short_comment():
    """Django's ``{# #}`` ends at the line: a multi-line one shows its text on the page."""
    from pathlib import Path

    from django.conf import settings

    offenders = [
        str(path.relative_to(settings.BASE_DIR))
        for path in (Path(settings.BASE_DIR) / "templates").rglob("*.html")
        if any("\n" in match for match in re.findall(r"\{#(.*?)#\}", path.read_text(), re.S))
    ]
    assert offenders == []

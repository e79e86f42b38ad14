"""Token admin: shows prefixes only, mints with a one-time plaintext, revokes live tokens."""

import base64
import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint
from workspaces.models import Workspace

CHANGELIST = "admin:registry_workspaceauthtoken_changelist"
PLAINTEXT_IN_MESSAGE = re.compile(r"New token for .+: (\S+) — copy it now; it will not be shown again\.")


@pytest.fixture
def workspace(db):
    return Workspace.objects.create(name="QA")


def _forms_of_hash(token: WorkspaceAuthToken) -> list[str]:
    digest = bytes(token.token_hash)
    return [digest.hex(), base64.b64encode(digest).decode(), base64.urlsafe_b64encode(digest).decode().rstrip("=")]


@pytest.mark.django_db
def test_changelist_shows_prefix_and_never_hash_or_plaintext(operator_client, workspace):
    token, plaintext = token_mint(workspace=workspace)

    body = operator_client.get(reverse(CHANGELIST)).content.decode()

    assert f"{token.prefix}…" in body
    assert plaintext not in body
    for leaked in _forms_of_hash(token):
        assert leaked not in body


@pytest.mark.django_db
def test_change_page_is_read_only_and_hides_hash(operator_client, workspace):
    token, plaintext = token_mint(workspace=workspace)
    other = Workspace.objects.create(name="Other")
    url = reverse("admin:registry_workspaceauthtoken_change", args=[token.pk])

    response = operator_client.get(url)

    body = response.content.decode()
    assert response.context["has_change_permission"] is False
    assert 'name="_save"' not in body
    assert 'name="workspace"' not in body
    assert "hash" not in body.lower()
    assert f"{token.prefix}…" in body
    for leaked in [plaintext, *_forms_of_hash(token)]:
        assert leaked not in body
    assert operator_client.post(url, {"workspace": other.pk}).status_code == 403
    token.refresh_from_db()
    assert token.workspace_id == workspace.id


@pytest.mark.django_db
def test_add_form_asks_for_the_workspace_only(operator_client):
    response = operator_client.get(reverse("admin:registry_workspaceauthtoken_add"))

    assert list(response.context["adminform"].form.fields) == ["workspace"]


@pytest.mark.django_db
def test_add_mints_token_and_shows_plaintext_once(operator_client, workspace):
    response = operator_client.post(
        reverse("admin:registry_workspaceauthtoken_add"), {"workspace": workspace.pk}, follow=True
    )

    assert response.status_code == 200
    minted = [m for m in (PLAINTEXT_IN_MESSAGE.search(str(m)) for m in response.context["messages"]) if m]
    assert len(minted) == 1
    plaintext = minted[0].group(1)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", plaintext)  # base64url of 32 bytes, no padding
    assert plaintext in response.content.decode()
    token = WorkspaceAuthToken.objects.get(workspace=workspace)
    assert bytes(token.token_hash) == hashlib.sha256(plaintext.encode()).digest()
    assert token.prefix == plaintext[:8]
    assert token.is_live

    again = operator_client.get(reverse(CHANGELIST))
    assert plaintext not in again.content.decode()
    assert not list(get_messages(again.wsgi_request))


@pytest.mark.django_db
def test_revoke_action_revokes_live_tokens_only(operator_client, workspace):
    live_a, _ = token_mint(workspace=workspace)
    live_b, _ = token_mint(workspace=workspace)
    untouched, _ = token_mint(workspace=workspace)
    already_revoked, _ = token_mint(workspace=workspace)
    revoked_at = timezone.now() - timedelta(days=3)
    WorkspaceAuthToken.objects.filter(pk=already_revoked.pk).update(revoked_at=revoked_at)

    response = operator_client.post(
        reverse(CHANGELIST),
        {"action": "revoke_selected", "_selected_action": [live_a.pk, live_b.pk, already_revoked.pk]},
        follow=True,
    )

    assert "Revoked 2 tokens." in [str(m) for m in response.context["messages"]]
    for token in (live_a, live_b, untouched, already_revoked):
        token.refresh_from_db()
    assert live_a.revoked_at is not None and live_b.revoked_at is not None
    assert untouched.revoked_at is None
    assert already_revoked.revoked_at == revoked_at


@pytest.mark.django_db
def test_tokens_cannot_be_deleted_from_admin(operator_client, workspace):
    token, _ = token_mint(workspace=workspace)

    changelist = operator_client.get(reverse(CHANGELIST))
    delete_url = reverse("admin:registry_workspaceauthtoken_delete", args=[token.pk])
    refused = operator_client.post(delete_url, {"post": "yes"})

    assert "delete_selected" not in changelist.content.decode()
    assert refused.status_code == 403
    assert WorkspaceAuthToken.objects.filter(pk=token.pk).exists()

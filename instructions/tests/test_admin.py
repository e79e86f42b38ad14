"""The operator admin writes instructions through the same checks as the API."""

import pytest
from django.urls import reverse

from instructions.models import PlatformInstruction
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def _form(**fields):
    return {"scope": "global", "workspace": "", "title": "Rules", "content": "Be kind.", "priority": "0",
            "enabled": "on", **fields}


def test_an_operator_adds_a_global_and_a_workspace_instruction(operator_client):
    dev = Workspace.objects.create(name="Dev")
    url = reverse("admin:instructions_platforminstruction_add")
    assert operator_client.post(url, _form()).status_code == 302
    assert operator_client.post(url, _form(scope="workspace", workspace=str(dev.id), title="Dev")).status_code == 302
    assert sorted(PlatformInstruction.objects.values_list("scope", "workspace_id")) == [
        ("global", None), ("workspace", dev.id)]


@pytest.mark.parametrize("fields", [
    {"scope": "team"},
    {"scope": "workspace"},  # no workspace
    {"content": "x" * 8193},
    {"title": ""},
])
def test_the_admin_form_refuses_what_the_api_refuses(operator_client, fields):
    response = operator_client.post(reverse("admin:instructions_platforminstruction_add"), _form(**fields))
    assert response.status_code == 200  # the form again, with its errors
    assert response.context["adminform"].form.errors
    assert PlatformInstruction.objects.count() == 0


def test_the_admin_deletes_through_the_service(operator_client):
    instruction = PlatformInstruction.objects.create(title="Old", content="x")
    url = reverse("admin:instructions_platforminstruction_delete", args=[instruction.pk])
    assert operator_client.post(url, {"post": "yes"}).status_code == 302
    assert PlatformInstruction.objects.count() == 0

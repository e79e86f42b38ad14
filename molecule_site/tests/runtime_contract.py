"""What the runtime-contract tests share (``<app>/tests/test_runtime_contract.py``): our runtime's
own ``PlatformClient`` talking to the real platform (pytest-django's ``live_server``) as a
workspace, and a workspace with a token of its own under the production rules.

Importing this module skips the importing test module where ``molecule_runtime`` is not installed.
"""

from __future__ import annotations

import pytest

from registry.tokens import token_mint
from workspaces.models import Workspace

molecule_runtime = pytest.importorskip("molecule_runtime")
from molecule_runtime.platform import PlatformClient  # noqa: E402


@pytest.fixture
def dev(secure):
    """Workspace "Dev" with ``.token``, its plaintext bearer."""
    workspace = Workspace.objects.create(name="Dev")
    _, workspace.token = token_mint(workspace=workspace)
    return workspace


def platform_client(live_server, workspace, config_dir) -> PlatformClient:
    """The runtime's client for ``workspace`` (its token given, its config dir ``config_dir``)."""
    return PlatformClient(platform_url=live_server.url, workspace_id=str(workspace.id), config_dir=config_dir,
                          initial_token=workspace.token)

"""Fixtures for the deepagents tests: a workspace root of its own (WORKSPACE_DIR) for every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def workspace_root(tmp_path, monkeypatch):
    """WORKSPACE_DIR → an empty directory: the deep agent's filesystem root."""
    root = tmp_path / "workspace"
    root.mkdir()
    monkeypatch.setenv("WORKSPACE_DIR", str(root))
    monkeypatch.delenv("LANGGRAPH_RECURSION_LIMIT", raising=False)
    return root.resolve()

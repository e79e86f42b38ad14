"""The attacks of issue 10 against a live platform as ``make run`` starts it, over real HTTP:
with default settings, a misspelt ``MOLECULE_ENV`` and production settings, each fails; in dev
mode the original's open flows still work. (Findings 3 and 12 need a local runtime or the
embedded servers and are tested where those live; docs/security.md has the index.)"""

from __future__ import annotations

import uuid

import httpx
import pytest

from molecule_site.tests.launch import platform_on_fresh_database

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PRODUCTION_ADMIN = "live-attacks-production-admin-token"
PRODUCTION_ENV = {
    "MOLECULE_ENV": "production", "ADMIN_TOKEN": PRODUCTION_ADMIN,
    "SECRETS_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "DJANGO_SECRET_KEY": "live-attacks-django-secret-key-" + "x" * 30,
}
MESSAGE = {"method": "message/send", "params": {"message": {"role": "user", "parts": [
    {"kind": "text", "text": f"/delegate {uuid.uuid4()} hi"}]}}}
HEAD_ROUTES = [
    "/workspaces", "/settings/secrets", "/admin/secrets", "/approvals/pending", "/events", "/templates",
    "/workspaces/{id}/secrets", "/workspaces/{id}/secrets/values", "/workspaces/{id}/memories",
    "/workspaces/{id}/activity", "/workspaces/{id}/files", "/workspaces/{id}/config",
    "/workspaces/{id}/session-search?q=ZETA",
]


def attack(base: str, admin: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as anyone:
        operator = {"Authorization": f"Bearer {admin}"}
        created = anyone.post("/workspaces", json={"name": "Victim", "external": True}, headers=operator)
        assert created.status_code == 201, created.text
        victim = created.json()["id"]
        token = created.json()["connection"]["auth_token"]
        own = {"Authorization": f"Bearer {token}"}

        # 1 — no self-registration, with or without a bearer
        for headers in ({}, {"Authorization": "Bearer anything"}):
            stranger = anyone.post("/registry/register", headers=headers,
                                   json={"id": str(uuid.uuid4()), "url": "http://localhost:9", "agent_card": {}})
            assert (stranger.status_code, stranger.json()) == (404, {"error": "workspace not found"})
        # 2 — no file writes or restarts without the workspace's token
        planted = anyone.put(f"/workspaces/{victim}/files/skills/x/tool.py", json={"content": "import os"})
        assert planted.status_code == 401
        assert anyone.post(f"/workspaces/{victim}/restart").status_code == 401
        # 4 — anonymous A2A reaches no agent
        anonymous = anyone.post(f"/workspaces/{victim}/a2a", json=MESSAGE)
        assert (anonymous.status_code, anonymous.json()) == (401, {"error": "admin auth required"})
        # 5 — HEAD is refused like GET, with GET's length
        for route in HEAD_ROUTES:
            path = route.format(id=victim)
            head, get = anyone.head(path), anyone.get(path)
            assert head.status_code == get.status_code == 401, path
            assert head.headers["content-length"] == get.headers["content-length"], path
        # 6 — a workspace is not claimed by registering for it
        claim = anyone.post("/registry/register", json={"id": victim, "url": "http://localhost:9", "agent_card": {}})
        assert (claim.status_code, claim.json()) == (401, {"error": "missing workspace auth token"})
        # 7 — no open admin routes; a workspace token is not admin; no test tokens
        assert anyone.get("/workspaces").json() == {"error": "admin auth required"}
        assert anyone.get("/settings/secrets", headers=own).json() == {"error": "invalid admin auth token"}
        assert anyone.get(f"/admin/workspaces/{victim}/test-token").status_code == 404
        # 8 — no self-approval
        approval = anyone.post(f"/workspaces/{victim}/approvals", json={"action": "pay"}, headers=own).json()
        decided = anyone.post(f"/workspaces/{victim}/approvals/{approval['approval_id']}/decide",
                              json={"decision": "approved", "decided_by": "alice (CFO)"}, headers=own)
        assert (decided.status_code, decided.json()) == (403, {"error": "deciding an approval requires admin auth"})
        # 9 — cross-site pages and foreign Host names
        forged = anyone.post("/workspaces", content='{"name":"planted","external":true}', headers={
            **operator, "Content-Type": "text/plain", "Origin": "http://evil.example"})
        assert (forged.status_code, forged.json()) == (403, {"error": "cross-site request refused"})
        rebound = anyone.get("/health", headers={"Host": "rebound.evil.example"})
        assert (rebound.status_code, rebound.json()) == (400, {"error": "invalid Host header"})
        # 10 — no re-parenting with a workspace token
        team = anyone.post("/workspaces", json={"name": "Finance", "external": True}, headers=operator).json()["id"]
        moved = anyone.patch(f"/workspaces/{victim}", json={"parent_id": team}, headers=own)
        assert (moved.status_code, moved.json()) == (403, {"error": "changing parent_id requires admin auth"})
        # 11 — memories are stored redacted
        anyone.post(f"/workspaces/{victim}/memory", json={"key": "db", "value": "postgres://u:p4ss@db:5432/x"},
                    headers=own)
        stored = anyone.get(f"/workspaces/{victim}/memory/db", headers=own).json()
        assert "p4ss" not in str(stored) and "[REDACTED:URL_CREDENTIALS]" in str(stored)
        # the legitimate path: the agent joins with its connection block
        joined = anyone.post("/registry/register", headers=own,
                             json={"id": victim, "url": "http://localhost:9", "agent_card": {"name": "Victim"}})
        assert joined.json() == {"status": "registered"}


def test_attacks_fail_against_make_run_with_default_settings(tmp_path):
    with platform_on_fresh_database(tmp_path, redis_db=4) as platform:
        admin = (tmp_path / "admin_token").read_text().strip()
        assert f"ADMIN_TOKEN={admin}" in platform.output  # shown once, beside the operator password
        assert "DEV MODE" not in platform.output
        attack(platform.url, admin)


def test_attacks_fail_with_a_misspelt_molecule_env(tmp_path):
    with platform_on_fresh_database(tmp_path, redis_db=4, MOLECULE_ENV="staging") as platform:
        attack(platform.url, (tmp_path / "admin_token").read_text().strip())


def test_attacks_fail_against_make_run_with_production_settings(tmp_path):
    with platform_on_fresh_database(tmp_path, redis_db=4, **PRODUCTION_ENV) as platform:
        assert not (tmp_path / "admin_token").exists()
        attack(platform.url, PRODUCTION_ADMIN)


def test_dev_mode_warns_and_keeps_the_originals_open_flows(tmp_path):
    with platform_on_fresh_database(tmp_path, redis_db=4, MOLECULE_ENV="dev") as platform:
        assert "DEV MODE (MOLECULE_ENV=dev): UNSAFE" in platform.output
        with httpx.Client(base_url=platform.url, timeout=30) as anyone:
            assert anyone.get("/workspaces").status_code == 200
            stranger = str(uuid.uuid4())
            joined = anyone.post("/registry/register", json={"id": stranger, "url": "http://localhost:9", "agent_card": {}})
            assert joined.json()["status"] == "registered" and len(joined.json()["auth_token"]) == 43
            assert len(anyone.get(f"/admin/workspaces/{stranger}/test-token").json()["auth_token"]) == 43

"""Two agents from outside, over plain HTTP, against the whole running platform.

The platform runs as ``make run`` runs it (web + Celery worker + beat) on its own database and
Redis database. Each agent is a small JSON-RPC server on loopback; it registers, heartbeats,
talks to the other through the A2A proxy, delegates asynchronously, and goes offline within
TTL + sweep interval once its heartbeats stop.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from molecule_site.tests.launch import platform_on_fresh_database, wait_until

ADMIN = "e2e-admin-token"
TTL_SECONDS = 3
SWEEP_SECONDS = 1


class Agent:
    """A minimal external agent: answers ``message/send`` with ``<name> got: <text>``."""

    def __init__(self, name: str):
        self.name = name
        self.received: list[dict] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                agent.received.append(request)
                text = request["params"]["message"]["parts"][0]["text"]
                body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {
                    "kind": "message", "role": "agent", "parts": [{"kind": "text", "text": f"{agent.name} got: {text}"}],
                }}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}"  # registration allows localhost by name
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.workspace_id = ""
        self.token = ""
        self.beating = threading.Event()

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "X-Workspace-ID": self.workspace_id}

    def start_heartbeats(self, platform: str) -> None:
        self.beating.set()

        def loop():
            with httpx.Client(base_url=platform, timeout=5) as client:
                while self.beating.is_set():
                    client.post("/registry/heartbeat", headers=self.headers(), json={
                        "workspace_id": self.workspace_id, "error_rate": 0, "active_tasks": 0, "uptime_seconds": 1,
                    })
                    time.sleep(0.5)

        threading.Thread(target=loop, daemon=True).start()

    def close(self) -> None:
        self.beating.clear()
        self.server.shutdown()


@pytest.fixture
def platform(tmp_path):
    """The platform on a fresh database of the test PostgreSQL and Redis database 1."""
    with platform_on_fresh_database(
        tmp_path, MOLECULE_ENV="development", ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="none",
        LIVENESS_TTL_SECONDS=str(TTL_SECONDS), LIVENESS_SWEEP_SECONDS=str(SWEEP_SECONDS),
    ) as launch:
        yield launch




def test_two_external_agents_register_talk_delegate_and_go_offline(platform):
    lead, worker = Agent("lead"), Agent("worker")
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with httpx.Client(base_url=platform.url, timeout=15) as api:
            # The operator creates the two roles; each gets its connection block and token.
            created = api.post("/workspaces", headers=admin, json={"name": "Lead", "external": True}).json()
            lead.workspace_id, lead.token = created["id"], created["connection"]["auth_token"]
            created = api.post(
                "/workspaces", headers=admin, json={"name": "Worker", "external": True, "parent_id": lead.workspace_id}
            ).json()
            worker.workspace_id, worker.token = created["id"], created["connection"]["auth_token"]

            # The agents register from outside and heartbeat.
            for agent in (lead, worker):
                response = api.post("/registry/register", headers=agent.headers(), json={
                    "id": agent.workspace_id, "url": agent.url, "agent_card": {"name": agent.name},
                })
                assert response.json() == {"status": "registered"}, response.text
                agent.start_heartbeats(platform.url)
            for agent in (lead, worker):
                assert api.get(f"/workspaces/{agent.workspace_id}").json()["status"] == "online"

            # Lead talks to its child through the proxy (JSON-RPC normalised on the way).
            response = api.post(
                f"/workspaces/{worker.workspace_id}/a2a", headers=lead.headers(),
                json={"method": "message/send", "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hello"}]}}},
            )
            assert response.status_code == 200, response.text
            assert response.json()["result"]["parts"][0]["text"] == "worker got: hello"
            forwarded = worker.received[-1]
            assert forwarded["jsonrpc"] == "2.0" and forwarded["params"]["message"]["messageId"]

            # Lead delegates asynchronously; the Celery worker carries it out and records the result.
            response = api.post(
                f"/workspaces/{lead.workspace_id}/delegate", headers=lead.headers(),
                json={"target_id": worker.workspace_id, "task": "write the report"},
            )
            assert response.status_code == 202, response.text
            delegation_id = response.json()["delegation_id"]

            def completed():
                rows = api.get(f"/workspaces/{lead.workspace_id}/delegations", headers=lead.headers()).json()
                return next((r for r in rows if r.get("delegation_id") == delegation_id and r["status"] == "completed"), None)

            row = wait_until(completed, 30, "the delegation to complete")
            assert "worker got: write the report" in row.get("response_preview", "")

            # Heartbeats stop: offline within TTL + sweep interval (plus scheduling slack).
            stopped = time.monotonic()
            for agent in (lead, worker):
                agent.beating.clear()

            def both_offline():
                return all(
                    api.get(f"/workspaces/{a.workspace_id}").json()["status"] == "offline" for a in (lead, worker)
                )

            wait_until(both_offline, TTL_SECONDS + SWEEP_SECONDS + 5, "both workspaces to go offline")
            assert time.monotonic() - stopped >= TTL_SECONDS - 1  # not before the deadline
            events = api.get(f"/events/{worker.workspace_id}", headers=admin).json()
            assert "WORKSPACE_OFFLINE" in [e["event_type"] for e in events]
    finally:
        lead.close()
        worker.close()

"""The shipped demo team works with nobody messaging it (issue 16's "done when").

The platform runs as ``make run`` runs it (web + Celery worker + beat, local-process provisioner)
on a fresh database, with a one-second schedule sweep. The operator imports the engineering team
(echo runtimes, no LLM) and then sends nothing:

- the PM's ``initial_prompt`` (org.yaml's, over the demo-pm template's) arrives once, on its first
  boot, and its ``/delegate Dev Lead …`` reaches the Dev Lead through the proxy;
- the PM's ``morning-plan`` schedule exists with ``source: template``; once its deadline is moved
  to now, the real beat sweep fires it, the run is a ``cron_run`` row, and its delegation reaches
  the Dev Lead again;
- a restart of the PM does not send the initial prompt again (the runtime's marker file).
"""

from __future__ import annotations

import json
import time

import httpx
import psycopg
import pytest
from django.conf import settings

from molecule_site.tests.launch import _with_path, platform_on_fresh_database, wait_until
from molecule_site.tests.test_team_end_to_end import runtime_pid

pytestmark = pytest.mark.slow

ADMIN = "demo-autonomy-e2e-admin"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
INITIAL_TASK = "Plan this week's release and split it between Backend and QA."
MORNING_TASK = "Review what the team finished yesterday and take on today's most important task."


@pytest.fixture
def platform(home):
    with platform_on_fresh_database(
        home, redis_db=3, ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="local", SCHEDULE_SWEEP_SECONDS="1",
    ) as launch:
        yield launch


def received(api: httpx.Client, workspace_id: str, text: str) -> list[dict]:
    """The ``a2a_receive`` rows of messages to ``workspace_id`` whose request carries ``text``."""
    rows = api.get(f"/workspaces/{workspace_id}/activity", params={"type": "a2a_receive", "limit": 500}).json()
    return [row for row in rows if text in json.dumps(row.get("request_body"), ensure_ascii=False)]


def move_deadline_to_now(launch, schedule_id: str) -> None:
    """What the clock reaching 09:00 on a weekday would do: the schedule's stored deadline is now."""
    with psycopg.connect(_with_path(settings.DATABASE_URL, f"/{launch.database}"), autocommit=True) as conn:
        conn.execute("UPDATE workspace_schedules SET next_fire_at = now() WHERE id = %s", (schedule_id,))


def test_the_engineering_team_starts_and_keeps_working_with_nobody_messaging_it(platform, home):
    with httpx.Client(base_url=platform.url, timeout=30, headers=ADMIN_HEADERS) as api:
        response = api.post("/org/import", json={"dir": "engineering-team"})
        assert response.status_code == 201, response.text
        ids = {w["name"]: w["id"] for w in response.json()["workspaces"]}
        pm, lead = ids["PM"], ids["Dev Lead"]

        def status(workspace_id):
            return api.get(f"/workspaces/{workspace_id}").json()["status"]

        wait_until(lambda: all(status(w) == "online" for w in ids.values()), 120, "the team to come online")

        # (a) The initial prompt: sent once by the PM to itself, delegated to the Dev Lead.
        initial = f"/delegate Dev Lead {INITIAL_TASK}"
        wait_until(lambda: received(api, lead, INITIAL_TASK), 120, "the PM's first task to reach the Dev Lead")
        # the PM's own row is written when its turn ends, after the Dev Lead's
        [to_self] = wait_until(lambda: received(api, pm, initial), 30, "the PM's first turn to end")
        assert to_self["source_id"] == pm and to_self["status"] == "ok", to_self
        [to_lead] = received(api, lead, INITIAL_TASK)
        assert (to_lead["source_id"], to_lead["status"]) == (pm, "ok"), to_lead
        assert f"specialist: {INITIAL_TASK}" in json.dumps(to_lead["response_body"], ensure_ascii=False)

        # (b) The schedule from the template/org.yaml, fired by the real beat sweep.
        [schedule] = api.get(f"/workspaces/{pm}/schedules").json()
        assert (schedule["name"], schedule["source"], schedule["cron_expr"], schedule["enabled"], schedule["run_count"]) \
            == ("morning-plan", "template", "0 9 * * 1-5", True, 0), schedule
        assert schedule["prompt"] == f"/delegate Dev Lead {MORNING_TASK}"
        move_deadline_to_now(platform, schedule["id"])
        wait_until(lambda: api.get(f"/workspaces/{pm}/schedules/{schedule['id']}/history").json(), 60,
                   "the sweep to fire the schedule")
        wait_until(lambda: received(api, lead, MORNING_TASK), 60, "the scheduled task to reach the Dev Lead")
        wait_until(lambda: api.get(f"/workspaces/{pm}/schedules/{schedule['id']}/history").json()[0]["status"] != "queued",
                   30, "the run to finish")
        [run] = api.get(f"/workspaces/{pm}/schedules/{schedule['id']}/history").json()
        assert run["status"] == "ok", run
        fired = api.get(f"/workspaces/{pm}/schedules/{schedule['id']}").json()
        assert (fired["run_count"], fired["last_status"]) == (1, "ok"), fired
        assert fired["next_run_at"].endswith("09:00:00Z"), fired  # back to the next weekday morning
        [cron_prompt] = received(api, pm, f"/delegate Dev Lead {MORNING_TASK}")
        assert cron_prompt["source_id"] is None  # system:cron, not a workspace
        [scheduled] = received(api, lead, MORNING_TASK)
        assert scheduled["source_id"] == pm

        # (c) A restart does not send the initial prompt again.
        old_pid = runtime_pid(home, pm)
        assert api.post(f"/workspaces/{pm}/restart").status_code == 200
        wait_until(lambda: runtime_pid(home, pm) not in (None, old_pid) and status(pm) == "online", 90,
                   "the PM to restart")
        markers = [home / "workspaces" / pm / sub / ".initial_prompt_done" for sub in ("configs", "private")]
        assert any(marker.is_file() for marker in markers), markers
        time.sleep(10)  # the readiness poll and the send happen within seconds of the boot
        assert len(received(api, pm, initial)) == 1
        assert len(received(api, lead, INITIAL_TASK)) == 1
        assert "PM: still here" in json.dumps(api.post(f"/workspaces/{pm}/a2a", json={
            "method": "message/send",
            "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "still here"}]}},
        }).json())

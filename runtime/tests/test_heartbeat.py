"""HeartbeatState payload/error rate and HeartbeatLoop timing and resilience."""

from __future__ import annotations

import asyncio
import json
import socket

from molecule_runtime.heartbeat import HeartbeatLoop, HeartbeatState
from molecule_runtime.platform import PlatformClient


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_payload_has_every_field_of_the_wire_contract():
    clock = FakeClock()
    state = HeartbeatState(clock=clock)
    state.capabilities = {"heartbeat": False, "status_mgmt": False}
    state.idle_timeout_seconds = 600
    clock.now += 42.7
    state.task_started("Write the   quarterly\nreport")

    assert state.payload("ws-1") == {
        "workspace_id": "ws-1",
        "error_rate": 0.0,
        "sample_error": "",
        "active_tasks": 1,
        "uptime_seconds": 42,
        "current_task": "Write the quarterly report",
        "runtime_state": "",
        "runtime_metadata": {"capabilities": {"heartbeat": False, "status_mgmt": False},
                             "idle_timeout_seconds": 600},
    }


def test_current_task_clears_only_when_the_last_task_ends():
    state = HeartbeatState()
    state.task_started("first")
    state.task_started("second")
    state.task_finished(ok=True)
    assert (state.active_tasks, state.current_task) == (1, "second")
    state.task_finished(ok=True)
    state.task_finished(ok=True)  # never below zero
    assert (state.active_tasks, state.current_task) == (0, "")
    assert len(state.payload("w")["current_task"]) == 0
    state.task_started("x" * 500)
    assert len(state.payload("w")["current_task"]) == 200


def test_error_rate_is_failed_over_total_in_the_sliding_window():
    clock = FakeClock()
    state = HeartbeatState(clock=clock, window_seconds=300)
    for ok in (True, True, True):
        state.task_started("t")
        state.task_finished(ok=ok)
    state.task_started("t")
    state.task_finished(ok=False, error="RuntimeError: model overloaded")

    payload = state.payload("w")
    assert payload["error_rate"] == 0.25
    assert payload["sample_error"] == "RuntimeError: model overloaded"

    clock.now += 200
    state.task_started("t")
    state.task_finished(ok=False, error="second failure")
    assert state.payload("w")["error_rate"] == 0.4

    clock.now += 150  # the first four outcomes age out of the 300 s window
    payload = state.payload("w")
    assert payload["error_rate"] == 1.0
    assert payload["sample_error"] == "second failure"

    clock.now += 400  # everything aged out: healthy again
    assert state.payload("w")["error_rate"] == 0.0
    assert state.payload("w")["sample_error"] == ""


def test_wedged_runtime_reports_state_and_reason():
    state = HeartbeatState()
    state.mark_wedged("SDK session lost")
    payload = state.payload("w")
    assert payload["runtime_state"] == "wedged"
    assert payload["sample_error"] == "SDK session lost"
    state.clear_wedge()
    assert state.payload("w")["runtime_state"] == ""


def _authed(fake_platform, config_dir, workspace_id):
    (config_dir / ".auth_token").write_text("hb-token")
    fake_platform.tokens[workspace_id] = {"hb-token"}


def test_loop_beats_immediately_then_every_interval(fake_platform, make_client, config_dir, workspace_id):
    _authed(fake_platform, config_dir, workspace_id)

    async def scenario():
        client = make_client()
        slow = HeartbeatLoop(client, HeartbeatState(), workspace_id, interval=30.0)
        await slow.start()
        await asyncio.sleep(0.2)
        first_only = len(fake_platform.heartbeats)
        await slow.stop()

        fast = HeartbeatLoop(client, HeartbeatState(), workspace_id, interval=0.05)
        await fast.start()
        await asyncio.sleep(0.4)
        await fast.stop()
        await asyncio.sleep(0.15)  # a beat already on the wire when stop() ran may still land
        after_stop = len(fake_platform.heartbeats)
        await asyncio.sleep(0.3)
        await client.aclose()
        return first_only, after_stop

    first_only, after_stop = asyncio.run(scenario())
    assert first_only == 1  # immediate first beat, nothing more before the 30 s interval
    assert after_stop >= 3  # immediate beat + several 0.05 s intervals within 0.4 s
    assert len(fake_platform.heartbeats) == after_stop  # stop() really stops
    beat = fake_platform.requests_to("/registry/heartbeat")[0]
    assert beat.headers["authorization"] == "Bearer hb-token"
    assert set(beat.json) == {"workspace_id", "error_rate", "sample_error", "active_tasks", "uptime_seconds",
                              "current_task", "runtime_state", "runtime_metadata"}


def test_loop_survives_a_failing_platform_and_recovers(fake_platform, make_client, config_dir, workspace_id):
    _authed(fake_platform, config_dir, workspace_id)
    fake_platform.heartbeat_status = 500

    async def scenario():
        client = make_client()
        loop = HeartbeatLoop(client, HeartbeatState(), workspace_id, interval=0.05)
        await loop.start()
        await asyncio.sleep(0.3)
        failures, alive = loop.consecutive_failures, loop.running
        fake_platform.heartbeat_status = 200
        await asyncio.sleep(0.2)
        result = failures, alive, loop.running, loop.consecutive_failures, loop.beats_sent
        await loop.stop()
        await client.aclose()
        return result

    failures, alive_while_failing, alive_after, failures_after, sent = asyncio.run(scenario())
    assert failures >= 2 and alive_while_failing
    assert alive_after and failures_after == 0 and sent >= 1
    assert fake_platform.heartbeats


def test_loop_survives_an_unreachable_platform(tmp_path, workspace_id):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def scenario():
        client = PlatformClient(platform_url=f"http://127.0.0.1:{port}", workspace_id=workspace_id,
                                config_dir=tmp_path, timeout=0.5)
        loop = HeartbeatLoop(client, HeartbeatState(), workspace_id, interval=0.02,
                             delegation_results_file=tmp_path / "results.jsonl")
        await loop.start()
        await asyncio.sleep(0.3)
        result = loop.running, loop.consecutive_failures
        await loop.stop()
        await client.aclose()
        return result

    running, failures = asyncio.run(scenario())
    assert running and failures >= 3


def test_beat_now_pushes_task_start_and_end(fake_platform, make_client, config_dir, workspace_id):
    _authed(fake_platform, config_dir, workspace_id)

    async def scenario():
        client = make_client()
        state = HeartbeatState()
        loop = HeartbeatLoop(client, state, workspace_id, interval=30.0)
        state.task_started("summarise the logs")
        ok_start = await loop.beat_now()
        state.task_finished(ok=False, error="boom")
        ok_end = await loop.beat_now()
        await client.aclose()
        return ok_start, ok_end

    assert asyncio.run(scenario()) == (True, True)
    start, end = fake_platform.heartbeats
    assert (start["active_tasks"], start["current_task"]) == (1, "summarise the logs")
    assert (end["active_tasks"], end["current_task"], end["error_rate"], end["sample_error"]) == (0, "", 1.0, "boom")


def test_delegation_results_are_written_once_and_foreign_sources_ignored(fake_platform, make_client, config_dir,
                                                                          workspace_id, tmp_path):
    _authed(fake_platform, config_dir, workspace_id)
    rows = fake_platform.delegations[workspace_id]
    rows.append({"id": "r1", "type": "delegation", "source_id": workspace_id, "target_id": "t1",
                 "summary": "Delegation completed (done)", "status": "completed", "delegation_id": "d1",
                 "response_preview": "done"})
    rows.append({"id": "r2", "type": "delegation", "source_id": "intruder", "target_id": "t1",
                 "summary": "x", "status": "completed", "delegation_id": "d2"})
    rows.append({"id": "r3", "type": "delegation", "source_id": workspace_id, "target_id": "t2",
                 "summary": "Delegating", "status": "pending", "delegation_id": "d3"})
    results_file = tmp_path / "delegation_results.jsonl"

    async def scenario():
        client = make_client()
        loop = HeartbeatLoop(client, HeartbeatState(), workspace_id, delegation_results_file=results_file,
                             baseline_existing=False)
        first = await loop.check_delegations()
        second = await loop.check_delegations()
        await loop.stop()
        await client.aclose()
        return first, second

    first, second = asyncio.run(scenario())
    assert [r["delegation_id"] for r in first] == ["d1"] and second == []
    lines = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["status"] == "completed" and lines[0]["response_preview"] == "done"
    [req, _] = fake_platform.requests_to(f"/workspaces/{workspace_id}/delegations")
    assert req.headers["authorization"] == "Bearer hb-token"


def test_finished_delegations_notify_the_user_and_wake_the_agent_once_per_cooldown(
        fake_platform, make_client, config_dir, workspace_id, tmp_path):
    _authed(fake_platform, config_dir, workspace_id)
    parent_id = "33333333-3333-4333-8333-333333333333"
    fake_platform.workspaces[workspace_id] = {"id": workspace_id, "name": "Dev", "parent_id": parent_id}
    fake_platform.workspaces[parent_id] = {"id": parent_id, "name": "PM", "parent_id": None}
    # our own A2A endpoint, reached through the platform proxy
    fake_platform.registered[workspace_id] = {"url": fake_platform.peer_url("self"), "agent_card": {"name": "Dev"}}
    rows = fake_platform.delegations[workspace_id]

    def finish(n: int, status: str = "completed") -> None:
        rows.insert(0, {"id": f"r{n}", "type": "delegation", "source_id": workspace_id, "target_id": "t",
                        "summary": f"Delegation {status} (job {n})", "status": status,
                        "delegation_id": f"deleg{n}-0000-0000", "response_preview": f"SECRET-PREVIEW-{n}",
                        **({"error": "peer crashed"} if status == "failed" else {})})

    async def scenario():
        client = make_client()
        loop = HeartbeatLoop(client, HeartbeatState(), workspace_id, self_message_cooldown=60.0,
                             delegation_results_file=tmp_path / "results.jsonl")
        finish(0)  # finished before this runtime started: baseline, not replayed
        assert await loop.check_delegations() == []
        finish(1)
        await loop.check_delegations()
        await asyncio.gather(*loop._background)
        finish(2, "failed")
        await loop.check_delegations()  # inside the cooldown: notify, but no second wake-up yet
        await asyncio.gather(*loop._background)
        wakes_in_cooldown = len(fake_platform.requests_to("/_peers/self"))
        loop._last_self_message -= 61
        await loop.check_delegations()  # cooldown over: the pending result wakes the agent
        await asyncio.gather(*loop._background)
        await loop.stop()
        await client.aclose()
        return wakes_in_cooldown

    assert asyncio.run(scenario()) == 1
    notes = [r.json for r in fake_platform.requests_to(f"/workspaces/{workspace_id}/notify")]
    assert notes == [
        {"message": "Delegation completed: Delegation completed (job 1)\nResult: SECRET-PREVIEW-1",
         "type": "delegation_result"},
        {"message": "Delegation failed: Delegation failed (job 2)\nResult: SECRET-PREVIEW-2",
         "type": "delegation_result"},
    ]
    first, second = fake_platform.requests_to(f"/workspaces/{workspace_id}/a2a")
    assert first.headers["x-workspace-id"] == workspace_id
    assert first.headers["authorization"] == "Bearer hb-token"
    text1 = first.json["params"]["message"]["parts"][0]["text"]
    assert "- [completed] Delegation deleg1-0: Delegation completed (job 1)" in text1
    assert "your parent (PM)" in text1 and "SECRET-PREVIEW" not in text1
    text2 = second.json["params"]["message"]["parts"][0]["text"]
    assert "- [failed] Delegation deleg2-0: Delegation failed (job 2) Error: peer crashed" in text2
    assert "job 1" not in text2
    assert not any("job 0" in str(r.json) for r in fake_platform.requests if r.method == "POST")
    assert [json.loads(x)["delegation_id"] for x in (tmp_path / "results.jsonl").read_text().splitlines()] == [
        "deleg1-0000-0000", "deleg2-0000-0000"]
    assert len(fake_platform.requests_to(f"/workspaces/{parent_id}")) == 1  # parent name looked up once

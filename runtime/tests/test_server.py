"""The A2A server over real HTTP on loopback: both JSON-RPC method generations, both card URLs,
and the inbound secret that guards JSON-RPC."""

import asyncio
import threading
import time
import uuid

import httpx
import pytest

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter as EchoAdapter
from molecule_runtime.card import build_agent_card
from molecule_runtime.config import WorkspaceConfig, load_config
from molecule_runtime.server import CardHolder, build_app, flatten_task_result

from .a2a_helpers import msg03, msg10, rpc, rpc_stream, send03
from .conftest import ThreadServer, free_port, write_config


def test_card_is_served_at_both_well_known_paths(echo_runtime):
    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
        response = httpx.get(echo_runtime.url + path)
        assert response.status_code == 200, path
        card = response.json()
        assert card["name"] == "Echo Agent" and card["description"] == "test agent"
        assert card["capabilities"]["streaming"] is True
        assert card["url"] == echo_runtime.url  # 0.3 field, kept for 0.3 clients
        assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0", "0.3"}


def test_served_card_follows_the_holder(echo_runtime):
    echo_runtime.cards.card = build_agent_card(WorkspaceConfig(name="Renamed"), echo_runtime.url)
    assert httpx.get(echo_runtime.url + "/.well-known/agent.json").json()["name"] == "Renamed"


def test_v03_message_send_returns_a_message(echo_runtime):
    result = send03(echo_runtime.url, "hi")
    assert result["kind"] == "message"
    assert result["parts"][0]["text"] == "echo: hi"


def test_v10_send_message_returns_the_completed_task(echo_runtime):
    out = rpc(echo_runtime.url, "SendMessage", {"message": msg10("hi")})
    task = out["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["status"]["message"]["parts"][0]["text"] == "echo: hi"
    assert task["artifacts"][0]["parts"][0]["text"] == "echo: hi"


def test_v10_with_explicit_version_header(echo_runtime):
    out = rpc(echo_runtime.url, "SendMessage", {"message": msg10("hdr")}, headers={"A2A-Version": "1.0"})
    assert out["result"]["task"]["status"]["message"]["parts"][0]["text"] == "echo: hdr"


def test_v03_message_stream(echo_runtime):
    events = [e["result"] for e in rpc_stream(echo_runtime.url, "message/stream", {"message": msg03("s")})]
    assert [e["kind"] for e in events] == ["task", "status-update", "artifact-update", "status-update", "message"]
    assert events[-2]["final"] is True and events[-2]["status"]["message"]["parts"][0]["text"] == "echo: s"
    assert events[-1]["parts"][0]["text"] == "echo: s"


def test_v10_send_streaming_message(echo_runtime):
    events = [e["result"] for e in rpc_stream(echo_runtime.url, "SendStreamingMessage", {"message": msg10("s")})]
    assert [next(iter(e)) for e in events] == ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]
    final = events[-1]["statusUpdate"]["status"]
    assert final["state"] == "TASK_STATE_COMPLETED" and final["message"]["parts"][0]["text"] == "echo: s"


def test_tasks_get_in_both_generations(echo_runtime):
    task_id = send03(echo_runtime.url, "remember me")["taskId"]
    task = rpc(echo_runtime.url, "tasks/get", {"id": task_id})["result"]
    assert task["kind"] == "task" and task["id"] == task_id and task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"][0]["text"] == "echo: remember me"
    task = rpc(echo_runtime.url, "GetTask", {"id": task_id})["result"]
    assert task["id"] == task_id and task["status"]["state"] == "TASK_STATE_COMPLETED"


def test_tasks_get_unknown_is_a_jsonrpc_error(echo_runtime):
    out = rpc(echo_runtime.url, "tasks/get", {"id": "nope"})
    assert out["error"]["code"] == -32001


def _cancel_while_sleeping(echo_runtime, method, params_for):
    holder = {}

    def sender():
        holder["out"] = rpc(echo_runtime.url, "message/send", {"message": msg03("/sleep 5")}, timeout=10)

    t = threading.Thread(target=sender)
    started = time.monotonic()
    t.start()
    deadline = time.monotonic() + 5
    task_id = None
    while task_id is None and time.monotonic() < deadline:
        time.sleep(0.05)
        # the only running task is ours: find it through the executor's cancel registry
        ids = [k for k in echo_runtime.adapter._executor._cancel_events if k]
        task_id = ids[0] if ids else None
    assert task_id, "sleep task did not start"
    out = rpc(echo_runtime.url, method, params_for(task_id))
    t.join(timeout=10)
    assert time.monotonic() - started < 4  # the /sleep was stopped, not waited out
    return out, holder["out"]


def test_tasks_cancel_v03_stops_a_sleep(echo_runtime):
    out, send_out = _cancel_while_sleeping(echo_runtime, "tasks/cancel", lambda tid: {"id": tid})
    assert out["result"]["status"]["state"] == "canceled"
    assert send_out["result"]["status"]["state"] == "canceled"


def test_cancel_task_v10(echo_runtime):
    out, _ = _cancel_while_sleeping(echo_runtime, "CancelTask", lambda tid: {"id": tid})
    assert out["result"]["status"]["state"] == "TASK_STATE_CANCELED"


def test_unknown_method_is_method_not_found(echo_runtime):
    assert rpc(echo_runtime.url, "message/nope", {})["error"]["code"] == -32601


def test_flatten_only_touches_finished_task_results():
    message = {"kind": "message", "role": "agent", "parts": [{"kind": "text", "text": "x"}]}
    task = {"kind": "task", "id": "t1", "contextId": "c1", "status": {"state": "completed", "message": message}}
    flat = flatten_task_result({"jsonrpc": "2.0", "id": 1, "result": task})["result"]
    assert flat == {**message, "taskId": "t1", "contextId": "c1"}
    canceled = {"jsonrpc": "2.0", "id": 1, "result": {"kind": "task", "status": {"state": "canceled"}}}
    assert flatten_task_result(canceled) == canceled
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -1}}
    assert flatten_task_result(error) == error


def test_transcript_without_a_configured_token_is_refused(echo_runtime):
    assert httpx.get(echo_runtime.url + "/transcript", headers={"Authorization": "Bearer x"}).status_code == 401


def test_invalid_json_is_a_jsonrpc_error_not_a_crash(echo_runtime):
    response = httpx.post(echo_runtime.url + "/", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["error"]["code"] in (-32700, -32600)


def test_final_stream_message_only_for_final_status_with_message():
    from molecule_runtime.server import final_stream_message

    message = {"kind": "message", "role": "agent", "parts": [{"kind": "text", "text": "x"}]}
    final = {"id": 7, "result": {"kind": "status-update", "final": True, "taskId": "t", "contextId": "c",
                                 "status": {"state": "completed", "message": message}}}
    assert final_stream_message(final) == {"jsonrpc": "2.0", "id": 7,
                                           "result": {**message, "taskId": "t", "contextId": "c"}}
    working = {"id": 7, "result": {"kind": "status-update", "final": False, "status": {"state": "working"}}}
    assert final_stream_message(working) is None
    assert final_stream_message({"id": 7, "error": {}}) is None


# ------------------------------------------------------------------------------ inbound secret
SECRET = "inbound-secret-0123456789abcdef"
REFUSAL = {"error": "platform credential required (X-Molecule-Inbound-Secret missing or invalid)"}


@pytest.fixture
def guarded_runtime(tmp_path):
    """An echo agent served with `inbound_secret=SECRET` (what MOLECULE_INBOUND_SECRET sets)."""
    config_dir = write_config(tmp_path / "configs")
    adapter = EchoAdapter()
    cfg = AdapterConfig(config_path=str(config_dir))
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    port = free_port()
    cards = CardHolder(build_agent_card(load_config(config_dir, env={}), f"http://127.0.0.1:{port}", []))
    with ThreadServer(build_app(executor, cards, adapter=adapter, inbound_secret=SECRET), port) as srv:
        srv.adapter = adapter
        yield srv


def _post(url: str, method: str, params: dict, headers: dict | None = None) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": uuid.uuid4().hex[:8], "method": method, "params": params}
    return httpx.post(url + "/", json=body, headers=headers or {}, timeout=10)


def test_json_rpc_without_the_inbound_secret_is_refused_and_does_no_work(guarded_runtime):
    for method, params in (("message/send", {"message": msg03("hi")}),
                           ("message/stream", {"message": msg03("hi")}),
                           ("SendMessage", {"message": msg10("hi")}),
                           ("tasks/get", {"id": "t-1"})):
        response = _post(guarded_runtime.url, method, params)
        assert response.status_code == 401, method
        assert response.json() == REFUSAL, method
    transcript = asyncio.run(guarded_runtime.adapter.transcript_lines())
    assert transcript["lines"] == []  # the executor never saw a message


def test_every_path_but_the_public_ones_wants_the_inbound_secret(guarded_runtime):
    """Guarded by default: a route the SDK or we add later is not an open door."""
    for path in ("/v1/message:send", "/rpc", "//", "/.well-known/other.json"):
        response = httpx.post(guarded_runtime.url + path, json={}, timeout=10)
        assert (response.status_code, response.json()) == (401, REFUSAL), path


def test_json_rpc_with_a_wrong_inbound_secret_is_refused(guarded_runtime):
    for wrong in ("nope", SECRET[:-1], SECRET + "x", SECRET.upper(), "", "caf\xe9".encode("latin-1")):
        response = _post(guarded_runtime.url, "message/send", {"message": msg03("hi")},
                         headers={"X-Molecule-Inbound-Secret": wrong})
        assert response.status_code == 401 and response.json() == REFUSAL, wrong
    # a bearer token is not the platform's credential either
    response = _post(guarded_runtime.url, "message/send", {"message": msg03("hi")},
                     headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 401 and response.json() == REFUSAL


def test_json_rpc_with_the_inbound_secret_gets_the_normal_answer(guarded_runtime):
    out = rpc(guarded_runtime.url, "message/send", {"message": msg03("hi")},
              headers={"X-Molecule-Inbound-Secret": SECRET})
    assert out["result"]["kind"] == "message" and out["result"]["parts"][0]["text"] == "echo: hi"
    task = rpc(guarded_runtime.url, "SendMessage", {"message": msg10("hi")},
               headers={"x-molecule-inbound-secret": SECRET})["result"]["task"]
    assert task["status"]["message"]["parts"][0]["text"] == "echo: hi"


def test_card_and_health_stay_public_with_an_inbound_secret(guarded_runtime):
    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
        response = httpx.get(guarded_runtime.url + path)
        assert response.status_code == 200 and response.json()["name"] == "Echo Agent", path
    assert httpx.get(guarded_runtime.url + "/health").json() == {"status": "ok"}


def test_without_an_inbound_secret_json_rpc_is_open_as_before(echo_runtime):
    assert send03(echo_runtime.url, "hi")["parts"][0]["text"] == "echo: hi"
    out = rpc(echo_runtime.url, "message/send", {"message": msg03("hi")},
              headers={"X-Molecule-Inbound-Secret": "anything"})
    assert out["result"]["parts"][0]["text"] == "echo: hi"


def test_the_platform_proxy_reaches_a_guarded_agent_only_with_its_secret(guarded_runtime, fake_platform):
    peer = "44444444-4444-4444-8444-444444444444"
    fake_platform.registered[peer] = {"url": guarded_runtime.url, "agent_card": {"name": "Guarded"}}
    body = {"method": "message/send", "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}]}}}

    refused = httpx.post(f"{fake_platform.base_url}/workspaces/{peer}/a2a", json=body, timeout=10)
    assert refused.status_code == 401 and refused.json() == REFUSAL

    fake_platform.inbound_secrets[peer] = SECRET
    answered = httpx.post(f"{fake_platform.base_url}/workspaces/{peer}/a2a", json=body, timeout=10)
    assert answered.status_code == 200 and answered.json()["result"]["parts"][0]["text"] == "echo: hi"


def test_the_transcript_opens_to_the_inbound_secret_and_to_nothing_less(guarded_runtime):
    """The platform's GET /workspaces/:id/transcript reads it for the canvas and admins, who hold no
    workspace token: the inbound secret is the platform's proof, as on JSON-RPC."""
    ok = _post(guarded_runtime.url, "message/send", {"message": msg03("remember me")}, {"X-Molecule-Inbound-Secret": SECRET})
    assert ok.status_code == 200
    url = guarded_runtime.url + "/transcript"
    lines = httpx.get(url, headers={"X-Molecule-Inbound-Secret": SECRET}, timeout=10).json()["lines"]
    assert [line["text"] for line in lines if line["role"] == "user"] == ["remember me"]
    for headers in ({}, {"X-Molecule-Inbound-Secret": SECRET[:-1] + "x"}, {"X-Molecule-Inbound-Secret": ""},
                    {"Authorization": f"Bearer {SECRET}"}):
        refused = httpx.get(url, headers=headers, timeout=10)
        assert (refused.status_code, refused.json()) == (401, {"error": "unauthorized"}), headers

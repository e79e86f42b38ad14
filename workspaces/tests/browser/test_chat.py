"""The side panel's Chat tab (canvas spec §3.1, §6 chat-separation): My Chat vs Agent Comms, the
activity ``source`` filter it reads, a real round trip with an ``echo`` runtime, and replies that
arrive over the WebSocket as well as in the HTTP answer shown once."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from workspaces.tests.browser.conftest import (
    create_workspace,
    register_online,
    wait_until,
)

ECHO_TIMEOUT = 90  # a local echo runtime starts as a subprocess (python + the A2A SDK)


def open_chat(page, workspace_id: str):
    page.locator(f'[data-workspace-id="{workspace_id}"]').click(position={"x": 24, "y": 16})
    expect(page.locator("#side-panel")).to_be_visible()
    page.click("#tab-chat")
    expect(page.locator("#panel-chat .chat")).to_be_visible()


def echo_workspace(admin_api, name="Echo Agent") -> dict:
    created = admin_api.post("/workspaces", json={"name": name, "runtime": "echo", "canvas": {"x": 140, "y": 140}})
    assert created.status_code == 201, created.text
    workspace_id = created.json()["id"]
    wait_until(lambda: admin_api.get(f"/workspaces/{workspace_id}").json()["status"] == "online",
               timeout=ECHO_TIMEOUT, what="the echo runtime to come online")
    return {"id": workspace_id, "name": name}


def test_my_chat_has_a_composer_agent_comms_has_none_and_switching_keeps_both(canvas, admin_api):
    ws = create_workspace(admin_api, "Planner")
    register_online(admin_api, ws["id"])
    canvas.reload()
    open_chat(canvas, ws["id"])
    mine = canvas.get_by_role("button", name="My Chat")
    comms = canvas.get_by_role("button", name="Agent Comms")
    expect(mine).to_have_class(re.compile(r"\bis-active\b"))
    expect(mine).to_have_attribute("aria-pressed", "true")
    expect(canvas.locator('[data-chat-pane="mine"] textarea')).to_be_visible()
    expect(canvas.get_by_text("No messages yet. Send a message to start chatting with this agent.")).to_be_visible()
    canvas.fill('[data-chat-pane="mine"] textarea', "a draft I am still writing")

    comms.click()
    pane = canvas.locator('[data-chat-pane="comms"]')
    expect(pane).to_be_visible()
    expect(pane.get_by_text("No agent-to-agent communications yet.")).to_be_visible()
    assert pane.locator("textarea").count() == 0
    expect(canvas.locator('[data-chat-pane="mine"]')).to_be_hidden()
    expect(comms).to_have_class(re.compile(r"\bis-active\b"))

    mine.click()
    expect(canvas.locator('[data-chat-pane="mine"] textarea')).to_have_value("a draft I am still writing")
    comms.click()
    mine.click()
    expect(canvas.get_by_text("No messages yet.", exact=False)).to_be_visible()


def test_the_activity_source_filter_separates_canvas_and_agent_rows(admin_api):
    ws = create_workspace(admin_api, "Filtered")
    register_online(admin_api, ws["id"])
    # An agent's push to the operator is logged as a canvas row (no source), as a canvas A2A is.
    assert admin_api.post(f"/workspaces/{ws['id']}/notify", json={"message": "report ready"}).status_code == 200
    # Rows the workspace reports itself carry its id as the source.
    for kind in ("agent_log", "a2a_send"):
        assert admin_api.post(f"/workspaces/{ws['id']}/activity", json={"activity_type": kind, "summary": kind}).status_code == 200

    def activity(**params):
        return admin_api.get(f"/workspaces/{ws['id']}/activity", params=params)

    canvas_rows = activity(source="canvas").json()
    assert [row["method"] for row in canvas_rows] == ["notify"] and canvas_rows[0]["source_id"] is None
    agent_rows = activity(source="agent").json()
    assert {row["activity_type"] for row in agent_rows} == {"agent_log", "a2a_send"}
    assert all(row["source_id"] == ws["id"] for row in agent_rows)
    bogus = activity(source="bogus")
    assert bogus.status_code == 400 and bogus.json() == {"error": "source must be 'canvas' or 'agent'"}
    assert [r["activity_type"] for r in activity(type="agent_log", source="agent").json()] == ["agent_log"]
    assert activity(type="agent_log", source="canvas").json() == []
    assert [(r["activity_type"], r["source_id"]) for r in activity(type="a2a_receive", source="canvas").json()] == [
        ("a2a_receive", None)]


def test_canvas_initiated_activity_shows_the_prompt_and_the_reply_as_bubbles(canvas, admin_api):
    ws = echo_workspace(admin_api)
    answer = admin_api.post(f"/workspaces/{ws['id']}/a2a", json={"method": "message/send", "params": {
        "message": {"role": "user", "parts": [{"kind": "text", "text": "Summarise the quarterly numbers for the board"}]}}})
    assert answer.status_code == 200, answer.text
    canvas.reload()
    open_chat(canvas, ws["id"])
    log = canvas.locator(".chat-log")
    expect(log.locator(".bubble.is-user", has_text="Summarise the quarterly numbers")).to_have_count(1)
    expect(log.locator(".bubble.is-agent", has_text="echo: Summarise the quarterly numbers for the board")).to_have_count(1)
    expect(canvas.get_by_text("No messages yet.", exact=False)).to_be_hidden()


def test_a_chat_round_trip_with_an_echo_runtime_shows_the_reply_once_and_keeps_it_in_history(canvas, admin_api):
    ws = echo_workspace(admin_api, "Echo Round Trip")
    canvas.reload()
    open_chat(canvas, ws["id"])
    textarea = canvas.locator('[data-chat-pane="mine"] textarea')
    expect(textarea).to_be_enabled()
    textarea.fill("Hello from the **canvas**")
    textarea.press("Enter")
    log = canvas.locator(".chat-log")
    expect(log.locator(".bubble.is-user")).to_have_count(1)
    expect(log.locator(".bubble.is-user strong")).to_have_text("canvas")  # markdown rendered
    reply = log.locator(".bubble.is-agent", has_text="echo: Hello from the")
    expect(reply).to_have_count(1, timeout=30_000)
    expect(log.locator(".is-thinking")).to_have_count(0)
    expect(textarea).to_have_value("")
    canvas.wait_for_timeout(1500)  # an A2A_RESPONSE over the socket must not add a second reply
    expect(reply).to_have_count(1)

    textarea.fill("line one")
    textarea.press("Shift+Enter")
    textarea.type("line two")
    expect(textarea).to_have_value("line one\nline two")
    textarea.press("Enter")
    # the echo runtime counts the history the canvas sends along (metadata.history)
    expect(log.locator(".bubble.is-agent", has_text=re.compile(r"\[h=2\] echo: line one"))).to_have_count(1, timeout=30_000)

    # An attachment: uploaded first, then sent as a file part the runtime receives.
    canvas.locator(".chat-files").set_input_files(files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"remember the milk"}])
    expect(canvas.locator(".chat-pending")).to_contain_text("notes.txt")
    textarea.fill("see attached")
    textarea.press("Enter")
    expect(canvas.locator(".chat-pending")).to_be_hidden()
    received = log.locator(".bubble.is-agent", has_text=re.compile(r"echo: see attached\s+Attached files:\s+notes\.txt \(text/plain\) at \S+notes\.txt"))
    expect(received).to_have_count(1, timeout=30_000)
    chip = log.locator(".bubble.is-user a.file-chip", has_text="notes.txt")
    expect(chip).to_have_attribute("href", re.compile(r"/chat/download\?path=workspace%3A%2Fworkspace%2F.molecule%2Fchat-uploads%2F"))

    canvas.reload()
    open_chat(canvas, ws["id"])
    log = canvas.locator(".chat-log")
    expect(log.locator(".bubble.is-user")).to_have_count(3)
    expect(log.locator(".bubble.is-agent")).to_have_count(3)
    expect(log.locator(".bubble.is-user").first).to_contain_text("Hello from the canvas")
    expect(log.locator(".bubble.is-agent").first).to_contain_text("echo: Hello from the")
    download = canvas.request.get(log.locator("a.file-chip", has_text="notes.txt").get_attribute("href"))
    assert download.status == 200 and download.body() == b"remember the milk"


def test_a_reply_over_the_socket_and_in_the_http_answer_is_shown_once(canvas, admin_api):
    ws = create_workspace(admin_api, "Socket Agent")
    register_online(admin_api, ws["id"])
    held = []
    canvas.route(f"**/workspaces/{ws['id']}/a2a", lambda route: held.append(route))
    canvas.reload()
    open_chat(canvas, ws["id"])
    textarea = canvas.locator('[data-chat-pane="mine"] textarea')
    textarea.fill("ping")
    canvas.click(".chat-send")
    log = canvas.locator(".chat-log")
    expect(log.locator(".is-thinking")).to_be_visible()
    expect(log.locator(".thinking-time")).to_contain_text(re.compile(r"Thinking… \d+s"))
    wait_until(lambda: held, what="the A2A request")
    sent = json.loads(held[0].request.post_data)
    assert sent["method"] == "message/send" and sent["params"]["message"]["messageId"]
    assert sent["params"]["message"]["parts"] == [{"kind": "text", "text": "ping"}]
    assert sent["params"]["metadata"] == {"history": []}

    result = {"jsonrpc": "2.0", "id": sent["id"], "result": {
        "kind": "message", "role": "agent", "messageId": "reply-1", "parts": [{"kind": "text", "text": "pong"}]}}
    emit = "([event, id, payload]) => window.moleculeCanvas.emit('ws-event', {event, workspace_id: id, timestamp: new Date().toISOString(), payload})"
    canvas.evaluate(emit, ["A2A_RESPONSE", ws["id"], {"response_body": result, "method": "message/send", "duration_ms": 5}])
    expect(log.locator(".bubble.is-agent", has_text="pong")).to_have_count(1)
    expect(log.locator(".is-thinking")).to_have_count(0)
    held[0].fulfill(status=200, content_type="application/json", body=json.dumps(result))
    canvas.wait_for_timeout(300)
    expect(log.locator(".bubble.is-agent", has_text="pong")).to_have_count(1)

    # An agent push arrives once, even if the socket delivers it twice; other workspaces' are not ours.
    push = {"message": "I finished the report", "workspace_id": ws["id"], "name": "Socket Agent"}
    canvas.evaluate(emit, ["AGENT_MESSAGE", ws["id"], push])
    canvas.evaluate(emit, ["AGENT_MESSAGE", ws["id"], push])
    canvas.evaluate(emit, ["AGENT_MESSAGE", "00000000-0000-0000-0000-000000000000", {**push, "message": "not for this chat"}])
    expect(log.locator(".bubble.is-agent", has_text="I finished the report")).to_have_count(1)
    expect(log.get_by_text("not for this chat")).to_have_count(0)


def test_a_failed_send_says_the_agent_may_be_unreachable(canvas, admin_api):
    ws = create_workspace(admin_api, "Unreachable")
    register_online(admin_api, ws["id"])  # its URL answers nothing
    canvas.reload()
    open_chat(canvas, ws["id"])
    canvas.fill('[data-chat-pane="mine"] textarea', "anyone home?")
    canvas.keyboard.press("Enter")
    error = canvas.locator(".chat-error")
    expect(error).to_contain_text("Failed to send message — agent may be unreachable", timeout=20_000)
    expect(canvas.locator(".chat-log .is-thinking")).to_have_count(0)
    expect(canvas.locator(".chat-log .bubble.is-user", has_text="anyone home?")).to_have_count(1)

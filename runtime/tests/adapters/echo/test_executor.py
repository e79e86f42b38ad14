"""EchoExecutor commands (spec/runtime.md §11), driven over real HTTP through the A2A server."""

import json
import threading
import time

from molecule_runtime.adapters.echo import Adapter, EchoExecutor
from molecule_runtime.adapters.echo.executor import NO_TEXT

from ...a2a_helpers import msg03, rpc, rpc_stream, send03


def test_adapter_identity_and_defaults():
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name(), adapter.description()) == \
        ("echo", "Echo", "Deterministic test adapter")
    assert not any(adapter.capabilities().to_dict().values())
    assert adapter.idle_timeout_override() is None
    assert adapter.get_config_schema() == {"reply_prefix": {"type": "string", "default": "echo: "}}


def test_plain_reply_is_prefix_plus_text(echo_runtime):
    result = send03(echo_runtime.url, "hello world")
    assert result["kind"] == "message" and result["role"] == "agent"
    assert result["parts"][0] == {"kind": "text", "text": "echo: hello world"}
    assert result["taskId"] and result["contextId"]


def test_reply_counts_history(echo_runtime):
    history = [{"role": "user", "parts": [{"kind": "text", "text": "a"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "b"}]}]
    result = send03(echo_runtime.url, "next", metadata={"history": history})
    assert result["parts"][0]["text"] == "[h=2] echo: next"


def test_empty_text_gives_the_exact_error(echo_runtime):
    out = rpc(echo_runtime.url, "message/send",
              {"message": {"role": "user", "messageId": "m-empty", "parts": [{"kind": "text", "text": "   "}]}})
    assert out["result"]["parts"][0]["text"] == NO_TEXT == "Error: message contained no text content."


def test_tool_command_calls_the_tool_and_records_tool_trace(echo_runtime):
    result = send03(echo_runtime.url, '/tool add {"a": 2, "b": 3}')
    assert json.loads(result["parts"][0]["text"]) == {"sum": 5}
    assert result["metadata"]["tool_trace"] == [
        {"tool": "add", "input": '{"a": 2, "b": 3}', "output_preview": '{"sum": 5}'}]


def test_remember_shorthand_calls_commit_memory(echo_runtime):
    result = send03(echo_runtime.url, "/remember the sky is blue")
    assert json.loads(result["parts"][0]["text"])["content"] == "the sky is blue"
    assert result["metadata"]["tool_trace"][0]["tool"] == "commit_memory"


def test_unknown_tool_and_bad_json_are_agent_errors(echo_runtime):
    text = send03(echo_runtime.url, "/tool nope {}")["parts"][0]["text"]
    assert text.startswith("Agent error: unknown tool 'nope'")
    text = send03(echo_runtime.url, "/tool add {not json")["parts"][0]["text"]
    assert text.startswith("Agent error: /tool add: arguments are not valid JSON")


def test_fail_replies_agent_error_and_feeds_error_rate(echo_runtime):
    result = send03(echo_runtime.url, "/fail")
    assert result["parts"][0]["text"] == "Agent error: echo /fail requested"
    state = echo_runtime.state
    assert state.error_rate == 1.0 and state.active_tasks == 0
    send03(echo_runtime.url, "ok")
    assert state.error_rate == 0.5


def test_wedge_marks_the_heartbeat_state(echo_runtime):
    result = send03(echo_runtime.url, "/wedge token expired")
    assert result["parts"][0]["text"] == "wedged: token expired"
    assert echo_runtime.state.is_wedged()
    assert echo_runtime.state.payload("ws")["runtime_state"] == "wedged"


def test_sleep_replies_after_the_delay_and_tracks_current_task(echo_runtime):
    seen = {}

    def probe():
        time.sleep(0.15)
        seen["active"] = echo_runtime.state.active_tasks
        seen["current"] = echo_runtime.state.current_task

    t = threading.Thread(target=probe)
    t.start()
    started = time.monotonic()
    result = send03(echo_runtime.url, "/sleep 0.4")
    t.join()
    assert result["parts"][0]["text"] == "slept 0.4s"
    assert time.monotonic() - started >= 0.4
    assert seen == {"active": 1, "current": "/sleep 0.4"}
    assert echo_runtime.state.active_tasks == 0 and echo_runtime.state.current_task == ""


def test_stream_emits_working_then_chunks_then_final_message(echo_runtime):
    text = "x" * 70
    events = [e["result"] for e in rpc_stream(echo_runtime.url, "message/stream", {"message": msg03(text)})]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "task"
    assert events[1]["kind"] == "status-update" and events[1]["status"]["state"] == "working"
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) == 3  # 76 chars in 32-char pieces
    assert [c["append"] for c in chunks] == [False, True, True]
    assert all(c["lastChunk"] is False for c in chunks)
    assert len({c["artifact"]["artifactId"] for c in chunks}) == 1
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == "echo: " + text
    final_status, final_message = events[-2], events[-1]
    assert final_status["kind"] == "status-update" and final_status["final"] is True
    assert final_status["status"]["state"] == "completed"
    assert final_status["status"]["message"]["parts"][0]["text"] == "echo: " + text
    # the 0.3 contract ends the stream with the final Message itself
    assert final_message["kind"] == "message" and final_message["role"] == "agent"
    assert final_message["parts"][0]["text"] == "echo: " + text
    assert final_message["taskId"] == final_status["taskId"]


def test_transcript_is_kept_in_memory(echo_runtime):
    send03(echo_runtime.url, "one")
    import asyncio

    out = asyncio.run(echo_runtime.adapter.transcript_lines(0, 10))
    assert out["supported"] is True
    assert [(line["role"], line["text"]) for line in out["lines"]] == [("user", "one"), ("agent", "echo: one")]


def test_custom_prefix_from_runtime_config(tmp_path):
    import asyncio

    from molecule_runtime.adapters.base import AdapterConfig

    adapter = Adapter()
    cfg = AdapterConfig(config_path=str(tmp_path), runtime_config={"reply_prefix": ">> "})
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert isinstance(executor, EchoExecutor) and executor.prefix == ">> "
    assert adapter._executor is executor

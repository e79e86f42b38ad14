"""crewAI's model calls as `chat <model>` spans (telemetry.py, executor.TracedOpenAICompletion):
a real crew behind the real A2A app, its model the fake OpenAI server over real HTTP, the spans
exported to the loopback OTLP collector (tests/otel_collector.py)."""

import asyncio
import json
import time

from molecule_runtime import telemetry
from molecule_runtime.adapters.crewai.executor import traced_llm_class

from ...a2a_helpers import msg03, rpc
from ...fake_openai import answer_with_tool_result
from ...otel_collector import PARENT_ID, STATUS_ERROR, TRACE_ID, TRACEPARENT, by_name, flush
from .conftest import A2A_TIMEOUT, cancel_during_a_slow_model_answer


def send(url: str, text: str, headers: dict | None = None) -> dict:
    out = rpc(url, "message/send", {"message": msg03(text)}, headers=headers or {}, timeout=A2A_TIMEOUT)
    assert "result" in out, out
    return out["result"]


def test_each_model_call_is_a_chat_span_under_the_task_and_its_usage_rides_on_the_reply(
        tracing, collector, crewai_runtime, workspace_id):
    assert tracing(runtime="crewai")
    rt = crewai_runtime()
    rt.llm.script = [
        {"tool_calls": [{"id": "call_m", "name": "commit_memory", "arguments": {"content": "the launch is Friday"}}],
         "usage": (120, 9)},
        {"content": "Saved.", "usage": (150, 11)},
    ]
    result = send(rt.url, "remember that the launch is Friday", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"] == "Saved."
    # the summed usage of both model calls, as the fake server reported it
    assert result["metadata"]["usage"] == {"input_tokens": 270, "output_tokens": 20, "model": "gpt-4o-mini"}
    flush()

    spans = collector.spans("/otlp/v1/traces")
    [task] = by_name(spans, "a2a.task")
    assert (task["trace_id"], task["parent_id"]) == (TRACE_ID, PARENT_ID)
    assert task["resource"]["workspace.runtime"] == "crewai"
    first, second = by_name(spans, "chat gpt-4o-mini")  # exported in the order they ended
    for chat in (first, second):
        assert (chat["trace_id"], chat["parent_id"], chat["kind"]) == (TRACE_ID, task["span_id"], "CLIENT")
        attrs = chat["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.system"] == "openai"
        assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
        assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
        assert "gen_ai.prompt" not in attrs and "gen_ai.completion" not in attrs  # no OTEL_CAPTURE_CONTENT
        assert chat["status"] != STATUS_ERROR
    assert (first["attributes"]["gen_ai.usage.input_tokens"], first["attributes"]["gen_ai.usage.output_tokens"]) == (120, 9)
    assert first["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert (second["attributes"]["gen_ai.usage.input_tokens"], second["attributes"]["gen_ai.usage.output_tokens"]) == (150, 11)
    assert second["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert "a2a.input_preview" not in task["attributes"]

    # the tool call, run on the runtime's loop from crewAI's thread, is in the task's trace too
    [tool] = by_name(spans, "execute_tool commit_memory")
    assert (tool["trace_id"], tool["parent_id"], tool["kind"]) == (TRACE_ID, task["span_id"], "INTERNAL")
    assert len(rt.platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")) == 1


def test_prompt_and_completion_are_on_the_span_only_with_otel_capture_content(tracing, collector, crewai_runtime):
    assert tracing({"OTEL_CAPTURE_CONTENT": "true"}, runtime="crewai")
    rt = crewai_runtime(prompt="# Analyst\nYou analyse.")
    rt.llm.script = [{"tool_calls": [{"id": "call_p", "name": "list_peers", "arguments": {}}]},
                     answer_with_tool_result("Peers: {result}")]
    result = send(rt.url, "who are my peers, secretly?")
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    assert task["attributes"]["a2a.input_preview"] == "who are my peers, secretly?"
    first, second = by_name(spans, "chat gpt-4o-mini")
    assert {first["parent_id"], second["parent_id"]} == {task["span_id"]}
    # the prompt is the messages crewAI sent: its system framing and our task text
    prompt = json.loads(first["attributes"]["gen_ai.prompt"])
    assert [m["role"] for m in prompt] == ["system", "user"]
    assert prompt[0]["content"].startswith("You are Analyst. # Analyst\nYou analyse.")
    assert "who are my peers, secretly?" in prompt[1]["content"]
    [tool_call] = json.loads(first["attributes"]["gen_ai.completion"])
    assert tool_call["id"] == "call_p" and tool_call["function"]["name"] == "list_peers"
    assert json.loads(second["attributes"]["gen_ai.prompt"])[-1]["role"] == "tool"
    assert second["attributes"]["gen_ai.completion"] == result["parts"][0]["text"]
    assert second["attributes"]["gen_ai.completion"].startswith("Peers: ")


def test_a_failed_model_call_is_an_error_span_and_the_reply_has_no_usage(tracing, collector, crewai_runtime):
    assert tracing(runtime="crewai")
    rt = crewai_runtime("{max_retries: 0}")
    rt.llm.script = [{"status": 500, "error": "upstream exploded"}]
    result = send(rt.url, "hello", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"].startswith("Agent error: ")
    assert "usage" not in (result.get("metadata") or {})
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [chat] = by_name(spans, "chat gpt-4o-mini")
    assert task["status"] == STATUS_ERROR
    assert (chat["parent_id"], chat["status"]) == (task["span_id"], STATUS_ERROR)
    assert "gen_ai.usage.input_tokens" not in chat["attributes"]


def test_a_cancelled_runs_blocked_model_call_is_no_span(tracing, collector, crewai_runtime):
    assert tracing(runtime="crewai")
    rt = crewai_runtime()
    rt.llm.script = [{"tool_calls": [{"id": "c1", "name": "list_peers", "arguments": {}}], "delay": 2.0},
                     {"content": "too late"}]
    _, cancelled, _, _ = cancel_during_a_slow_model_answer(rt)
    assert cancelled["result"]["status"]["state"] == "canceled"
    time.sleep(3.0)  # the late answer arrives; crewAI's next model call is blocked by the cancel hook
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [chat] = by_name(spans, "chat gpt-4o-mini")  # the call that reached the model, and only that one
    assert chat["parent_id"] == task["span_id"]
    assert chat["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert len(rt.llm.requests) == 1


def test_acall_is_a_chat_span_too(tracing, collector, llm_env):
    """crewAI's async path (`LLM.acall`: async kickoffs), here outside a task: a span of its own."""
    assert tracing(runtime="crewai")
    from molecule_runtime.adapters.crewai.executor import CrewAIExecutor, load_crewai
    from molecule_runtime.adapters.shared_runtime import resolve_llm_settings

    load_crewai()
    settings = resolve_llm_settings("openai:gpt-4.1-mini", {"max_retries": 0},
                                    env={"OPENAI_API_KEY": "sk-a", "OPENAI_BASE_URL": llm_env.base_url})
    llm = CrewAIExecutor(settings=settings, system_prompt="").build_llm()
    assert isinstance(llm, traced_llm_class())
    llm_env.script = [{"content": "async hello", "usage": (7, 3)}]
    assert asyncio.run(llm.acall([{"role": "user", "content": "hi"}])) == "async hello"
    assert telemetry.current_task() is None
    flush()
    [chat] = by_name(collector.spans(), "chat gpt-4.1-mini")
    assert chat["parent_id"] == "" and chat["kind"] == "CLIENT"
    attrs = chat["attributes"]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (7, 3)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]

"""Traces (telemetry.py, issue 15): spans reach a real OTLP/HTTP endpoint and join the caller's trace.

A loopback stand-in collector (otel_collector.py; the ``collector`` and ``tracing`` fixtures in
conftest.py) decodes each ``POST`` as the OTLP protobuf ``ExportTraceServiceRequest`` the
platform's receiver (or any collector) gets. The runtime under
test is a real adapter behind the real A2A app (``llm_runtime``), its model the fake OpenAI server
(which reports usage 10 in / 5 out per call) and its platform the fake platform.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from molecule_runtime import telemetry  # noqa: E402

from .a2a_helpers import rpc, msg03  # noqa: E402
from .adapters.conftest import llm_env, llm_runtime  # noqa: E402,F401  (a real adapter behind the real app)
from .adapters.claude_code.conftest import (  # noqa: E402,F401
    _fake_anthropic_server, claude_env, claude_runtime, fake_anthropic)
from .adapters.cli.conftest import agent_script, cli_env  # noqa: E402,F401
from .fake_openai import answer_with_tool_result  # noqa: E402
from .otel_collector import PARENT_ID, TRACE_ID, TRACEPARENT, WORKSPACE_TOKEN, by_name, flush  # noqa: E402


def _send(url: str, text: str, headers: dict | None = None) -> dict:
    out = rpc(url, "message/send", {"message": msg03(text)}, headers=headers or {}, timeout=20)
    assert "result" in out, out
    return out["result"]


# ----------------------------------------------------------------------------- the runtime's trace


def test_a_task_continues_the_inbound_trace_with_chat_tool_and_delegation_spans(
        tracing, collector, llm_runtime, fake_platform, workspace_id):
    pytest.importorskip("openai")
    assert tracing()
    rt = llm_runtime("openai")
    fake_platform.add_peer(workspace_id, "peer-1", name="Peer One")
    rt.llm.script = [
        {"tool_calls": [{"id": "call_d", "name": "delegate_task", "arguments": {"workspace_id": "peer-1",
                                                                                 "task": "say hi"}}]},
        answer_with_tool_result("Peer said: {result}"),
    ]
    result = _send(rt.url, "ask the peer to say hi", {"traceparent": TRACEPARENT})
    assert "echo: say hi" in result["parts"][0]["text"]
    # the reply carries the usage of both model calls (what the platform meters)
    assert result["metadata"]["usage"] == {"input_tokens": 20, "output_tokens": 10, "model": "gpt-4o-mini"}
    flush()

    spans = collector.spans("/otlp/v1/traces")
    [task] = by_name(spans, "a2a.task")
    assert (task["trace_id"], task["parent_id"], task["kind"]) == (TRACE_ID, PARENT_ID, "SERVER")
    assert task["attributes"]["workspace.id"] == workspace_id
    assert task["attributes"]["a2a.task_id"] == result["taskId"]
    assert task["attributes"]["a2a.context_id"] == result["contextId"]
    assert "a2a.input_preview" not in task["attributes"]  # content only with OTEL_CAPTURE_CONTENT
    assert task["resource"]["service.name"] == "molecule-workspace"
    assert task["resource"]["workspace.id"] == workspace_id
    assert task["resource"]["workspace.runtime"] == "openai"
    assert task["scope"] == "molecule.workspace"

    chats = by_name(spans, "chat gpt-4o-mini")
    assert len(chats) == 2
    for chat in chats:
        assert (chat["trace_id"], chat["parent_id"], chat["kind"]) == (TRACE_ID, task["span_id"], "CLIENT")
        attrs = chat["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.system"] == "openai"
        assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
        assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (10, 5)
        assert "gen_ai.prompt" not in attrs and "gen_ai.completion" not in attrs
        assert attrs["molecule.usage.on_reply"] is True  # the platform meters the reply, not the span
    assert sorted(c["attributes"]["gen_ai.response.finish_reasons"][0] for c in chats) == ["stop", "tool_calls"]

    [tool] = by_name(spans, "execute_tool delegate_task")
    assert (tool["trace_id"], tool["parent_id"], tool["kind"]) == (TRACE_ID, task["span_id"], "INTERNAL")
    assert tool["attributes"] == {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "delegate_task"}

    # the delegation through the platform proxy carries the same trace, its parent the tool span
    [proxied] = fake_platform.requests_to("/workspaces/peer-1/a2a", "POST")
    version, trace_id, parent_id, _flags = proxied.headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", TRACE_ID, tool["span_id"])

    # the platform's receiver got the spans with the workspace's bearer token
    assert {p for p, _h, _s in collector.exports} == {"/otlp/v1/traces"}
    for _path, headers, _spans in collector.exports:
        assert headers["authorization"] == f"Bearer {WORKSPACE_TOKEN}"
        assert headers["content-type"] == "application/x-protobuf"


def test_content_is_captured_only_with_otel_capture_content(tracing, collector, llm_runtime):
    pytest.importorskip("openai")
    assert tracing({"OTEL_CAPTURE_CONTENT": "true"})
    rt = llm_runtime("openai", "name: A\nruntime: openai\nmodel: openai:gpt-4o-mini\nruntime_config:\n  stream: false\n")
    rt.llm.default = {"content": "the secret answer"}
    text = "please summarise: " + "x" * 300
    result = _send(rt.url, text)
    assert result["metadata"]["usage"] == {"input_tokens": 10, "output_tokens": 5, "model": "gpt-4o-mini"}
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    assert task["attributes"]["a2a.input_preview"] == text[:200]
    assert task["parent_id"] == ""  # no inbound traceparent: a new trace
    [chat] = by_name(spans, "chat gpt-4o-mini")
    assert chat["parent_id"] == task["span_id"]
    assert text in chat["attributes"]["gen_ai.prompt"]
    assert json.loads(chat["attributes"]["gen_ai.prompt"])[-1] == {"role": "user", "content": text}
    assert chat["attributes"]["gen_ai.completion"] == "the secret answer"
    assert chat["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]


def test_a_failed_task_has_an_error_status(tracing, collector, llm_runtime):
    pytest.importorskip("openai")
    assert tracing()
    rt = llm_runtime("openai")
    rt.llm.default = {"status": 400, "error": "bad request"}
    result = _send(rt.url, "hello", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"].startswith("Agent error:")
    flush()
    [task] = by_name(collector.spans(), "a2a.task")
    assert task["status"] == 2  # STATUS_CODE_ERROR
    [chat] = by_name(collector.spans(), "chat gpt-4o-mini")
    assert chat["status"] == 2 and chat["parent_id"] == task["span_id"]


@pytest.mark.parametrize("runtime", ["langgraph", "deepagents"])
def test_langgraph_model_calls_are_chat_spans_with_their_usage(tracing, collector, llm_runtime, runtime):
    pytest.importorskip("langgraph")
    if runtime == "deepagents":
        pytest.importorskip("deepagents")
    assert tracing()
    rt = llm_runtime(runtime, f"name: G\nruntime: {runtime}\nmodel: openai:gpt-4o-mini\n")
    rt.llm.script = [
        {"tool_calls": [{"name": "list_peers", "arguments": {}}]},
        {"content": "no peers"},
    ]
    result = _send(rt.url, "who are my peers?", {"traceparent": TRACEPARENT})
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    assert task["trace_id"] == TRACE_ID
    chats = by_name(spans, "chat gpt-4o-mini")
    assert len(chats) == 2
    for chat in chats:
        assert chat["parent_id"] == task["span_id"] and chat["kind"] == "CLIENT"
        assert chat["attributes"]["gen_ai.system"] == "openai"
        assert (chat["attributes"]["gen_ai.usage.input_tokens"], chat["attributes"]["gen_ai.usage.output_tokens"]) == (10, 5)
    [tool] = by_name(spans, "execute_tool list_peers")
    assert tool["trace_id"] == TRACE_ID
    assert result["metadata"]["usage"] == {"input_tokens": 20, "output_tokens": 10, "model": "gpt-4o-mini"}


def test_autogen_model_calls_are_chat_spans_with_their_usage(tracing, collector, llm_runtime):
    pytest.importorskip("autogen_agentchat")
    assert tracing()
    rt = llm_runtime("autogen", "name: A\nruntime: autogen\nmodel: openai:gpt-4o-mini\n")
    rt.llm.default = {"content": "hello from autogen"}
    result = _send(rt.url, "hi", {"traceparent": TRACEPARENT})
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [chat] = by_name(spans, "chat gpt-4o-mini")
    assert (chat["trace_id"], chat["parent_id"]) == (TRACE_ID, task["span_id"])
    assert (chat["attributes"]["gen_ai.usage.input_tokens"], chat["attributes"]["gen_ai.usage.output_tokens"]) == (10, 5)
    assert result["metadata"]["usage"] == {"input_tokens": 10, "output_tokens": 5, "model": "gpt-4o-mini"}


def test_a_claude_code_turn_is_one_chat_span_with_the_cli_usage(tracing, collector, claude_runtime):
    pytest.importorskip("claude_agent_sdk")
    assert tracing()
    rt = claude_runtime()
    rt.claude.script = [{"content": "Hello from Claude"}]
    result = _send(rt.url, "hi there", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"] == "Hello from Claude"
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [chat] = [s for s in spans if s["name"].startswith("chat ")]
    assert chat["name"] == "chat sonnet"
    assert (chat["trace_id"], chat["parent_id"]) == (TRACE_ID, task["span_id"])
    assert chat["attributes"]["gen_ai.system"] == "anthropic"
    assert chat["attributes"]["gen_ai.usage.output_tokens"] > 0
    usage = result["metadata"]["usage"]
    assert usage["model"] == "sonnet" and usage["output_tokens"] == chat["attributes"]["gen_ai.usage.output_tokens"]


def test_a_codex_run_is_one_chat_span_with_its_turn_usage(tracing, collector, llm_runtime, monkeypatch, cli_env):
    from .adapters.cli.conftest import NPM_BIN

    if not (NPM_BIN / "codex").exists():
        pytest.skip(f"the codex CLI is not installed at {NPM_BIN} (make npm-tools)")
    monkeypatch.setenv("PATH", f"{NPM_BIN}:{__import__('os').environ.get('PATH', '')}")
    assert tracing()
    rt = llm_runtime("cli", "name: C\nruntime: cli\nmodel: openai:gpt-4.1-mini\nruntime_config:\n  command: codex\n"
                            "  timeout: 120\n  max_retries: 0\n")
    rt.llm.script = [{"content": "Hello from codex."}]
    result = _send(rt.url, "hi codex", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"] == "Hello from codex."
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [chat] = by_name(spans, "chat gpt-4.1-mini")
    assert (chat["trace_id"], chat["parent_id"]) == (TRACE_ID, task["span_id"])
    assert (chat["attributes"]["gen_ai.usage.input_tokens"], chat["attributes"]["gen_ai.usage.output_tokens"]) == (10, 5)
    assert result["metadata"]["usage"] == {"input_tokens": 10, "output_tokens": 5, "model": "gpt-4.1-mini"}


def _custom_cli_yaml(python, script, extra: str = "") -> str:
    return (f"name: C\nruntime: cli\nmodel: openai:gpt-4.1-mini\nruntime_config:\n"
            f"  command: {json.dumps(str(python))}\n  args: [{json.dumps(str(script))}, \"{{message}}\"]\n{extra}")


def test_a_custom_cli_run_is_one_invoke_agent_span_without_invented_usage(tracing, collector, llm_runtime,
                                                                         agent_script):
    python, script, records = agent_script
    assert tracing({"OTEL_CAPTURE_CONTENT": "true"})
    rt = llm_runtime("cli", _custom_cli_yaml(python, script))
    result = _send(rt.url, "hello custom", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"] == "custom reply to: hello custom"
    assert len(records()) == 1
    # the command's model use is unknown: nothing is metered, and the span carries no content either
    assert "usage" not in result.get("metadata", {})
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [agent] = by_name(spans, f"invoke_agent {Path(python).name}")
    assert (agent["trace_id"], agent["parent_id"], agent["kind"]) == (TRACE_ID, task["span_id"], "CLIENT")
    assert agent["attributes"] == {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": Path(python).name,
                                   "gen_ai.request.model": "gpt-4.1-mini"}
    assert agent["status"] == 0
    assert [s["name"] for s in spans if s["name"].startswith("chat ")] == []
    # the command was handed the trace context: its own spans would be children of invoke_agent
    assert records()[0]["env"]["TRACEPARENT"] == f"00-{TRACE_ID}-{agent['span_id']}-01"


@pytest.mark.parametrize(("text", "extra", "error"), [
    ("please fail", "", "exited with status 3"),
    ("please hang", "  timeout: 2\n", "timed out after 2s"),
])
def test_a_failed_custom_cli_run_has_an_error_status(tracing, collector, llm_runtime, agent_script, text, extra, error):
    python, script, _records = agent_script
    assert tracing()
    rt = llm_runtime("cli", _custom_cli_yaml(python, script, extra))
    result = _send(rt.url, text)
    assert result["parts"][0]["text"].startswith("Agent error: ") and error in result["parts"][0]["text"]
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [agent] = by_name(spans, f"invoke_agent {Path(python).name}")
    assert agent["parent_id"] == task["span_id"]
    assert (agent["status"], task["status"]) == (2, 2)  # STATUS_CODE_ERROR


def test_usage_rides_on_the_reply_without_tracing(llm_runtime, monkeypatch):
    pytest.importorskip("openai")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not telemetry.setup_telemetry(platform_url="http://127.0.0.1:9", token_provider=lambda: "t")
    rt = llm_runtime("openai")
    result = _send(rt.url, "hello")
    assert result["metadata"]["usage"] == {"input_tokens": 10, "output_tokens": 5, "model": "gpt-4o-mini"}


def test_a_streamed_task_continues_the_inbound_trace_too(tracing, collector, echo_runtime):
    import httpx

    assert tracing()
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": {"message": msg03("streamed")}}
    with httpx.stream("POST", echo_runtime.url + "/", json=body, headers={"traceparent": TRACEPARENT},
                      timeout=10) as response:
        assert response.status_code == 200
        assert "echo: streamed" in "".join(response.iter_lines())
    flush()
    [task] = by_name(collector.spans(), "a2a.task")
    assert (task["trace_id"], task["parent_id"], task["kind"]) == (TRACE_ID, PARENT_ID, "SERVER")


def test_the_echo_runtime_reply_has_no_usage(echo_runtime):
    result = _send(echo_runtime.url, "hello")
    assert "usage" not in (result.get("metadata") or {})


# ----------------------------------------------------------------------------- exporters


def test_exporters_platform_collector_and_langfuse_each_get_their_own_auth(tracing, collector):
    tracing.tokens[0] = None  # not registered yet: the token is read at each export
    assert tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url + "/collector",
                    "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=abc123",
                    "LANGFUSE_HOST": collector.url + "/", "LANGFUSE_PUBLIC_KEY": "pk-lf-1",
                    "LANGFUSE_SECRET_KEY": "sk-lf-2"})
    with telemetry.tracer().start_as_current_span("before registration"):
        pass
    flush()
    tracing.tokens[0] = WORKSPACE_TOKEN
    with telemetry.tracer().start_as_current_span("after registration"):
        pass
    flush()

    by_path: dict[str, list[tuple[dict, list[str]]]] = {}
    for path, headers, spans in collector.exports:
        by_path.setdefault(path, []).append((headers, [s["name"] for s in spans]))
    assert set(by_path) == {"/otlp/v1/traces", "/collector/v1/traces", "/api/public/otel/v1/traces"}

    platform = by_path["/otlp/v1/traces"]
    assert [names for _h, names in platform] == [["before registration"], ["after registration"]]
    assert "authorization" not in platform[0][0]
    assert platform[1][0]["authorization"] == f"Bearer {WORKSPACE_TOKEN}"
    assert all("x-collector-key" not in h for h, _n in platform)  # the collector's headers stay its own

    basic = "Basic " + base64.b64encode(b"pk-lf-1:sk-lf-2").decode()
    for headers, _names in by_path["/api/public/otel/v1/traces"]:
        assert headers["authorization"] == basic
        assert "x-collector-key" not in headers
    for headers, _names in by_path["/collector/v1/traces"]:
        assert headers["x-collector-key"] == "abc123"
        assert "authorization" not in headers


def test_exporter_targets_mapping():
    targets = telemetry.exporter_targets(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318/", "LANGFUSE_HOST": "https://cloud.langfuse.com",
         "LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk", "OTEL_DEBUG": "1"},
        platform_url="http://platform:8080/", token_provider=lambda: "tok")
    assert [(t["name"], t["endpoint"]) for t in targets] == [
        ("platform", "http://platform:8080/otlp/v1/traces"), ("otlp", "http://otel:4318/v1/traces"),
        ("langfuse", "https://cloud.langfuse.com/api/public/otel/v1/traces"), ("console", None)]
    assert targets[0]["auth"]() == "Bearer tok"
    assert targets[2]["auth"]() == "Basic " + base64.b64encode(b"pk:sk").decode()
    # Langfuse needs all three; the traces endpoint is taken verbatim; the platform can be turned off
    only = telemetry.exporter_targets({"LANGFUSE_HOST": "h", "LANGFUSE_PUBLIC_KEY": "pk",
                                       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/traces",
                                       "MOLECULE_TRACES_TO_PLATFORM": "false"},
                                      platform_url="http://p", token_provider=lambda: "t")
    assert [(t["name"], t["endpoint"]) for t in only] == [("otlp", "http://c/traces")]


def test_otel_sdk_disabled_exports_nothing(tracing, collector):
    assert not tracing({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url})
    assert not telemetry.enabled()
    with telemetry.tracer().start_as_current_span("nothing") as span:
        assert not span.is_recording()
    assert telemetry.force_flush()
    assert collector.exports == []


def test_trace_helpers_round_trip():
    from opentelemetry import context

    token = context.attach(telemetry.extract_trace_context({"Traceparent": TRACEPARENT}))
    try:
        assert telemetry.get_current_traceparent() == TRACEPARENT
        assert telemetry.inject_trace_headers({"x": "1"}) == {"x": "1", "traceparent": TRACEPARENT}
    finally:
        context.detach(token)
    assert telemetry.get_current_traceparent() is None


def test_the_runtime_process_traces_its_tasks_and_flushes_them_when_it_stops(tmp_path, collector, fake_platform):
    """`molecule-runtime` itself: tracing set up from its env, spans exported at SIGTERM."""
    import os
    import signal
    import time

    from .conftest import free_port, write_config

    configs = write_config(tmp_path / "configs")
    port = free_port()
    ws = "33333333-3333-4333-8333-333333333333"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "LANGFUSE_")) and k not in ("ADAPTER_MODULE", "MOLECULE_SMOKE_MODE",
                                                                  "AGENT_URL", "MOLECULE_INBOUND_SECRET")}
    env.update(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
               PORT=str(port), HOST="127.0.0.1", OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
               MOLECULE_TRACES_TO_PLATFORM="false", OTEL_CAPTURE_CONTENT="true")
    proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env, cwd=Path(__file__).parent.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while ws not in fake_platform.registered:
            assert time.monotonic() < deadline and proc.poll() is None, "the runtime did not register"
            time.sleep(0.05)
        assert _send(url, "ping", {"traceparent": TRACEPARENT})["parts"][0]["text"] == "echo: ping"
        assert collector.exports == []  # still in the batch (5 s schedule)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    [task] = by_name(collector.spans("/v1/traces"), "a2a.task")
    assert (task["trace_id"], task["parent_id"]) == (TRACE_ID, PARENT_ID)
    assert task["attributes"]["workspace.id"] == ws and task["attributes"]["a2a.input_preview"] == "ping"
    assert task["resource"]["workspace.runtime"] == "echo"


def test_the_runtime_works_without_the_otel_packages(tmp_path):
    """With opentelemetry not importable, tracing is a no-op and the rest still works."""
    script = textwrap.dedent("""
        import asyncio, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        from molecule_runtime import telemetry, server, main  # noqa: F401
        from molecule_runtime.tools import build_tools  # noqa: F401
        assert not telemetry.HAVE_API
        assert telemetry.setup_telemetry({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) is False
        assert telemetry.inject_trace_headers({}) == {}
        async def tool(x: int) -> dict:
            return {"x": x}
        async def run():
            telemetry._current_task.set(telemetry.TaskTelemetry())
            with telemetry.chat_span("openai:gpt-4o") as chat:
                chat.end(input_tokens=3, output_tokens=4)
            assert telemetry.current_usage() == {"input_tokens": 3, "output_tokens": 4, "model": "gpt-4o"}
            return await telemetry.traced_tool("tool", tool)(x=1)
        assert asyncio.run(run()) == {"x": 1}
        print("ok")
    """)
    runtime_dir = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", script], cwd=runtime_dir, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_gen_ai_system_is_the_models_provider_prefix_when_it_names_one():
    from molecule_runtime import telemetry
    from molecule_runtime.adapters import providers  # noqa: F401 - adds the provider map's names

    assert telemetry.gen_ai_system("anthropic:claude-opus-4-7") == "anthropic"
    assert telemetry.gen_ai_system("groq:llama-3.3-70b") == "groq"  # from the provider map
    assert telemetry.gen_ai_system("gemini:gemini-2.5-pro") == "gemini"
    assert telemetry.gen_ai_system("llama3:8b") == "openai"  # an ollama tag, not a provider
    assert telemetry.gen_ai_system("gpt-4o", provider="azure") == "azure"


def test_a_model_call_outside_a_task_is_not_marked_as_metered_on_a_reply(tracing, collector):
    """No A2A reply carries its usage, so the platform's receiver meters it from the span."""
    assert tracing()
    telemetry.ChatCall("gpt-4o-mini", provider="openai").end(input_tokens=7, output_tokens=3)
    flush()
    [chat] = by_name(collector.spans("/otlp/v1/traces"), "chat gpt-4o-mini")
    assert (chat["attributes"]["gen_ai.usage.input_tokens"], chat["attributes"]["gen_ai.usage.output_tokens"]) == (7, 3)
    assert "molecule.usage.on_reply" not in chat["attributes"]

"""The benchmark's own parts that are not timings: the echo agent's tracing (it must export what
a runtime exports, or ``bench/load.py --compare-tracing`` measures nothing), and how the
tracing comparison is computed, reported and refused."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from molecule_site.tests.launch import free_port, wait_until
from molecule_site.tests.otlp_collector import OTLPCollector

BENCH = Path(__file__).resolve().parents[2] / "bench"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
MESSAGE = {"jsonrpc": "2.0", "id": "m-7", "method": "message/send",
           "params": {"message": {"role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "hi"}]}}}


def _load_module():
    spec = importlib.util.spec_from_file_location("bench_load", BENCH / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


load = _load_module()


@pytest.fixture
def collector():
    server = OTLPCollector(path="/otlp/v1/traces").start()  # where the platform's receiver is
    yield server
    server.stop()


def _echo_agent(**env: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ECHO_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "echo_agent:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"

    def up():
        assert process.poll() is None, process.stdout.read()
        try:
            return httpx.get(url, timeout=1).status_code == 405
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=30, what="the echo agent")
    return process, url


def _stop(process: subprocess.Popen) -> str:
    """SIGTERM, as load.py stops it: the SDK's exit handler exports what is still queued."""
    process.terminate()
    out, _ = process.communicate(timeout=30)
    return out


def test_echo_agent_traces_each_message_as_a_runtime_does(collector):
    process, url = _echo_agent(ECHO_PLATFORM_URL=collector.endpoint, ECHO_WORKSPACE_TOKEN="tok-echo",
                               ECHO_WORKSPACE_ID="ws-echo")
    try:
        answer = httpx.post(url, json=MESSAGE, headers={"traceparent": f"00-{TRACE}-{PARENT}-01"}, timeout=10)
        untraced = httpx.post(url, content=b"not json", timeout=10)  # no traceparent: a trace of its own
    finally:
        out = _stop(process)
    assert answer.status_code == 200
    assert answer.json()["jsonrpc"] == "2.0" and answer.json()["id"] == "m-7"
    assert answer.json()["result"]["parts"] == [{"kind": "text", "text": "echo"}]
    assert untraced.status_code == 200 and untraced.json()["id"] is None
    assert "tracing to the platform" in out

    spans = collector.spans
    assert len(spans) == 4, spans
    task = next(s for s in spans if s["name"] == "a2a.task" and s["trace_id"] == TRACE)
    assert task["parent_span_id"] == PARENT  # continues the proxy's span
    assert task["service"] == "molecule-workspace" and task["workspace_id"] == "ws-echo"
    assert task["attributes"]["workspace.id"] == "ws-echo"
    chat = next(s for s in spans if s["name"] == "chat echo" and s["trace_id"] == TRACE)
    assert chat["parent_span_id"] == task["span_id"]
    assert chat["attributes"]["gen_ai.usage.input_tokens"] == 1
    other = [s for s in spans if s["trace_id"] != TRACE]
    assert {s["name"] for s in other} == {"a2a.task", "chat echo"} and len({s["trace_id"] for s in other}) == 1
    assert all(r["headers"].get("Authorization") == "Bearer tok-echo" for r in collector.requests)


@pytest.mark.parametrize("env", [{}, {"OTEL_SDK_DISABLED": "true"}], ids=["no-platform-url", "sdk-disabled"])
def test_echo_agent_exports_nothing_untraced(collector, env):
    if env:  # everything set, and the SDK switched off as the "off" mode's environment does
        env = {**env, "ECHO_PLATFORM_URL": collector.endpoint, "ECHO_WORKSPACE_TOKEN": "tok"}
    process, url = _echo_agent(**env)
    try:
        assert httpx.post(url, json=MESSAGE, headers={"traceparent": f"00-{TRACE}-{PARENT}-01"}, timeout=10).status_code == 200
    finally:
        out = _stop(process)
    assert "tracing to the platform" not in out
    assert collector.requests == []


def _run(rps: float, p50: float, p99: float, requests: int = 100) -> dict:
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": requests, "seconds": 6.0, "non_2xx": 0, "5xx": 0,
            "socket_errors": {}, "error_bodies": [], "idle_before": {"busy": False}}


def _mode(through: dict, direct: dict, spans: dict) -> dict:
    pair = {"direct": direct, "through": through,
            "added_ms": {k: round(through[f"{k}_ms"] - direct[f"{k}_ms"], 2) for k in ("p50", "p99")}}
    return {"a2a": {"runs": {"8": pair}, "calls": {"direct": 1000, "through": 401},
                    "spans": {"by_name": spans, "settled": True}}}


def test_tracing_ratios_are_each_mode_against_the_floor():
    modes = {
        "off": _mode(_run(400, 20, 40), _run(4000, 2, 4), {}),
        "proxy": _mode(_run(360, 22, 60), _run(4000, 2, 4), {"molecule-platform a2a.proxy": 401}),
        "on": _mode(_run(300, 25, 80), _run(1000, 8, 8), {"molecule-platform a2a.proxy": 401}),
    }
    ratios = load.tracing_ratios(modes)
    assert ratios["off"]["8"]["through"] == {"rps": 1.0, "p50_ms": 1.0, "p99_ms": 1.0}
    assert ratios["proxy"]["8"]["through"] == {"rps": 0.9, "p50_ms": 1.1, "p99_ms": 1.5}
    assert ratios["on"]["8"] == {"through": {"rps": 0.75, "p50_ms": 1.25, "p99_ms": 2.0},
                                 "direct": {"rps": 0.25, "p50_ms": 4.0, "p99_ms": 2.0}}
    header = "  header"
    text = "\n".join(load.tracing_report({"modes": modes, "ratio": ratios}, lambda label, run, _: f"ROW {label}", header))
    assert "ROW proxy proxy" in text and "ROW on direct" in text
    assert "proxy/off through: req/s 0.900x, p50 1.10x, p99 1.50x" in text
    assert "off/off" not in text  # the floor is not compared with itself
    assert "proxy  molecule-platform a2a.proxy 401; calls through the proxy 401, to the agent 1401" in text
    assert "off    none;" in text


def test_tracing_ratios_skip_a_mode_that_measured_nothing():
    modes = {"off": _mode(_run(400, 20, 40), _run(4000, 2, 4), {}), "proxy": {"errors": {"a2a": "boom"}}}
    assert load.tracing_ratios(modes)["proxy"] == {}
    assert load.tracing_ratios({"on": _mode(_run(1, 1, 1), _run(1, 1, 1), {})}) == {"on": {}}  # no floor


@pytest.mark.parametrize("argv", [["--compare-tracing", "--only", "heartbeat"], ["--compare-tracing", "--only", "a2a,ws"]])
def test_compare_tracing_refuses_other_phases(monkeypatch, capsys, argv):
    monkeypatch.setattr(sys, "argv", ["load.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        load.main()
    assert exit_info.value.code == 2
    assert "--compare-tracing measures the a2a phase only" in capsys.readouterr().err


def test_cpu_per_call_counts_a_process_started_during_the_run_whole():
    before = {1: ("web", 10.0), 2: ("web", 4.0), 3: ("postgres", 1.0), 9: ("agent", 2.0)}
    after = {1: ("web", 10.5), 2: ("web", 4.25), 3: ("postgres", 1.1), 4: ("postgres", 0.15)}  # 9 is gone
    assert load.CpuMeter.per_call(before, after, 100) == {"postgres": 2.5, "web": 7.5}
    assert load.CpuMeter.per_call(before, after, 0) == {}  # a run without one answered call

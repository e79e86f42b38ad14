"""One delegation chain is one trace (issue 15's end-to-end scenario).

The platform runs as ``make run`` runs it, with the local backend. A PM on the ``openai`` runtime
(its model is a local fake server that speaks OpenAI's chat-completions API and reports usage)
leads an echo Dev. The canvas asks the PM; the model has it call ``delegate_task`` on the Dev.
The platform's proxy spans and both runtimes' spans must form one trace —
``a2a.proxy > a2a.task > execute_tool delegate_task > a2a.proxy > a2a.task`` — kept by the
platform's own OTLP receiver and listed by both workspaces' ``/traces``, and the same spans must
reach an external OTLP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. The model's usage
lands in ``workspace_token_usage``, ``/workspaces/:id/metrics`` and Prometheus' ``/metrics``.
"""

from __future__ import annotations


import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from molecule_site.tests.launch import platform_on_fresh_database, wait_until
from molecule_site.tests.otlp_collector import OTLPCollector
from molecule_site.tests.test_mixed_team_end_to_end import fake_openai, runtime_logs, tool_results

ADMIN = "traces-e2e-admin"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
CHAIN = ["a2a.proxy", "a2a.task", "execute_tool delegate_task", "a2a.proxy", "a2a.task"]
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "300"}  # batch exports every 0.3 s instead of 5 s

pytestmark = pytest.mark.slow


class DelegatingModel:
    """The PM's model: first delegate to the Dev, then answer with what it said."""

    def __init__(self) -> None:
        self.dev_id = ""

    def __call__(self, body: dict) -> dict:
        done = tool_results(body)
        if not done:
            return {"tool_calls": [{"name": "delegate_task", "arguments": {
                "workspace_id": self.dev_id, "task": "Report your status"}}]}
        return {"content": "The Dev says: " + done[0]}


@pytest.fixture
def collector():
    server = OTLPCollector().start()
    yield server
    server.stop()


@pytest.fixture
def model():
    server = fake_openai.FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def platform(home, collector):
    with platform_on_fresh_database(home, redis_db=14, ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="local",
                                    OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, **FAST_EXPORT) as launch:
        yield launch


def ancestry(spans: list[dict], span: dict) -> list[dict]:
    """``span`` and its ancestors, root first."""
    by_id = {s["span_id"]: s for s in spans}
    chain = [span]
    while chain[0]["parent_span_id"] in by_id:
        chain.insert(0, by_id[chain[0]["parent_span_id"]])
    return chain


def prometheus(api: httpx.Client) -> dict:
    samples = {}
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_a_delegation_chain_is_one_trace_in_the_platform_and_in_the_collector(platform, collector, model, home):
    pm_model = DelegatingModel()
    model.state.default = pm_model
    with httpx.Client(base_url=platform.url, timeout=60, headers=ADMIN_HEADERS) as api:
        for key, value in {"OPENAI_BASE_URL": model.state.base_url, "OPENAI_API_KEY": "sk-fake-traces",
                           "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, **FAST_EXPORT}.items():
            assert api.put("/settings/secrets", json={"key": key, "value": value}).json()["status"] == "saved"
        pm = api.post("/workspaces", json={"name": "PM", "template": "openai-default"}).json()["id"]
        dev = api.post("/workspaces", json={"name": "Dev", "template": "echo-default", "parent_id": pm}).json()["id"]
        pm_model.dev_id = dev
        try:
            wait_until(lambda: all(api.get(f"/workspaces/{w}").json()["status"] == "online" for w in (pm, dev)), 120,
                       "the PM and the Dev to come online")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{runtime_logs(home)}") from None

        response = api.post(f"/workspaces/{pm}/a2a", timeout=120, json={"method": "message/send", "params": {
            "message": {"role": "user", "parts": [{"kind": "text", "text": "How is the Dev doing?"}]}}})
        assert response.status_code == 200, response.text + runtime_logs(home)
        answer = "".join(part.get("text", "") for part in response.json()["result"]["parts"])
        assert answer.startswith("The Dev says:"), answer

        # the platform's receiver kept every span of the chain, in one trace, listed by the PM …
        # (each process exports in its own batches, and the root proxy span ends last: wait until
        # every span has arrived — the chain, both model calls — before reading the listing)
        def delegation_trace():
            listed = api.get(f"/workspaces/{pm}/traces").json()["data"]
            for item in listed:
                tree = api.get(f"/workspaces/{pm}/traces/{item['id']}").json()
                dev_tasks = [s for s in tree["spans"] if s["name"] == "a2a.task" and s["workspace_id"] == dev]
                chats = [s for s in tree["spans"] if s["name"].startswith("chat ")]
                if dev_tasks and len(ancestry(tree["spans"], dev_tasks[0])) >= len(CHAIN) and len(chats) >= 2:
                    return tree, dev_tasks[0]
            return None

        tree, dev_task = wait_until(delegation_trace, 30, "the delegation's spans in the PM's /traces")
        item = next(t for t in api.get(f"/workspaces/{pm}/traces").json()["data"] if t["id"] == tree["id"])
        chain = [s for s in ancestry(tree["spans"], dev_task) if not s["name"].startswith("chat ")]
        assert [s["name"] for s in chain] == CHAIN
        assert [s["workspace_id"] for s in chain] == [pm, pm, pm, dev, dev]
        assert [s["service"] for s in chain] == ["molecule-platform", "molecule-workspace", "molecule-workspace",
                                                 "molecule-platform", "molecule-workspace"]
        assert [s["depth"] for s in chain] == sorted(s["depth"] for s in chain)  # depth-first, root first
        assert tree["spans"][0]["name"] == "a2a.proxy" and tree["spans"][0]["parent_span_id"] == ""
        chats = [s for s in tree["spans"] if s["name"].startswith("chat ")]
        assert len(chats) == 2  # the model call that delegated and the one that answered
        assert all(s["attributes"]["gen_ai.usage.input_tokens"] == 10 for s in chats)
        assert item["name"] == "a2a.proxy" and item["status"] != "error"
        assert item["usage"] == {"input": 20, "output": 10, "total": 30}
        assert item["latency"] > 0

        # … and by the Dev, which took part in it
        assert item["id"] in [t["id"] for t in api.get(f"/workspaces/{dev}/traces").json()["data"]]

        # the same spans reached the external collector, from the platform and from both runtimes
        wanted = {s["span_id"] for s in chain}
        wait_until(lambda: wanted <= {s["span_id"] for s in collector.of_trace(item["id"])}, 30,
                   "the chain's spans at the OTLP collector")
        exported = {s["span_id"]: s for s in collector.of_trace(item["id"])}
        assert {exported[s["span_id"]]["service"] for s in chain} == {"molecule-platform", "molecule-workspace"}
        assert {exported[s["span_id"]]["workspace_id"] for s in chain if s["service"] == "molecule-workspace"} == {pm, dev}

        # the model's usage was metered from the PM's reply
        metrics = api.get(f"/workspaces/{pm}/metrics").json()
        assert (metrics["input_tokens"], metrics["output_tokens"], metrics["call_count"]) == (20, 10, 1)
        assert [row["model"] for row in metrics["by_model"]] == ["gpt-4.1-mini"]
        samples = prometheus(api)
        assert samples[("molecule_workspace_tokens_total", (("direction", "input"), ("workspace_id", pm)))] == 20
        assert samples[("molecule_workspace_tokens_total", (("direction", "output"), ("workspace_id", pm)))] == 10

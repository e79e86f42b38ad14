"""The side panel's fragments (workspaces/canvas/panel_views.py, their contexts in panels.py):
access, gone workspaces, and what each tab renders from the selectors (chat history filtering,
activity filters, peers, config checks, the file tree, memory scopes, events)."""

from __future__ import annotations

import datetime
import html
import json
import re
import uuid

import pytest
from django.utils import timezone

from activity.models import ActivityLog, StructureEvent
from memory.models import AgentMemory, WorkspaceMemory
from metering.models import WorkspaceTokenUsage
from secrets_app.models import WorkspaceSecret
from traces.models import TraceSpan
from workspaces import files
from workspaces.canvas import panels
from workspaces.models import CanvasLayout, Workspace

pytestmark = pytest.mark.django_db

FRAGMENT = {"HTTP_X_MOLECULE_FRAGMENT": "1"}
TAB_PATHS = [f"{tab}/" for tab in panels.TAB_IDS] + ["", "chat/comms/"]


@pytest.fixture(autouse=True)
def home(settings, tmp_path):
    settings.MOLECULE_HOME = tmp_path / "home"
    return settings.MOLECULE_HOME


def _ws(name="Agent", status="online", parent=None, **fields):
    workspace = Workspace.objects.create(name=name, status=status, parent=parent, **fields)
    CanvasLayout.objects.create(workspace=workspace, x=100, y=100)
    return workspace


def _get(client, workspace, tab="", query=""):
    return client.get(f"/canvas/panel/{workspace.id if isinstance(workspace, Workspace) else workspace}/{tab}{query}", **FRAGMENT)


def _text(response) -> str:
    """The fragment's visible text, whitespace collapsed (enough to assert on)."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def _send(text, message_id="m1"):
    return {"jsonrpc": "2.0", "id": "r1", "method": "message/send",
            "params": {"message": {"role": "user", "messageId": message_id, "parts": [{"kind": "text", "text": text}]}}}


def _reply(text, message_id="a1", files_=()):
    parts = [{"kind": "text", "text": text}] + [{"kind": "file", "file": f} for f in files_]
    return {"jsonrpc": "2.0", "id": "r1", "result": {"kind": "message", "role": "agent", "messageId": message_id, "parts": parts}}


def _log(workspace, **fields):
    fields.setdefault("activity_type", "a2a_receive")
    fields.setdefault("method", "message/send")
    fields.setdefault("target_id", workspace.id)
    return ActivityLog.objects.create(workspace=workspace, **fields)


# --- access -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tab", TAB_PATHS)
def test_every_fragment_needs_a_staff_session(client, tab):
    workspace = _ws()
    response = client.get(f"/canvas/panel/{workspace.id}/{tab}", **FRAGMENT)
    assert response.status_code == 401
    assert json.loads(response.content) == {"error": "login required"}
    page = client.get(f"/canvas/panel/{workspace.id}/{tab}")
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/login/?next=/canvas/panel/")


def test_a_non_staff_user_gets_no_fragment(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-for-viewer-1"))
    assert _get(client, _ws(), "chat/").status_code == 401


@pytest.mark.parametrize("tab", TAB_PATHS)
def test_fragments_answer_get_and_head_only(operator_client, tab):
    workspace = _ws()
    path = f"/canvas/panel/{workspace.id}/{tab}"
    head = operator_client.head(path, **FRAGMENT)
    assert head.status_code == 200 and head.content == b""
    assert operator_client.post(path, **FRAGMENT).status_code == 405
    assert operator_client.delete(path, **FRAGMENT).status_code == 405


@pytest.mark.parametrize("tab", TAB_PATHS)
def test_an_unknown_workspace_renders_the_gone_state_with_a_404(operator_client, tab):
    for workspace_id in (uuid.uuid4(), "not-a-uuid"):
        response = operator_client.get(f"/canvas/panel/{workspace_id}/{tab}", **FRAGMENT)
        assert response.status_code == 404
        assert "This workspace does not exist." in _text(response)


@pytest.mark.parametrize("tab", TAB_PATHS)
def test_a_removed_workspace_renders_an_empty_state(operator_client, tab):
    workspace = _ws(status="removed")
    response = _get(operator_client, workspace, tab)
    assert response.status_code == 200
    assert "This workspace was removed." in _text(response)


def test_an_unknown_tab_is_a_404(operator_client):
    assert _get(operator_client, _ws(), "plugins/").status_code == 404


def test_the_shell_lists_exactly_the_panel_tabs(operator_client):
    page = operator_client.get("/").content.decode()
    tabs = re.findall(r'id="tab-([a-z]+)" role="tab"', page)
    tab_panels = re.findall(r'id="panel-([a-z]+)" role="tabpanel"', page)
    assert tabs == tab_panels == list(panels.TAB_IDS)
    assert 'role="tablist"' in page


# --- header -------------------------------------------------------------------------------------------------

def test_the_header_shows_status_name_role_tier_pills_and_the_current_task(operator_client):
    workspace = _ws("Research Lead", role="Finds papers", tier=3, runtime="echo", current_task="Reading arXiv",
                    agent_card={"skills": [{"id": "a"}, {"id": "b", "name": "B"}]})
    text = _text(_get(operator_client, workspace))
    for expected in ("Research Lead", "Finds papers", "Tier T3 Privileged", "Runtime echo", "Skills 2", "Status Online", "Reading arXiv"):
        assert expected in text
    idle = _ws("Idle", status="provisioning")
    body = _get(operator_client, idle).content.decode()
    assert "ph-task" not in body and "Starting" in body


# --- chat -----------------------------------------------------------------------------------------------------

def test_my_chat_is_the_operators_exchanges_oldest_first_without_delegation_follow_ups(operator_client):
    workspace = _ws("PM")
    peer = _ws("Researcher")
    _log(workspace, request_body=_send("first question here"), response_body=_reply("first **answer**", "a1"))
    _log(workspace, request_body=_send("Delegation results are ready. Review them and take appropriate action."),
         response_body=_reply("internal follow-up"))
    _log(workspace, source_id=peer.id, request_body=_send("from a peer"), response_body=_reply("to a peer"))
    _log(workspace, method="notify", response_body={"result": "pushed by the agent",
         "parts": [{"kind": "file", "file": {"uri": "workspace:/workspace/.molecule/chat-uploads/ab-report.md", "name": "report.md"}}]})
    _log(workspace, request_body=_send("are you there"), status="error", error_detail="failed to reach workspace agent")

    response = _get(operator_client, workspace, "chat/")
    body = response.content.decode()
    bubbles = re.findall(r'<div class="bubble is-(\w+)"[^>]*>\s*<div class="bubble-body"[^>]*>(.*?)</div>', body, re.DOTALL)
    assert bubbles == [
        ("user", "first question here"), ("agent", "first **answer**"), ("agent", "pushed by the agent"),
        ("user", "are you there"), ("system", "failed to reach workspace agent"),
    ]
    assert 'data-key="a1"' in body  # the page drops a live duplicate of this reply
    assert "internal follow-up" not in body and "Delegation results" not in body
    assert "/chat/download?path=workspace%3A%2Fworkspace%2F.molecule%2Fchat-uploads%2Fab-report.md" in body
    assert "No messages yet" in body and 'class="chat-empty" hidden' in body
    # Agent Comms has the peer's message, read-only
    assert "← From" in body and "from a peer" in body
    assert body.count("<textarea") == 1


def test_an_empty_chat_says_so_and_agent_comms_too(operator_client):
    body = _get(operator_client, _ws(), "chat/").content.decode()
    assert re.search(r'<p class="chat-empty">No messages yet. Send a message to start chatting with this agent.</p>', body)
    assert "No agent-to-agent communications yet." in body


@pytest.mark.parametrize(("status", "enabled"), [("online", True), ("degraded", True), ("offline", False), ("provisioning", False)])
def test_the_composer_is_enabled_only_while_the_agent_can_answer(operator_client, status, enabled):
    body = _get(operator_client, _ws(status=status), "chat/").content.decode()
    textarea = re.search(r"<textarea[^>]*>", body).group(0)
    assert ("disabled" not in textarea) is enabled
    if not enabled:
        label = {"offline": "offline", "provisioning": "starting"}[status]
        assert f'placeholder="Agent is {label}"' in textarea


def test_agent_comms_tells_outgoing_from_incoming_with_peer_names(operator_client):
    workspace = _ws("PM")
    peer = _ws("Writer")
    _log(workspace, activity_type="delegation", method="delegate", source_id=workspace.id, target_id=peer.id,
         request_body={"task": "write the summary", "delegation_id": "d1"}, status="completed")
    _log(workspace, source_id=peer.id, request_body=_send("here it is"), response_body=_reply("thanks"))
    _log(workspace, activity_type="agent_log", source_id=workspace.id, summary="a log line, not a message")
    text = _text(_get(operator_client, workspace, "chat/comms/"))
    assert text.index("→ To Writer") < text.index("← From Writer")
    assert "write the summary" in text and "here it is" in text
    assert "a log line" not in text


def test_chat_history_turns_rpc_errors_and_task_results_into_bubbles():
    now = "2026-01-01T10:00:00+00:00"
    task = {"result": {"id": "t1", "artifacts": [{"parts": [{"kind": "text", "text": "from an artifact"}]}]}}
    error = {"error": {"code": -32000, "message": "boom"}}
    bubbles = panels.chat_history([  # newest first, as the selector answers
        {"created_at": now, "method": "message/send", "status": "ok", "request_body": _send("q2"), "response_body": error},
        {"created_at": now, "method": "message/send", "status": "ok", "request_body": _send("q1"), "response_body": task},
    ])
    assert [(b.role, b.text, b.key) for b in bubbles] == [
        ("user", "q1", ""), ("agent", "from an artifact", "t1"), ("user", "q2", ""), ("system", "boom", "")]


# --- activity ----------------------------------------------------------------------------------------------------

def test_activity_lists_rows_with_details_and_filters_by_type(operator_client):
    workspace = _ws("PM")
    peer = _ws("Writer")
    _log(workspace, source_id=peer.id, request_body=_send("hello"), response_body=_reply("hi"), duration_ms=1234, summary="message/send → PM")
    _log(workspace, activity_type="agent_log", method="log", summary="thinking hard", source_id=workspace.id)
    _log(workspace, activity_type="error", summary="it broke", status="error", error_detail="Traceback …", source_id=workspace.id)

    everything = _get(operator_client, workspace, "activity/")
    text = _text(everything)
    assert "3 activities" in text
    assert "1.2 s" in text and "Writer" in text and "hello" in text and "Traceback …" in text
    assert '"messageId": "m1"' in html.unescape(everything.content.decode())  # raw JSON, pretty-printed
    errors = _text(_get(operator_client, workspace, "activity/", "?type=error"))
    assert "1 activity" in errors and "it broke" in errors and "thinking hard" not in errors
    assert "3 activities" in _text(_get(operator_client, workspace, "activity/", "?type=bogus"))
    assert "No activity recorded yet" in _text(_get(operator_client, _ws("Quiet"), "activity/"))


# --- details --------------------------------------------------------------------------------------------------------

def test_details_show_the_fields_the_model_and_peers_while_online(operator_client):
    parent = _ws("Lead")
    workspace = _ws("Dev", role="Builds", tier=2, runtime="echo", parent=parent, url="http://127.0.0.1:9000",
                    agent_card={"name": "dev", "skills": [{"id": "code", "name": "Coding", "description": "Writes Python"}]})
    sibling = _ws("QA", parent=parent)
    WorkspaceSecret.objects.create(workspace=workspace, key="MODEL_PROVIDER", encrypted_value=b"openai:gpt-4.1", encryption_version=0)
    body = _get(operator_client, workspace, "details/").content.decode()
    text = _text(_get(operator_client, workspace, "details/"))
    for expected in ("Dev", "Builds", "T2", "echo", "openai:gpt-4.1", "workspace secret", "http://127.0.0.1:9000", "Peers (2)",
                     "Coding", "Writes Python", "Agent card JSON", "Danger Zone", "Confirm Delete"):
        assert expected in text
    assert f'data-panel-select="{sibling.id}"' in body and f'data-panel-select="{parent.id}"' in body
    assert 'data-testid="details-error-log"' not in body
    assert 'name="model" value="openai:gpt-4.1"' in body


def test_details_of_a_failed_workspace_show_the_error_log_retry_and_no_peers(operator_client):
    workspace = _ws("Broken", status="failed", last_sample_error="runtime exited with code 1")
    body = _get(operator_client, workspace, "details/").content.decode()
    assert re.search(r'data-testid="details-error-log">runtime exited with code 1<', body)
    assert "↻ Retry" in body
    assert "Peers are only discoverable while the workspace is online." in body


def test_details_take_the_model_from_config_yaml_without_a_secret(operator_client):
    workspace = _ws("Configured", runtime="echo")
    files.file_write(workspace_id=workspace.id, path="config.yaml", content="name: Configured\nmodel: anthropic:claude\n")
    text = _text(_get(operator_client, workspace, "details/"))
    assert "anthropic:claude · config.yaml" in text


def _usage(workspace, days_ago: int, input_tokens: int, output_tokens: int, cost_cents: float, model="gpt-4o"):
    day = timezone.now().astimezone(datetime.UTC).date() - datetime.timedelta(days=days_ago)
    WorkspaceTokenUsage.objects.create(workspace=workspace, model=model, day=day, input_tokens=input_tokens,
                                       output_tokens=output_tokens, call_count=1, cost_cents=cost_cents)
    return day


def test_details_show_spend_against_the_budget_and_tokens_per_day(operator_client):
    workspace = _ws("Spender", budget_limit=500, monthly_spend=420)
    today = _usage(workspace, 0, 30_000, 10_000, 420.0)
    earlier = _usage(workspace, 3, 1_000, 0, 0.25)
    _usage(workspace, 40, 9_000_000, 0, 1.0)  # outside the 30-day window
    body = _get(operator_client, workspace, "details/").content.decode()
    text = _text(_get(operator_client, workspace, "details/"))
    assert "$4.20 of $5.00 budget · 84 %" in text and "$0.80 left" in text
    assert 'class="spend-bar is-amber"' in body and 'aria-valuenow="84"' in body and "width: 84%" in body
    assert "Over 80 % of the budget." in text
    bars = re.findall(r'<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)" rx="1"><title>([^<]+)</title>', body)
    assert len(bars) == 30
    assert bars[-1][2] == f"{today.isoformat()}: 40,000 tokens · $4.20" and float(bars[-1][1]) == 64
    assert bars[-4][2] == f"{earlier.isoformat()}: 1,000 tokens · $0.00" and float(bars[-4][1]) == 2  # kept visible
    assert sum(1 for _, height, _ in bars if float(height) > 0) == 2
    assert "41k in all · peak 40k/day" in text


def test_details_spend_past_the_budget_is_red_and_says_calls_are_refused(operator_client):
    workspace = _ws("Broke", budget_limit=100, monthly_spend=130)
    body = _get(operator_client, workspace, "details/").content.decode()
    assert 'class="spend-bar is-red"' in body and "width: 100%" in body and "130 %" in body
    assert "A2A calls to this workspace are refused (402)" in body


def test_details_spend_without_budget_or_usage_says_so(operator_client):
    text = _text(_get(operator_client, _ws("Idle"), "details/"))
    assert "$0.00 · no budget set" in text
    assert "No token usage metered yet" in text
    assert 'data-testid="usage-chart"' not in _get(operator_client, _ws("Idle2"), "details/").content.decode()


# --- traces -----------------------------------------------------------------------------------------------------------

SPAN_BASE = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # one time axis for every span


def _span(workspace, trace_id, span_id, name, parent="", start_ms=0, duration_ms=10, service="molecule-workspace",
          status="ok", **attributes):
    start = SPAN_BASE + datetime.timedelta(milliseconds=start_ms)
    return TraceSpan.objects.create(
        workspace=workspace, trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name, service_name=service,
        start_time=start, end_time=start + datetime.timedelta(milliseconds=duration_ms), duration_ms=duration_ms,
        status=status, attributes=attributes)


def _delegation_trace(pm, dev, trace_id="0af7651916cd43dd8448eb211c80319c"):
    _span(pm, trace_id, "a" * 16, "a2a.proxy", duration_ms=400, service="molecule-platform")
    _span(pm, trace_id, "b" * 16, "a2a.task", parent="a" * 16, start_ms=5, duration_ms=390)
    _span(pm, trace_id, "c" * 16, "execute_tool delegate_task", parent="b" * 16, start_ms=20, duration_ms=300)
    _span(dev, trace_id, "d" * 16, "a2a.proxy", parent="c" * 16, start_ms=30, duration_ms=280, service="molecule-platform")
    _span(dev, trace_id, "e" * 16, "a2a.task", parent="d" * 16, start_ms=40, duration_ms=200)
    _span(dev, trace_id, "f" * 16, "chat gpt-4o", parent="e" * 16, start_ms=50, duration_ms=150, status="error",
          **{"gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30, "gen_ai.request.model": "gpt-4o"})
    return trace_id


def test_traces_show_the_last_delegation_as_a_waterfall(operator_client):
    pm, dev = _ws("PM", status="offline"), _ws("Dev", status="offline")
    trace_id = _delegation_trace(pm, dev)
    body = _get(operator_client, pm, "traces/").content.decode()
    text = _text(_get(operator_client, pm, "traces/"))
    assert "1 trace" in text and "6 spans" in text and "150 tok" in text
    assert f'data-trace-id="{trace_id}" open' in body
    rows = re.findall(r'data-span-name="([^"]+)" data-depth="(\d+)"', body)
    assert rows == [("a2a.proxy", "0"), ("a2a.task", "1"), ("execute_tool delegate_task", "2"), ("a2a.proxy", "3"),
                    ("a2a.task", "4"), ("chat gpt-4o", "5")]
    bars = re.findall(r'<i style="left: ([\d.]+)%; width: ([\d.]+)%">', body)
    assert bars[0] == ("0.0", "100.0") and bars[5] == ("12.5", "37.5")  # 50 ms in, 150 of 400 ms
    assert "span-row s-error" in body and "is-platform" in body
    assert "The transcript is live: it shows while the agent is online." in text


def test_traces_of_a_workspace_list_only_traces_it_took_part_in(operator_client):
    pm, dev, other = _ws("PM"), _ws("Dev"), _ws("Other")
    _delegation_trace(pm, dev)
    _span(other, "1" * 32, "9" * 16, "a2a.task")
    assert "1 trace" in _text(_get(operator_client, dev, "traces/"))
    assert f'data-trace-id="{"1" * 32}"' not in _get(operator_client, pm, "traces/").content.decode()


def test_an_older_trace_opens_its_waterfall_on_demand_and_a_foreign_one_is_a_404(operator_client):
    pm, dev, other = _ws("PM", status="offline"), _ws("Dev"), _ws("Other")
    trace_id = _delegation_trace(pm, dev)
    for n in range(panels.WATERFALLS):  # newer traces push the delegation past the pre-rendered few
        _span(pm, f"{n + 2:032x}", f"{n + 2:016x}", "a2a.task", start_ms=60_000 + n)
    body = _get(operator_client, pm, "traces/").content.decode()
    assert f'data-waterfall-slot="{trace_id}"' in body
    fragment = _get(operator_client, pm, "traces/", f"?trace={trace_id}").content.decode()
    assert fragment.count('class="span-row') == 6
    assert _get(operator_client, other, "traces/", f"?trace={trace_id}").status_code == 404
    assert _get(operator_client, pm, "traces/", "?trace=not-hex").status_code == 404


def test_no_traces_says_how_to_get_them(operator_client):
    text = _text(_get(operator_client, _ws("Quiet", status="offline"), "traces/"))
    assert "No traces yet" in text and "OTEL_EXPORTER_OTLP_ENDPOINT" in text and "LANGFUSE_HOST" in text


# --- config -----------------------------------------------------------------------------------------------------------

def test_config_shows_the_yaml_and_what_is_wrong_with_it(operator_client):
    workspace = _ws("Configured", runtime="echo")
    files.file_write(workspace_id=workspace.id, path="config.yaml", content="name: Configured\ntier: 2\n")
    good = _get(operator_client, workspace, "config/").content.decode()
    assert "name: Configured\ntier: 2\n</textarea>" in good
    assert re.search(r'data-config-error hidden></div>', good)
    files.file_write(workspace_id=workspace.id, path="config.yaml", content="name: [unclosed\n")
    assert "config.yaml is not valid YAML" in _text(_get(operator_client, workspace, "config/"))
    files.file_write(workspace_id=workspace.id, path="config.yaml", content="- a\n- b\n")
    assert "must be a mapping" in _text(_get(operator_client, workspace, "config/"))


def test_config_of_a_workspace_without_files_offers_to_create_them_and_external_agents_have_none(operator_client):
    assert "No config.yaml yet" in _text(_get(operator_client, _ws("Fresh", runtime="echo"), "config/"))
    external = _text(_get(operator_client, _ws("Remote", runtime="external"), "config/"))
    assert "External agents keep their configuration on their own machine." in external


def test_yaml_problem_names_the_line():
    assert panels.yaml_problem("a: 1\nb: [\n") .endswith("(line 3, column 1)")
    assert panels.yaml_problem("a: 1\n") == ""


# --- files ---------------------------------------------------------------------------------------------------------------

def test_files_render_the_configs_tree_directories_first(operator_client):
    workspace = _ws("Coder", runtime="echo")
    files.files_replace(workspace_id=workspace.id, files={"skills/web/SKILL.md": "x", "system-prompt.md": "You code."})
    body = _get(operator_client, workspace, "files/").content.decode()
    paths = re.findall(r'data-file-path="([^"]+)"', body)
    assert paths == ["skills/web/SKILL.md", "config.yaml", "system-prompt.md"]
    text = _text(_get(operator_client, workspace, "files/"))
    for expected in ("/configs", "3 files", "+ New", "Upload", "Select a file…"):
        assert expected in text


def test_files_leave_out_the_runtimes_token_file(operator_client):
    workspace = _ws("Tokened", runtime="echo")
    files.files_replace(workspace_id=workspace.id, files={".auth_token": "secret-token", ".env.example": "A=1"})
    body = _get(operator_client, workspace, "files/").content.decode()
    assert re.findall(r'data-file-path="([^"]+)"', body) == [".env.example", "config.yaml"]
    assert "secret-token" not in body and "2 files" in _text(_get(operator_client, workspace, "files/"))


def test_files_of_a_workspace_without_any_say_so(operator_client):
    text = _text(_get(operator_client, _ws("Nothing Matches", runtime="external"), "files/"))
    assert "No config files yet" in text and "0 files" in text


def test_file_tree_nests_entries_under_their_directories():
    tree = panels.file_tree([
        {"path": "b.txt", "size": 1, "dir": False}, {"path": "a", "size": 0, "dir": True},
        {"path": "a/z.md", "size": 2, "dir": False}, {"path": "A.md", "size": 3, "dir": False},
    ])
    assert [(n.name, n.dir) for n in tree] == [("a", True), ("A.md", False), ("b.txt", False)]
    assert [c.path for c in tree[0].children] == ["a/z.md"]


# --- memory --------------------------------------------------------------------------------------------------------------

def test_memory_lists_a_scope_searches_and_offers_delete_only_for_own_rows(operator_client):
    root = _ws("Root")
    child = _ws("Child", parent=root)
    mine = AgentMemory.objects.create(workspace=child, content="the deploy key rotates on Fridays", scope="LOCAL", namespace="ops")
    AgentMemory.objects.create(workspace=child, content="lunch is at noon", scope="LOCAL")
    team = AgentMemory.objects.create(workspace=root, content="the team ships on Mondays", scope="TEAM")
    AgentMemory.objects.create(workspace=root, content="everyone reads this", scope="GLOBAL")
    WorkspaceMemory.objects.create(workspace=child, key="cursor", value={"page": 3}, version=2)

    local = _get(operator_client, child, "memory/").content.decode()
    assert "2 memories · LOCAL" in _text(_get(operator_client, child, "memory/"))
    assert f'data-memory-delete="{mine.id}"' in local
    assert "Key/value entries" in local and "cursor" in local and "v2" in local
    found = _text(_get(operator_client, child, "memory/", "?scope=LOCAL&q=deploy"))
    assert "1 memory" in found and "Fridays" in found and "lunch" not in found
    shared = _get(operator_client, child, "memory/", "?scope=TEAM").content.decode()
    assert "the team ships on Mondays" in shared and f'data-memory-delete="{team.id}"' not in shared and "From Root" in shared
    everyone = _text(_get(operator_client, child, "memory/", "?scope=GLOBAL"))
    assert "everyone reads this" in everyone and "[MEMORY id=" not in everyone
    assert "No LOCAL memories yet." in _text(_get(operator_client, root, "memory/"))
    assert "LOCAL" in _text(_get(operator_client, child, "memory/", "?scope=nonsense"))


# --- events --------------------------------------------------------------------------------------------------------------

def test_events_list_the_workspaces_structure_events_newest_first(operator_client):
    workspace = _ws()
    other = _ws("Other")
    StructureEvent.objects.create(event_type="WORKSPACE_PROVISIONING", workspace_id=workspace.id, payload={"name": "Agent"})
    StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", workspace_id=workspace.id, payload={"url": "http://x"})
    StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", workspace_id=other.id, payload={})
    body = _get(operator_client, workspace, "events/").content.decode()
    assert re.findall(r'class="event-type tone-(\w+)">(\w+)<', body) == [("green", "WORKSPACE_ONLINE"), ("blue", "WORKSPACE_PROVISIONING")]
    text = _text(_get(operator_client, workspace, "events/"))
    assert "2 events" in text and "url: http://x" in text and "name: Agent" in text
    assert '"url": "http://x"' in html.unescape(body)


# --- skills and plugins (canvas spec §3.4) ----------------------------------------------------------------------------

def _candidate(workspace, summary="Triage flaky CI", packet=None):
    return ActivityLog.objects.create(
        workspace=workspace, activity_type="skill_promotion", method="memory/skill-promotion", summary=summary,
        source_id=workspace.id,
        request_body=packet or {"promote_to_skill": True, "title": summary, "repetition_signal": 3,
                                "procedure": ["rerun once", "bisect"]})


def test_skills_tab_shows_the_card_skills_with_their_skill_md_and_plugin_skills_apart(operator_client, settings):
    settings.PLUGINS_DIR = settings.BASE_DIR / "plugins"
    workspace = _ws("Dev", runtime="echo", agent_card={"skills": [
        {"id": "lookup", "name": "Lookup", "description": "Finds things", "tags": ["search"], "examples": ["find x"]},
        {"id": "code-review", "name": "Code review", "description": "From a plugin", "tags": []}]})
    files.files_replace(workspace_id=workspace.id, files={
        "skills/lookup/SKILL.md": "---\nname: Lookup\n---\nSearch the docs first.",
        "skills/draft/SKILL.md": "---\nname: Draft\n---\nnot loaded yet"})
    context = panels.skills_context(workspace)
    by_id = {s["id"]: s for s in context["skills"]}
    assert set(by_id) == {"lookup", "code-review", "draft"}
    assert by_id["lookup"]["skill_md"].endswith("Search the docs first.") and by_id["lookup"]["loaded"]
    assert by_id["code-review"]["from_plugin"] == "" and by_id["code-review"]["skill_md"] == ""  # no such plugin here
    assert by_id["lookup"]["from_plugin"] == ""
    assert not by_id["draft"]["loaded"] and by_id["draft"]["in_files"]
    text = _text(_get(operator_client, workspace, "skills/"))
    assert "Installed skills (3)" in text and "Search the docs first." in text and "not loaded" in text
    assert "Finds things" in text and "find x" in text


def test_skills_tab_lists_pending_candidates_only_with_a_suggested_name(operator_client):
    from plugins_app.models import SkillCandidateDecision

    workspace = _ws("Dev")
    pending = _candidate(workspace)
    decided = _candidate(workspace, summary="Old idea")
    SkillCandidateDecision.objects.create(candidate=decided, workspace=workspace, decision="dismissed")
    _log(workspace, activity_type="skill_promotion", method="something/else", summary="Not a candidate")
    [candidate] = panels.skills_context(workspace)["candidates"]
    assert candidate["id"] == str(pending.id) and candidate["suggested_name"] == "triage-flaky-ci"
    assert candidate["procedure"] == "1. rerun once\n2. bisect" and candidate["repetition"] == 3
    body = _get(operator_client, workspace, "skills/").content.decode()
    assert f'data-candidate-promote="{pending.id}"' in body and f'data-candidate-dismiss="{pending.id}"' in body
    assert 'value="triage-flaky-ci"' in body and "Old idea" not in body and "Not a candidate" not in body


def test_skills_tab_shows_installed_plugins_and_the_registry_with_what_may_be_installed(operator_client, settings):
    from plugins_app import services as plugin_services
    from plugins_app.models import OrgPluginAllowlist

    settings.PLUGINS_DIR = settings.BASE_DIR / "plugins"
    root = _ws("Org", runtime="autogen")
    workspace = _ws("Dev", runtime="autogen", parent=root)
    plugin_services.plugin_install(workspace_id=workspace.id, source="local://code-review")
    workspace.agent_card = {"skills": [{"id": "code-review", "name": "Code review"}]}
    workspace.save()
    OrgPluginAllowlist.objects.create(org=root, plugin_name="code-review")
    OrgPluginAllowlist.objects.create(org=root, plugin_name="incident-runbook")
    context = panels.skills_context(workspace)
    assert [p["name"] for p in context["installed"]] == ["code-review"]
    assert [(s["id"], s["from_plugin"]) for s in context["skills"]] == [("code-review", "code-review")]
    registry = {p["name"]: p for p in context["registry"]}
    assert registry["code-review"]["installed"] is True
    assert registry["shared-coding-rules"]["allowed"] is False
    assert registry["incident-runbook"]["supported_on_runtime"] is False  # not for autogen
    body = _get(operator_client, workspace, "skills/").content.decode()
    text = _text(_get(operator_client, workspace, "skills/"))
    assert "1 installed" in text and 'data-plugin-uninstall="code-review"' in body
    assert "Not allowed" in text and "Not for autogen" in text
    assert 'data-plugin-install="local://' not in body  # nothing left this workspace may install
    assert "github, local" in text


def test_skills_tab_says_docker_is_not_available_instead_of_nothing_installed(operator_client, settings, monkeypatch):
    from molecule_site.tests.backends import use_backend
    from workspaces.provisioners.docker import DockerProvisioner

    settings.PLUGINS_DIR = settings.BASE_DIR / "plugins"
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    use_backend(monkeypatch, DockerProvisioner())
    workspace = _ws("Dockerised", runtime="echo", agent_card={"skills": [{"id": "lookup", "name": "Lookup"}]})
    _candidate(workspace)
    response = _get(operator_client, workspace, "skills/")
    assert response.status_code == 200
    body, text = response.content.decode(), _text(response)
    assert "Docker not available: this workspace's files can't be read right now" in text
    assert "Installed skills (unknown)" in text and "Plugins ( unknown )" in text
    assert "0 installed" not in text and "No skills loaded" not in text
    assert "data-plugin-toggle disabled" in body and "data-plugin-registry hidden" in body
    assert "data-candidate-promote" in body  # what the database holds still shows
    assert "Registry · " in text  # and so does the registry


def test_skills_tab_without_anything_says_so_and_opens_the_registry(operator_client, settings, tmp_path):
    settings.PLUGINS_DIR = tmp_path / "empty-registry"
    workspace = _ws("Quiet", current_task="Skill promotion: Triage flaky CI")
    body = _get(operator_client, workspace, "skills/").content.decode()
    text = _text(_get(operator_client, workspace, "skills/"))
    assert "No skills loaded" in text and "Registry returned 0 plugins" in text and "0 installed" in text
    assert "Promoting a workflow to a skill: Triage flaky CI" in text
    assert "data-plugin-registry>" in body or 'data-plugin-registry hidden' not in body

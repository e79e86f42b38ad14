"""What the canvas's side panel shows (canvas spec §3): its header and one context per tab.

A selector module: it reads (activity, memory, events, files, peers) and shapes what it reads
for the templates; ``panel_views`` looks the workspace up, parses the query, and renders. The
panel only ever reads: every write it offers goes from the page to the platform API, which then
reloads the fragment, so each context is a rendering of what the selectors say.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import yaml
from django.utils import timezone

from activity import selectors as activity_selectors
from activity.models import StructureEvent
from memory import selectors as memory_selectors
from memory.models import MemoryScope
from metering import selectors as metering_selectors
from molecule_site.errors import ApiError
from plugins_app import registry as plugin_registry
from plugins_app import services as plugin_services
from plugins_app import skills as skill_services
from registry.selectors import workspace_peers
from schedules import cron
from schedules import selectors as schedule_selectors
from schedules.models import STALE_AFTER_EMPTY_REPLIES
from secrets_app.crypto import DecryptionError
from secrets_app.selectors import workspace_model
from traces import selectors as traces_selectors
from traces import services as traces_services
from workspaces import files, selectors
from workspaces.canvas import cards as canvas_cards
from workspaces.files import ConfigFiles
from workspaces.filestores import TOKEN_FILE
from workspaces.models import EXTERNAL_RUNTIME, Workspace, WorkspaceStatus
from workspaces.selectors import as_uuid
from workspaces.templates import CONFIG_FILE

# The tabs whose backend exists (issue 12 item 7); the shell template lists the same ids.
TABS = (
    ("chat", "Chat"), ("activity", "Activity"), ("details", "Details"), ("skills", "Skills"), ("terminal", "Terminal"),
    ("config", "Config"), ("schedule", "Schedule"), ("files", "Files"), ("memory", "Memory"), ("traces", "Traces"),
    ("events", "Events"),
)
TAB_IDS = tuple(tab for tab, _ in TABS)
TIER_LABELS = {1: "Sandboxed", 2: "Standard", 3: "Privileged", 4: "Full Access"}  # canvas spec §1.3
CHAT_HISTORY_LIMIT = 50
ACTIVITY_LIMIT = 100
EVENTS_LIMIT = 100
MEMORY_LIMIT = 50
FILES_DEPTH = files.MAX_DEPTH
PREVIEW_CHARS = 240
# The runtime's own follow-up after delegations finish: not something the operator said.
DELEGATION_SELF_MESSAGE = "Delegation results are ready"
# The Activity tab's filter chips (canvas spec §3.2): label → activity_type ("" = all).
ACTIVITY_FILTERS = (
    ("All", ""), ("A2A In", "a2a_receive"), ("A2A Out", "a2a_send"), ("Tasks", "task_update"),
    ("Logs", "agent_log"), ("Errors", "error"),
)
ACTIVITY_TYPES = {value for _, value in ACTIVITY_FILTERS if value}
COMMS_TYPES = ("a2a_send", "a2a_receive", "delegation")
EVENT_TONES = {
    "WORKSPACE_ONLINE": "green", "WORKSPACE_OFFLINE": "grey", "WORKSPACE_DEGRADED": "amber",
    "WORKSPACE_PROVISIONING": "blue", "WORKSPACE_REMOVED": "red", "WORKSPACE_PROVISION_FAILED": "red",
    "AGENT_CARD_UPDATED": "violet", "WORKSPACE_PAUSED": "indigo", "WORKSPACE_AWAITING_AGENT": "indigo",
}
STATUS_ICONS = {"ok": "✓", "completed": "✓", "error": "✕", "failed": "✕", "timeout": "◷", "pending": "…", "queued": "…"}
_GLOBAL_WRAPPER = re.compile(r"^\[MEMORY id=\S+ scope=GLOBAL from=\S+\]: ", re.DOTALL)


# --- small shapes -------------------------------------------------------------------------------------

@dataclass
class When:
    """A moment as the panel prints it: ISO for ``<time datetime>`` (the page localises clock
    times), a short relative age for lists."""

    iso: str
    age: str
    clock: str


def _when(value, now: datetime | None = None) -> When | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    now = now or timezone.now()
    return When(iso=value.isoformat(), age=age(value, now), clock=value.strftime("%H:%M"))


def age(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def duration(ms) -> str:
    if not isinstance(ms, int) or ms < 0:
        return ""
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- A2A bodies → text and files ------------------------------------------------------------------------

def _parts(value) -> list[dict]:
    return [p for p in value if isinstance(p, dict)] if isinstance(value, list) else []


def parts_text(parts) -> str:
    """The text parts joined by newlines (0.3 ``kind`` or the older ``type`` key, or bare text)."""
    texts = []
    for part in _parts(parts):
        kind = part.get("kind") or part.get("type") or "text"
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts).strip()


def parts_files(parts) -> list[dict]:
    """File parts as ``{name, uri, mime}`` (the chat's attachment chips)."""
    found = []
    for part in _parts(parts):
        if (part.get("kind") or part.get("type")) != "file" or not isinstance(part.get("file"), dict):
            continue
        file = part["file"]
        uri = file.get("uri")
        if isinstance(uri, str) and uri:
            name = file.get("name") if isinstance(file.get("name"), str) and file.get("name") else uri.rsplit("/", 1)[-1]
            found.append({"name": name, "uri": uri, "mime": file.get("mimeType") or ""})
    return found


def request_message(body) -> tuple[str, list[dict]]:
    """What the sender said in a JSON-RPC ``message/send`` body."""
    params = body.get("params") if isinstance(body, dict) else None
    message = params.get("message") if isinstance(params, dict) else None
    if not isinstance(message, dict):
        return "", []
    return parts_text(message.get("parts")), parts_files(message.get("parts"))


def reply_message(body) -> tuple[str, list[dict]]:
    """What the agent answered: a Message result (``result.parts``), a Task result (its
    artifacts and status message), or a notify row's ``{"result": text, "parts": […]}``."""
    if not isinstance(body, dict):
        return "", []
    result = body.get("result")
    if isinstance(result, str):
        return result.strip(), parts_files(body.get("parts"))
    if not isinstance(result, dict):
        return "", []
    parts = list(_parts(result.get("parts")))
    for artifact in _parts(result.get("artifacts")):
        parts.extend(_parts(artifact.get("parts")))
    status = result.get("status")
    if not parts and isinstance(status, dict) and isinstance(status.get("message"), dict):
        parts = _parts(status["message"].get("parts"))
    return parts_text(parts), parts_files(parts)


def rpc_error(body) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return error if isinstance(error, str) else ""


# --- the chat (canvas spec §3.1) ----------------------------------------------------------------------------

@dataclass
class Bubble:
    role: str  # "user" | "agent" | "system"
    text: str
    when: When | None
    files: list[dict] = field(default_factory=list)
    key: str = ""  # the reply's message/task id, so the page can drop a live duplicate


def _reply_key(body) -> str:
    result = body.get("result") if isinstance(body, dict) else None
    if isinstance(result, dict):
        return str(result.get("messageId") or result.get("id") or result.get("taskId") or "")
    return ""


def _scheduled(body) -> bool:
    message = (body.get("params") or {}).get("message") if isinstance(body, dict) else None
    metadata = message.get("metadata") if isinstance(message, dict) else None
    return isinstance(metadata, dict) and metadata.get("source") == "cron"


def chat_history(items: list[dict]) -> list[Bubble]:
    """My Chat, oldest first, from ``a2a_receive`` rows the operator started (no source), given
    newest first as the activity selector answers.

    Each row is the operator's message and the agent's reply (or why there is none); a notify
    row is an agent push with no request. The runtime's "Delegation results are ready…"
    follow-ups are internal and left out, and so are scheduled prompts (the platform's
    ``system:cron`` caller also has no source): the Schedule tab shows those runs.
    """
    bubbles: list[Bubble] = []
    now = timezone.now()
    for item in reversed(items):  # the selector answers newest first
        when = _when(item["created_at"], now)
        text, attached = request_message(item.get("request_body"))
        if text.startswith(DELEGATION_SELF_MESSAGE) or _scheduled(item.get("request_body")):
            continue
        if item.get("method") != "notify" and (text or attached):
            bubbles.append(Bubble("user", text, when, attached))
        reply, reply_files = reply_message(item.get("response_body"))
        error = rpc_error(item.get("response_body"))
        if reply or reply_files:
            bubbles.append(Bubble("agent", reply, when, reply_files, _reply_key(item.get("response_body"))))
        elif item.get("status") == "error" or error:
            bubbles.append(Bubble("system", error or item.get("error_detail") or "The agent did not answer.", when))
    return bubbles


@dataclass
class Comm:
    outgoing: bool
    peer_id: str
    peer_name: str
    text: str
    status: str
    kind: str
    when: When | None


def _names(ids) -> dict[str, str]:
    wanted = [parsed for parsed in (as_uuid(i) for i in ids if i) if parsed is not None]
    if not wanted:
        return {}
    return {str(pk): name for pk, name in Workspace.objects.filter(pk__in=wanted).values_list("id", "name")}


def _comm_text(item: dict) -> str:
    request, response = item.get("request_body"), item.get("response_body")
    if item.get("activity_type") == "delegation":
        if isinstance(response, dict) and isinstance(response.get("text"), str):
            return response["text"]
        if isinstance(request, dict) and isinstance(request.get("task"), str):
            return request["task"]
    said, _ = request_message(request)
    answered, _ = reply_message(response)
    return said or answered or item.get("summary") or ""


def agent_comms(workspace_id: str, items: list[dict]) -> list[Comm]:
    """Agent Comms, oldest first: A2A and delegation rows with an agent source, as "→ To X"
    (this workspace started it) or "← From X" (a peer did)."""
    rows = [i for i in items if i.get("activity_type") in COMMS_TYPES]
    names = _names({i.get("source_id") for i in rows} | {i.get("target_id") for i in rows})
    now = timezone.now()
    comms = []
    for item in reversed(rows):  # newest first from the selector
        outgoing = item.get("source_id") == workspace_id
        peer = (item.get("target_id") if outgoing else item.get("source_id")) or ""
        if outgoing and peer == workspace_id:
            peer = ""
        comms.append(Comm(
            outgoing=outgoing, peer_id=peer, peer_name=names.get(peer, peer[:8] or "a peer"),
            text=_preview(_comm_text(item), 600), status=item.get("status") or "", kind=item.get("method") or item["activity_type"],
            when=_when(item["created_at"], now),
        ))
    return comms


# --- the contexts, one per fragment ---------------------------------------------------------------------------

def _card(workspace: Workspace) -> canvas_cards.Card:
    return canvas_cards.Card(workspace=workspace)


def _base(workspace: Workspace) -> dict:
    return {"ws": workspace, "card": _card(workspace), "id": str(workspace.id)}


def header_context(workspace: Workspace) -> dict:
    """The header: status, name, role, tier, capability pills and the current task."""
    return {**_base(workspace), "tier_label": TIER_LABELS.get(workspace.tier, "")}


def comms_context(workspace: Workspace) -> dict:
    """Agent Comms alone, for the chat's live refresh."""
    return {**_base(workspace), "comms": _comms(workspace)}


def _comms(workspace: Workspace) -> list[Comm]:
    items = activity_selectors.activity_list(
        workspace_id=workspace.id, activity_type=None, from_agents=True, limit=CHAT_HISTORY_LIMIT)
    return agent_comms(str(workspace.id), items)


def chat_context(workspace: Workspace) -> dict:
    items = activity_selectors.activity_list(
        workspace_id=workspace.id, activity_type="a2a_receive", from_agents=False, limit=CHAT_HISTORY_LIMIT)
    return {
        **_base(workspace), "bubbles": chat_history(items), "comms": _comms(workspace),
        "can_chat": workspace.status in (WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED),
        "status_label": canvas_cards.status_label(workspace.status).lower(),
    }


@dataclass
class ActivityRow:
    item: dict
    when: When | None
    source_name: str
    target_name: str
    sent: str
    answered: str
    raw: list[tuple[str, str]]
    icon: str
    duration: str


def activity_context(workspace: Workspace, *, kind: str) -> dict:
    """The rows of one filter chip: ``kind`` is one of ``ACTIVITY_TYPES``, or "" for all."""
    items = activity_selectors.activity_list(
        workspace_id=workspace.id, activity_type=kind or None, from_agents=None, limit=ACTIVITY_LIMIT)
    names = _names({i.get("source_id") for i in items} | {i.get("target_id") for i in items})
    now = timezone.now()
    rows = []
    for item in items:
        sent, _ = request_message(item.get("request_body"))
        answered, _ = reply_message(item.get("response_body"))
        raw = [(key, _pretty(item[key])) for key in activity_selectors.ACTIVITY_OPTIONAL_KEYS if key in item]
        rows.append(ActivityRow(
            item=item, when=_when(item["created_at"], now),
            source_name=names.get(item.get("source_id") or "", ""), target_name=names.get(item.get("target_id") or "", ""),
            sent=_preview(sent, 600), answered=_preview(answered, 600), raw=raw,
            icon=STATUS_ICONS.get(item.get("status") or "", "•"), duration=duration(item.get("duration_ms")),
        ))
    return {**_base(workspace), "rows": rows, "filters": ACTIVITY_FILTERS, "kind": kind}


def _model(workspace: Workspace) -> tuple[str, str]:
    """The model and where it comes from: the ``MODEL_PROVIDER`` secret, else config.yaml."""
    try:
        model = workspace_model(workspace.id)
    except DecryptionError:
        return "", "unreadable secret"
    if model:
        return model, "workspace secret"
    config_model = ConfigFiles(workspace).config().get("model")
    return (config_model, "config.yaml") if isinstance(config_model, str) and config_model else ("", "default")


def details_context(workspace: Workspace) -> dict:
    model, model_source = _model(workspace)
    discoverable = workspace.status in (WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED)
    # Server-side on purpose: GET /registry/:id/peers takes the workspace's own token, not a session.
    peers = (workspace_peers(workspace.id) or []) if discoverable else []
    card = workspace.agent_card if isinstance(workspace.agent_card, dict) else None
    skills = [s for s in (card or {}).get("skills") or [] if isinstance(s, dict)]
    parent = Workspace.objects.filter(pk=workspace.parent_id).values("id", "name").first() if workspace.parent_id else None
    return {
        **_base(workspace), "model": model, "model_source": model_source, "tiers": sorted(TIER_LABELS.items()),
        "tier_label": TIER_LABELS.get(workspace.tier, ""), "parent": parent,
        "discoverable": discoverable, "peers": peers, "agent_card": card, "agent_card_json": _pretty(card) if card else "",
        "skills": skills, "has_children": bool(selectors.children_of(workspace.id)),
        "can_restart": workspace.status in (WorkspaceStatus.OFFLINE, WorkspaceStatus.FAILED, WorkspaceStatus.DEGRADED),
        "show_error": workspace.status in (WorkspaceStatus.FAILED, WorkspaceStatus.DEGRADED) and bool(workspace.last_sample_error),
        "error_rate_pct": round(workspace.last_error_rate * 100),
        "spend": spend_context(workspace),
    }


SPEND_DAYS = 30
CHART_WIDTH, CHART_HEIGHT = 300, 64


def _dollars(cents) -> str:
    return f"${cents / 100:,.2f}"


def _tokens(count: int) -> str:
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if count >= size:
            return f"{count / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(count)


def spend_context(workspace: Workspace) -> dict:
    """The Details tab's spend: this month against the budget as a bar, and the last 30 days'
    tokens as bars of an inline SVG chart (one per UTC day, zero days included)."""
    summary = metering_selectors.budget_summary(workspace)
    limit, spend = summary["budget_limit"], summary["monthly_spend"]
    percent = None if not limit else round(100 * spend / limit)
    tone = "none" if percent is None else "red" if percent >= 100 else "amber" if percent >= 80 else "green"
    used = {row["date"]: row for row in metering_selectors.usage_daily(workspace.id, days=SPEND_DAYS)}
    today = timezone.now().astimezone(UTC).date()
    days = [today - timedelta(days=back) for back in range(SPEND_DAYS - 1, -1, -1)]
    totals = [(day, used.get(day.isoformat())) for day in days]
    peak = max((row["input_tokens"] + row["output_tokens"] for _, row in totals if row), default=0)
    slot = CHART_WIDTH / SPEND_DAYS
    bars = []
    for index, (day, row) in enumerate(totals):
        tokens = row["input_tokens"] + row["output_tokens"] if row else 0
        height = round(CHART_HEIGHT * tokens / peak, 1) if peak else 0
        if tokens and height < 2:
            height = 2  # a day with any use stays visible beside a big one
        bars.append({"x": round(index * slot + 1, 1), "y": round(CHART_HEIGHT - height, 1), "width": round(slot - 2, 1),
                     "height": height, "title": f"{day.isoformat()}: {tokens:,} tokens"
                     + (f" · {_dollars(row['cost_cents'])}" if row else "")})
    return {
        "spend": _dollars(spend), "limit": _dollars(limit) if limit is not None else "",
        "remaining": _dollars(summary["budget_remaining"]) if limit is not None else "",
        "percent": percent, "bar_percent": min(percent, 100) if percent is not None else 0, "tone": tone,
        "bars": bars, "peak": _tokens(peak),
        "window_tokens": _tokens(sum(row["input_tokens"] + row["output_tokens"] for _, row in totals if row)),
        "has_usage": peak > 0, "chart_width": CHART_WIDTH, "chart_height": CHART_HEIGHT,
        "first_day": days[0], "last_day": days[-1],
    }


def terminal_context(workspace: Workspace) -> dict:
    """The Terminal tab's frame; the page connects it to ``/workspaces/<id>/terminal`` itself."""
    return _base(workspace)


def yaml_problem(text: str) -> str:
    """Why ``text`` is not a usable config.yaml ("" when it is): the YAML error with its line,
    or a top level that is not a mapping."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return f"config.yaml is not valid YAML: {problem}{where}"
    if loaded is not None and not isinstance(loaded, dict):
        return "config.yaml must be a mapping of settings (key: value), not a single value or a list."
    return ""


def _read_config(workspace: Workspace) -> str | None:
    try:
        return files.file_read(workspace_id=workspace.id, root=None, path=CONFIG_FILE)["content"]
    except ApiError:
        return None


def config_context(workspace: Workspace) -> dict:
    external = workspace.runtime == EXTERNAL_RUNTIME
    content = None if external else _read_config(workspace)
    return {
        **_base(workspace), "external": external, "content": content or "", "exists": content is not None,
        "problem": yaml_problem(content) if content else "",
    }


@dataclass
class FileNode:
    name: str
    path: str
    dir: bool
    size: int = 0
    children: list[FileNode] = field(default_factory=list)


def file_tree(entries: list[dict]) -> list[FileNode]:
    """``[{path, size, dir}]`` → nested nodes, directories first, then by name."""
    nodes: dict[str, FileNode] = {}
    roots: list[FileNode] = []
    for entry in sorted(entries, key=lambda e: e["path"]):
        path = entry["path"].strip("/")
        if not path or path in nodes:
            continue
        node = FileNode(name=path.rsplit("/", 1)[-1], path=path, dir=bool(entry.get("dir")), size=entry.get("size") or 0)
        nodes[path] = node
        parent = nodes.get(path.rsplit("/", 1)[0]) if "/" in path else None
        (parent.children if parent is not None else roots).append(node)

    def order(level: list[FileNode]) -> list[FileNode]:
        level.sort(key=lambda n: (not n.dir, n.name.lower()))
        for node in level:
            order(node.children)
        return level

    return order(roots)


def files_context(workspace: Workspace) -> dict:
    try:
        entries = files.files_list(workspace_id=workspace.id, root=files.CONFIGS, path=None, depth=FILES_DEPTH)
    except ApiError:
        entries = []
    # The runtime's platform token lives in /configs: a credential, not a file to show or edit here.
    entries = [e for e in entries if e["path"] != TOKEN_FILE]
    return {
        **_base(workspace), "tree": file_tree(entries), "file_count": sum(1 for e in entries if not e.get("dir")),
        "root": files.CONFIGS,
    }


def memory_context(workspace: Workspace, *, scope: str, q: str) -> dict:
    """One scope's memories matching ``q`` ("" for all), and the key/value entries."""
    found = memory_selectors.agent_memory_search(workspace_id=workspace.id, scope=scope, q=q, limit=MEMORY_LIMIT)
    owners = _names({m["workspace_id"] for m in found})
    now = timezone.now()
    memories = [{
        **m, "text": _GLOBAL_WRAPPER.sub("", m["content"]), "own": m["workspace_id"] == str(workspace.id),
        "owner": owners.get(m["workspace_id"], m["workspace_id"][:8]), "when": _when(m["created_at"], now),
    } for m in found]
    entries = [{**e, "value_json": _pretty(e["value"]), "when": _when(e["updated_at"], now)}
               for e in memory_selectors.workspace_memory_list(workspace_id=workspace.id)]
    return {
        **_base(workspace), "scopes": MemoryScope.values, "scope": scope, "q": q, "memories": memories,
        "entries": entries,
    }


def event_summary(payload) -> str:
    """The payload's scalar fields in one line (``error: …, name: …``), for scanning the list."""
    if not isinstance(payload, dict):
        return ""
    fields = [f"{key}: {value}" for key, value in payload.items() if isinstance(value, (str, int, float)) and value != ""]
    return _preview(", ".join(fields), 160)


def events_context(workspace: Workspace) -> dict:
    now = timezone.now()
    events = [{
        "id": str(e.id), "type": e.event_type, "tone": EVENT_TONES.get(e.event_type, ""), "when": _when(e.created_at, now),
        "payload": _pretty(e.payload if e.payload is not None else {}), "summary": event_summary(e.payload),
    } for e in StructureEvent.objects.filter(workspace_id=workspace.id).order_by("-created_at")[:EVENTS_LIMIT]]
    return {**_base(workspace), "events": events}


# --- traces (canvas spec §3.9): recent traces as waterfalls, beside the agent's live transcript -------------------

TRACES_LIMIT = 20
WATERFALLS = 5  # the newest traces come with their span tree; older ones open on a click
TRANSCRIPT_LIMIT = 200  # lines shown: the newest of the most the runtime hands out in one read
TRANSCRIPT_READ = 1000
TRANSCRIPT_READS = 5
SPAN_ATTRIBUTES_SHOWN = 24


def _milliseconds(ms) -> str:
    if not isinstance(ms, (int, float)) or ms < 0:
        return ""
    return f"{ms:.1f} ms" if ms < 10 else f"{round(ms)} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _span_rows(tree: dict) -> list[dict]:
    """Each span of ``tree`` (depth-first, as the selector orders them) with its bar's place on the
    trace's time axis in percent; a span too short to see keeps a sliver."""
    spans = tree.get("spans") or []
    total = max((s["offset_ms"] + s["duration_ms"] for s in spans), default=0) or 1
    rows = []
    for span in spans:
        attributes = span.get("attributes") or {}
        left = min(100.0, 100 * span["offset_ms"] / total)
        width = max(0.6, min(100.0 - left, 100 * span["duration_ms"] / total))
        rows.append({
            "id": span["span_id"], "name": span["name"], "service": span.get("service") or "", "depth": span["depth"],
            "status": span.get("status") or "unset", "left": round(left, 2), "width": round(width, 2),
            "duration": _milliseconds(span["duration_ms"]), "offset": _milliseconds(span["offset_ms"]),
            "platform": (span.get("service") or "").startswith("molecule-platform"),
            "attributes": sorted(attributes.items())[:SPAN_ATTRIBUTES_SHOWN],
            "tokens": (attributes.get("gen_ai.usage.input_tokens") or 0) + (attributes.get("gen_ai.usage.output_tokens") or 0)
            if all(isinstance(attributes.get(k, 0), int) for k in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")) else 0,
        })
    return rows


def traces_context(workspace: Workspace) -> dict:
    """Recent traces of the workspace, newest first, the newest few with their waterfall."""
    now = timezone.now()
    listing = traces_selectors.workspace_traces(workspace.id, limit=TRACES_LIMIT)
    rows = []
    for index, item in enumerate(listing["data"]):
        tree = traces_selectors.trace_tree(workspace.id, item["id"]) if index < WATERFALLS else None
        usage = item.get("usage") or {}
        rows.append({
            "id": item["id"], "name": item["name"], "status": item["status"], "when": _when(item["timestamp"], now),
            "latency": _milliseconds((item.get("latency") or 0) * 1000), "tokens": usage.get("total") or 0,
            "cost": f"${item['totalCost'] / 100:.4f}" if isinstance(item.get("totalCost"), (int, float)) and item["totalCost"] else "",
            "span_count": item.get("spans") or 0, "input": _pretty(item["input"]) if item.get("input") is not None else "",
            "output": _pretty(item["output"]) if item.get("output") is not None else "",
            "spans": _span_rows(tree) if tree else None,
        })
    return {**_base(workspace), "traces": rows, "external_url": listing.get("external_url") or ""}


def trace_context(workspace: Workspace, trace_id: str) -> dict | None:
    """One trace's waterfall, for a row opened beyond the first few (None: not this workspace's)."""
    tree = traces_selectors.trace_tree(workspace.id, trace_id)
    return None if tree is None else {**_base(workspace), "trace_id": tree["id"], "spans": _span_rows(tree)}


def transcript_context(workspace: Workspace, *, since: int = 0) -> dict:
    """The agent's live transcript (``<url>/transcript``), or why there is none."""
    if workspace.status not in (WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED):
        return {**_base(workspace), "transcript": None, "problem": "The transcript is live: it shows while the agent is online."}
    read: list = []
    try:
        for _ in range(TRANSCRIPT_READS):  # from the start, keeping the tail: the runtime pages forward only
            body = traces_services.transcript_fetch(workspace=workspace, since=since, limit=TRANSCRIPT_READ)
            page = body.get("lines") if isinstance(body.get("lines"), list) else []
            read = (read + page)[-(TRANSCRIPT_LIMIT + 1):]
            since = body.get("cursor") if isinstance(body.get("cursor"), int) else since + len(page)
            if not body.get("more") or not page:
                break
    except ApiError as exc:
        return {**_base(workspace), "transcript": None, "problem": f"The agent did not answer: {exc.body.get('error')}"}
    now = timezone.now()
    lines = []
    for line in read[-TRANSCRIPT_LIMIT:]:
        if not isinstance(line, dict):
            continue
        ts = line.get("ts")
        when = _when(datetime.fromtimestamp(ts, UTC), now) if isinstance(ts, (int, float)) and 0 < ts < 1e11 else None
        lines.append({"role": str(line.get("role") or ""), "text": str(line.get("text") or ""), "when": when})
    return {**_base(workspace), "transcript": {"supported": bool(body.get("supported")), "lines": lines,
                                                "runtime": body.get("runtime") or "",
                                                "earlier": len(read) > TRANSCRIPT_LIMIT},
            "problem": ""}


# --- schedule (canvas spec §3.11): cron prompts, their next runs and their history -------------------------------

SCHEDULE_HISTORY = 5  # runs shown per schedule
SCHEDULE_HISTORY_READ = 200  # cron_run rows read for all of a workspace's schedules together
SCHEDULE_TONES = {"ok": "green", "stale": "amber", "error": "red"}
RUN_ICONS = {**STATUS_ICONS, "stale": "◌", "skipped": "↷"}
COMMON_TIMEZONES = (
    "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
    "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo",
    "Australia/Sydney",
)


def until(moment: datetime, now: datetime) -> str:
    seconds = int((moment - now).total_seconds())
    if seconds <= 0:
        return "due now"
    if seconds < 60:
        return f"in {seconds}s"
    if seconds < 3600:
        return f"in {seconds // 60}m"
    if seconds < 86400:
        return f"in {seconds // 3600}h {seconds % 3600 // 60}m" if seconds % 3600 >= 60 else f"in {seconds // 3600}h"
    return f"in {seconds // 86400}d"


def _schedule_runs(workspace: Workspace) -> dict[str, list[dict]]:
    """The last runs of each schedule of the workspace, newest first (one read)."""
    now = timezone.now()
    runs: dict[str, list[dict]] = {}
    rows = (
        workspace.activity.filter(activity_type=schedule_selectors.ACTIVITY_TYPE)
        .order_by("-created_at")[:SCHEDULE_HISTORY_READ]
    )
    for row in rows:
        body = row.request_body if isinstance(row.request_body, dict) else {}
        bucket = runs.setdefault(str(body.get("schedule_id")), [])
        if len(bucket) >= SCHEDULE_HISTORY:
            continue
        item = schedule_selectors.run_item(row)
        bucket.append({**item, "icon": RUN_ICONS.get(row.status, "•"), "when": _when(row.created_at, now),
                       "duration": duration(row.duration_ms), "manual": bool(body.get("manual"))})
    return runs


def schedule_context(workspace: Workspace) -> dict:
    """The Schedule tab: every schedule with its description, next/last run and recent history."""
    now = timezone.now()
    runs = _schedule_runs(workspace)
    rows = []
    for schedule in schedule_selectors.workspace_schedules(workspace.id):
        shown = schedule_selectors.preview(schedule.cron_expr, schedule.timezone, count=1, now=now)
        rows.append({
            "id": str(schedule.id), "name": schedule.name, "cron_expr": schedule.cron_expr,
            "timezone": schedule.timezone, "prompt": schedule.prompt, "enabled": schedule.enabled,
            "source": schedule.source, "status": schedule.status, "tone": SCHEDULE_TONES.get(schedule.status, "grey"),
            "description": shown["description"], "consecutive_empty": schedule.consecutive_empty,
            "run_count": schedule.run_count, "last_status": schedule.last_status, "last_error": schedule.last_error,
            "last_icon": RUN_ICONS.get(schedule.last_status or "", ""),
            "last": _when(schedule.last_run_at, now),
            "next": _when(schedule.next_fire_at, now) if schedule.enabled else None,
            "next_in": until(schedule.next_fire_at, now) if schedule.enabled and schedule.next_fire_at else "",
            "next_local": (schedule.next_fire_at.astimezone(cron.zone(schedule.timezone)).strftime("%a %d %b, %H:%M %Z")
                           if schedule.enabled and schedule.next_fire_at else ""),
            "deferred": schedule.defer_until is not None,
            "history": runs.get(str(schedule.id), []),
        })
    return {**_base(workspace), "schedules": rows, "timezones": COMMON_TIMEZONES,
            "stale_after": STALE_AFTER_EMPTY_REPLIES}


def schedule_preview_context(cron_expr: str, timezone_name: str) -> dict:
    """The form's live preview: what the expression means and its next runs in its zone."""
    now = timezone.now()
    shown = schedule_selectors.preview(cron_expr, timezone_name or "UTC", now=now)
    for run in shown["runs"]:
        run["in"] = until(datetime.fromisoformat(run["at"].replace("Z", "+00:00")), now)
    return {"preview": shown, "cron_expr": cron_expr}


# --- skills and plugins (canvas spec §3.4) ------------------------------------------------------------------------

PROMOTION_TASK_PREFIX = "Skill promotion:"


def _skill_md(view: ConfigFiles, skill_id: str) -> str:
    text = view.read_text(f"skills/{skill_id}/SKILL.md")
    return text or ""


def skills_context(workspace: Workspace) -> dict:
    """The Skills tab: the skills the agent card announces (with their SKILL.md and version), the
    pending promotion candidates, the installed plugins and the registry to install from."""
    now = timezone.now()
    skills, installed, unavailable = [], [], ""
    try:  # a store that cannot be reached (Docker down) says so instead of "nothing installed"
        with files.store_reachable():
            view = ConfigFiles(workspace)
            installed = plugin_services.plugins_installed(workspace_id=workspace.id)
            plugin_of = {skill: plugin["name"] for plugin in installed for skill in plugin["skills"]}
            for skill in skill_services.skills_list(workspace_id=workspace.id):
                skills.append({**skill, "skill_md": _skill_md(view, skill["id"]) if skill["in_files"] else "",
                               "from_plugin": "" if skill["in_files"] else plugin_of.get(skill["id"], "")})
    except ApiError as exc:
        if exc.status != 503:
            raise
        skills, installed, unavailable = [], [], exc.body["error"]
    candidates = [{**c, "when": _when(c["created_at"], now),
                   "procedure": skill_services.procedure_text(c["packet"], c["summary"] or ""),
                   "repetition": c["packet"].get("repetition_signal")}
                  for c in skill_services.candidates_pending(workspace_id=workspace.id)]
    installed_names = {p["name"] for p in installed}
    allowed = plugin_services.allowlist_names(plugin_services.org_root_id(workspace))
    registry = [{**entry, "installed": entry["name"] in installed_names,
                 "allowed": not allowed or entry["name"] in allowed}
                for entry in plugin_registry.registry_list(workspace.runtime or "")]
    task = workspace.current_task or ""
    return {
        **_base(workspace), "skills": skills, "candidates": candidates, "installed": installed,
        "registry": registry, "schemes": plugin_services.sources()["schemes"], "files_unavailable": unavailable,
        "promotion_task": task[len(PROMOTION_TASK_PREFIX):].strip() if task.startswith(PROMOTION_TASK_PREFIX) else "",
    }

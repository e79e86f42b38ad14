// The side panel's Chat tab (canvas spec §3.1): My Chat (the operator ↔ the agent) and Agent
// Comms (read-only). History is server-rendered; this module renders its markdown, sends
// messages through the A2A proxy and shows the reply from whichever arrives first — the HTTP
// answer, a WS A2A_RESPONSE or an AGENT_MESSAGE push — once.

import { api, fragment } from "./api.js";
import { marked } from "../vendor/marked-18.2.1.esm.js";
import DOMPurify from "../vendor/purify-3.5.0.es.mjs";

const SEND_TIMEOUT_MS = 120000;
const UPLOAD_TIMEOUT_MS = 60000;
const HISTORY_TURNS = 20;
const TEXT_DEDUPE_MS = 30000; // a push repeating a reply just shown is the same message
const THINKING_LINES = 4;
const SEND_FAILED = "Failed to send message — agent may be unreachable";
const CHATTY = new Set(["online", "degraded"]);
const FILE_ICON = '<svg class="icon" viewBox="0 0 24 24" width="12" height="12" aria-hidden="true"><path d="M13 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z"/><path d="M13 2v7h7"/></svg>';

let chat = null; // the mounted chat: one at a time, for the selected workspace

// --- markdown, times ---------------------------------------------------------------------------

// Agent text is untrusted: marked renders it, DOMPurify keeps only inert markup, links open
// in a new tab without an opener.
export function renderMarkdown(root) {
  for (const el of root.querySelectorAll("[data-md]:not([data-md-done])")) {
    const raw = el.textContent;
    el.dataset.raw = raw;
    el.innerHTML = DOMPurify.sanitize(marked.parse(raw, { gfm: true, breaks: true }));
    for (const link of el.querySelectorAll("a[href]")) { link.target = "_blank"; link.rel = "noopener noreferrer"; }
    el.dataset.mdDone = "true";
  }
}

export function localiseTimes(root) {
  for (const el of root.querySelectorAll("time[data-clock]")) {
    const date = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    el.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    el.title = date.toLocaleString();
  }
}

// crypto.randomUUID needs a secure context; an operator may open the canvas over plain http.
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// --- A2A bodies --------------------------------------------------------------------------------

function textOf(parts) {
  return (Array.isArray(parts) ? parts : [])
    .filter((p) => p && (p.kind || p.type || "text") === "text" && typeof p.text === "string")
    .map((p) => p.text).join("\n").trim();
}
function filesOf(parts) {
  return (Array.isArray(parts) ? parts : [])
    .filter((p) => p && (p.kind || p.type) === "file" && p.file && p.file.uri)
    .map((p) => ({ name: p.file.name || String(p.file.uri).split("/").pop(), uri: p.file.uri, mime: p.file.mimeType || "" }));
}

// A JSON-RPC answer → {key, text, files, error}: a Message result, a Task result (artifacts,
// then its status message) or a bare string.
export function replyOf(body) {
  if (!body || typeof body !== "object") return { key: "", text: typeof body === "string" ? body : "", files: [], error: "" };
  if (body.error) return { key: "", text: "", files: [], error: typeof body.error === "string" ? body.error : body.error.message || "agent error" };
  const result = body.result;
  if (typeof result === "string") return { key: "", text: result.trim(), files: filesOf(body.parts), error: "" };
  if (!result || typeof result !== "object") return { key: "", text: "", files: [], error: "" };
  let parts = [...(Array.isArray(result.parts) ? result.parts : [])];
  for (const artifact of Array.isArray(result.artifacts) ? result.artifacts : []) parts.push(...(artifact?.parts || []));
  if (!parts.length && result.status?.message) parts = result.status.message.parts || [];
  return { key: String(result.messageId || result.id || result.taskId || ""), text: textOf(parts), files: filesOf(parts), error: "" };
}

// --- the mounted chat --------------------------------------------------------------------------

class Chat {
  constructor(el, ctx) {
    this.el = el;
    this.ctx = ctx;
    this.id = ctx.id;
    this.root = el.querySelector(".chat");
    this.log = el.querySelector(".chat-log");
    this.form = el.querySelector(".chat-composer");
    this.text = el.querySelector(".chat-text");
    this.fileInput = el.querySelector(".chat-files");
    this.pendingList = el.querySelector(".chat-pending");
    this.errorEl = el.querySelector(".chat-error");
    this.files = [];
    this.waiting = [];          // sends without a reply yet, oldest first: {started}
    this.seenIds = new Set();
    this.seenTexts = new Map(); // text → when it was shown
    this.thinkingEl = null;
    this.thinkingLines = [];
    this.timer = null;
    this.commsTimer = null;
    this.alive = true;
    for (const bubble of this.log.querySelectorAll(".bubble[data-key]")) this.seenIds.add(bubble.dataset.key);
    renderMarkdown(el);
    localiseTimes(el);
    this.scrollDown();
    this.refreshComposer();
    this.bind();
  }

  bind() {
    this.el.addEventListener("click", this.onClick = (event) => {
      const view = event.target.closest("[data-chat-view]");
      if (view) { this.showView(view.dataset.chatView); return; }
      if (event.target.closest("[data-chat-attach]")) { this.fileInput.click(); return; }
      const remove = event.target.closest("[data-remove-file]");
      if (remove) { this.files.splice(Number(remove.dataset.removeFile), 1); this.renderPending(); return; }
      if (event.target.closest("[data-chat-restart]")) this.ctx.restart();
    });
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.send(); });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); this.send(); }
    });
    this.text.addEventListener("input", () => this.autosize());
    this.fileInput.addEventListener("change", () => {
      this.addFiles(this.fileInput.files);
      this.fileInput.value = "";
    });
    const pane = this.el.querySelector('[data-chat-pane="mine"]');
    pane.addEventListener("dragover", (event) => {
      if (!this.canChat() || !event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault();
      pane.classList.add("is-drop");
    });
    pane.addEventListener("dragleave", (event) => { if (!pane.contains(event.relatedTarget)) pane.classList.remove("is-drop"); });
    pane.addEventListener("drop", (event) => {
      pane.classList.remove("is-drop");
      if (!this.canChat() || !event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.addFiles(event.dataTransfer.files);
    });
  }

  destroy() {
    this.alive = false;
    clearInterval(this.timer);
    clearTimeout(this.commsTimer);
  }

  showView(name) {
    for (const button of this.el.querySelectorAll("[data-chat-view]")) {
      const on = button.dataset.chatView === name;
      button.classList.toggle("is-active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    for (const pane of this.el.querySelectorAll("[data-chat-pane]")) pane.hidden = pane.dataset.chatPane !== name;
    if (name === "mine") this.scrollDown();
  }

  // --- composer ------------------------------------------------------------------------------
  status() { return this.ctx.canvas.card(this.id)?.dataset.status || null; }
  canChat() {
    const status = this.status();
    return status ? CHATTY.has(status) : this.root.dataset.canChat === "true";
  }
  refreshComposer() {
    const can = this.canChat();
    const label = this.ctx.statusLabel(this.status()) || this.root.dataset.statusLabel;
    this.text.disabled = !can;
    this.text.placeholder = can ? `Message ${this.root.dataset.name}…  (Enter sends, Shift+Enter: new line)` : `Agent is ${label.toLowerCase()}`;
    this.form.querySelector(".chat-send").disabled = !can;
    this.form.querySelector(".chat-attach").disabled = !can;
  }
  autosize() {
    this.text.style.height = "auto";
    this.text.style.height = `${Math.min(this.text.scrollHeight, 180)}px`;
  }
  addFiles(list) {
    for (const file of list) this.files.push(file);
    this.renderPending();
  }
  renderPending() {
    this.pendingList.replaceChildren(...this.files.map((file, index) => {
      const li = document.createElement("li");
      li.className = "pending-file";
      li.insertAdjacentHTML("beforeend", FILE_ICON);
      li.append(file.name);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "pending-remove";
      remove.dataset.removeFile = index;
      remove.setAttribute("aria-label", `Remove ${file.name}`);
      remove.textContent = "×";
      li.append(remove);
      return li;
    }));
    this.pendingList.hidden = this.files.length === 0;
  }
  showError(message, detail = "") {
    this.errorEl.replaceChildren();
    const text = document.createElement("span");
    text.textContent = message;
    this.errorEl.append(text);
    if (detail) {
      const small = document.createElement("small");
      small.textContent = ` (${detail})`;
      this.errorEl.append(small);
    }
    const status = this.status();
    if (status && !CHATTY.has(status) && status !== "provisioning") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-small";
      button.dataset.chatRestart = "";
      button.textContent = "Restart workspace";
      this.errorEl.append(button);
    }
    this.errorEl.hidden = false;
  }
  hideError() { this.errorEl.hidden = true; }

  // --- bubbles -------------------------------------------------------------------------------
  history() {
    const turns = [...this.log.querySelectorAll('.bubble[data-role="user"], .bubble[data-role="agent"]')].slice(-HISTORY_TURNS);
    return turns.map((bubble) => {
      const body = bubble.querySelector(".bubble-body");
      return { role: bubble.dataset.role === "user" ? "user" : "agent", parts: [{ kind: "text", text: body.dataset.raw ?? body.textContent }] };
    }).filter((turn) => turn.parts[0].text);
  }
  addBubble(role, text, files = [], key = "") {
    this.log.querySelector(".chat-empty")?.setAttribute("hidden", "");
    const bubble = document.createElement("div");
    bubble.className = `bubble is-${role}`;
    bubble.dataset.role = role;
    if (key) bubble.dataset.key = key;
    const body = document.createElement("div");
    body.className = "bubble-body";
    body.textContent = text;
    if (role !== "system") body.dataset.md = "";
    bubble.append(body);
    if (files.length) bubble.append(this.fileChips(files));
    const time = document.createElement("time");
    time.className = "bubble-time";
    time.dateTime = new Date().toISOString();
    time.dataset.clock = "";
    bubble.append(time);
    (this.thinkingEl && this.thinkingEl.isConnected ? this.thinkingEl.before(bubble) : this.log.append(bubble));
    renderMarkdown(bubble);
    localiseTimes(bubble);
    this.scrollDown();
    return bubble;
  }
  // Attachment chips; one with a URI downloads it through the platform.
  fileChips(files) {
    const chips = document.createElement("div");
    chips.className = "bubble-files";
    for (const file of files) {
      const chip = document.createElement(file.uri ? "a" : "span");
      chip.className = "file-chip";
      if (file.uri) {
        chip.href = `/workspaces/${encodeURIComponent(this.id)}/chat/download?path=${encodeURIComponent(file.uri)}`;
        chip.download = file.name;
      }
      chip.innerHTML = FILE_ICON;
      const name = document.createElement("span");
      name.textContent = file.name;
      chip.append(name);
      chips.append(chip);
    }
    return chips;
  }
  scrollDown() { requestAnimationFrame(() => { this.log.scrollTop = this.log.scrollHeight; }); }

  // --- waiting ---------------------------------------------------------------------------------
  startWaiting() {
    const entry = { started: Date.now() };
    this.waiting.push(entry);
    if (!this.thinkingEl) {
      this.thinkingEl = document.createElement("div");
      this.thinkingEl.className = "bubble is-agent is-thinking";
      this.thinkingEl.setAttribute("aria-label", "The agent is thinking");
      this.thinkingEl.innerHTML = '<div class="thinking-head"><span class="dots" aria-hidden="true"><i></i><i></i><i></i></span><span class="thinking-time"></span></div><ul class="thinking-log"></ul>';
      this.thinkingLines = [`Processing with ${this.root.dataset.runtime || "the agent"}…`];
    }
    this.log.append(this.thinkingEl);
    this.renderThinking();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.renderThinking(), 1000);
    this.scrollDown();
    return entry;
  }
  renderThinking() {
    if (!this.thinkingEl || !this.waiting.length) return;
    const seconds = Math.floor((Date.now() - this.waiting[0].started) / 1000);
    this.thinkingEl.querySelector(".thinking-time").textContent = `Thinking… ${seconds}s`;
    this.thinkingEl.querySelector(".thinking-log").replaceChildren(...this.thinkingLines.slice(-THINKING_LINES).map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    }));
  }
  stopWaiting(entry) {
    const index = entry ? this.waiting.indexOf(entry) : 0;
    if (index < 0 || !this.waiting.length) return;
    this.waiting.splice(index, 1);
    if (!this.waiting.length) {
      clearInterval(this.timer);
      this.thinkingEl?.remove();
      this.thinkingEl = null;
    }
  }
  thinking(line) {
    if (!this.thinkingEl) return;
    this.thinkingLines.push(line);
    this.renderThinking();
  }

  // A reply from any of the three paths; false when it was shown already.
  deliver(reply) {
    const now = Date.now();
    for (const [text, at] of this.seenTexts) if (now - at > TEXT_DEDUPE_MS) this.seenTexts.delete(text);
    if (reply.key ? this.seenIds.has(reply.key) : (reply.text && this.seenTexts.has(reply.text))) return false;
    if (!reply.text && !reply.files.length) return false;
    if (reply.key) this.seenIds.add(reply.key);
    if (reply.text) this.seenTexts.set(reply.text, now);
    this.stopWaiting();
    this.addBubble("agent", reply.text, reply.files, reply.key);
    return true;
  }

  async send() {
    if (!this.canChat()) return;
    const text = this.text.value.trim();
    const files = [...this.files];
    if (!text && !files.length) return;
    this.hideError();
    const history = this.history();
    this.text.value = "";
    this.files = [];
    this.renderPending();
    this.autosize();
    const bubble = this.addBubble("user", text, files.map((file) => ({ name: file.name })));
    const entry = this.startWaiting();
    const parts = text ? [{ kind: "text", text }] : [];
    if (files.length) {
      const form = new FormData();
      for (const file of files) form.append("files", file, file.name);
      const upload = await api("POST", `/workspaces/${encodeURIComponent(this.id)}/chat/uploads`, form, { timeoutMs: UPLOAD_TIMEOUT_MS });
      if (!this.alive) return;
      if (!upload.ok) {
        this.stopWaiting(entry);
        this.showError("Could not upload the attachments", upload.error);
        return;
      }
      const uploaded = upload.data.files || [];
      for (const file of uploaded) parts.push({ kind: "file", file: { uri: file.uri, name: file.name, mimeType: file.mimeType } });
      bubble.querySelector(".bubble-files").replaceWith(this.fileChips(uploaded));
    }
    const body = {
      jsonrpc: "2.0", id: uuid(), method: "message/send",
      params: { message: { role: "user", messageId: uuid(), parts }, metadata: { history } },
    };
    const response = await api("POST", `/workspaces/${encodeURIComponent(this.id)}/a2a`, body, { timeoutMs: SEND_TIMEOUT_MS });
    if (!this.alive) return;
    if (response.ok && response.status === 202 && response.data?.queued) {
      this.stopWaiting(entry);
      this.addBubble("system", "The agent is busy: your message is queued and will be delivered when it has capacity.");
      return;
    }
    if (!response.ok) {
      if (!this.waiting.includes(entry)) return; // a WS reply already answered it
      this.stopWaiting(entry);
      this.showError(SEND_FAILED, response.error);
      return;
    }
    const reply = replyOf(response.data);
    if (reply.error) {
      this.stopWaiting(entry);
      this.addBubble("system", `Agent error: ${reply.error}`);
      return;
    }
    if (!this.deliver(reply)) this.stopWaiting(entry);
  }

  // --- live ------------------------------------------------------------------------------------
  wsEvent(envelope) {
    const { event, payload = {} } = envelope;
    if (event === "A2A_RESPONSE") this.deliver(replyOf(payload.response_body));
    else if (event === "AGENT_MESSAGE") {
      const files = (payload.attachments || []).filter((a) => a && a.uri).map((a) => ({ name: a.name || a.uri, uri: a.uri, mime: a.mimeType || "" }));
      this.deliver({ key: "", text: typeof payload.message === "string" ? payload.message.trim() : "", files, error: "" });
    } else if (event === "TASK_UPDATED" && payload.current_task) this.thinking(`⟳ ${payload.current_task}`);
    else if (event === "ACTIVITY_LOGGED") {
      if (payload.activity_type === "delegation" && payload.method === "delegate") this.thinking(`→ ${payload.summary || "Delegating…"}`);
      else if (payload.activity_type === "agent_log" && payload.summary) this.thinking(payload.summary);
      if (payload.source_id) this.reloadCommsSoon();
    } else if (event.startsWith("DELEGATION_")) this.reloadCommsSoon();
  }
  reloadCommsSoon() {
    clearTimeout(this.commsTimer);
    this.commsTimer = setTimeout(async () => {
      const html = await fragment(`/canvas/panel/${encodeURIComponent(this.id)}/chat/comms/`);
      if (html !== null && this.alive) this.el.querySelector(".comms-log").innerHTML = html;
    }, 400);
  }
}

// The panel's controller interface for this tab.
export const chatTab = {
  mount(el, ctx) { chat?.destroy(); chat = new Chat(el, ctx); },
  unmount() { chat?.destroy(); chat = null; },
  wsEvent(envelope) { if (chat && envelope.workspace_id === chat.id) chat.wsEvent(envelope); },
  cardState(id) { if (chat && id === chat.id) chat.refreshComposer(); },
};

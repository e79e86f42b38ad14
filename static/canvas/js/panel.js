// The side panel (canvas spec §3): opens on a selection, closes on deselect / ✕ / Esc, resizes
// (320–800 px, persisted), and shows one server-rendered fragment per tab, loaded on demand
// from /canvas/panel/<id>/<tab>/ and reloaded when the selected workspace changes. Every write
// goes to the platform API; the tab is then re-rendered from the server.
//
// It also keeps the client-only "needs restart" flag (spec §1.2): set by config/file saves,
// cleared by a restart, shown as a banner here and a button on the card.

import { api, fragment } from "./api.js";
import { STATUS_LABELS } from "./canvas.js";
import { chatTab, localiseTimes } from "./chat.js";
import { terminalTab } from "./terminal.js";

const TABS = ["chat", "activity", "details", "skills", "terminal", "config", "schedule", "files", "memory", "traces", "events"];
const WIDTH_KEY = "molecule-panel-width";
const MIN_WIDTH = 320, MAX_WIDTH = 800, DEFAULT_WIDTH = 480, KEY_STEP = 16;
const POLL_MS = { activity: 5000, traces: 5000, events: 10000, schedule: 15000 };
const SEARCH_DEBOUNCE_MS = 300;
const HEADER_DEBOUNCE_MS = 150;
const MAX_UPLOAD_BYTES = 1024 * 1024;

let canvas = null;
let panel = null;
const state = { id: null, tab: "chat", loaded: new Set(), seq: {}, pollTimer: null, headerTimer: null };
const needsRestart = new Set();

const $ = (sel, root = panel) => root.querySelector(sel);
const tabButton = (tab) => document.getElementById(`tab-${tab}`);
const tabPanel = (tab) => document.getElementById(`panel-${tab}`);
const fragmentPath = (tab, query = "") => `/canvas/panel/${encodeURIComponent(state.id)}/${tab ? `${tab}/` : ""}${query}`;
const filePath = (path) => path.split("/").map(encodeURIComponent).join("/");

function emptyState(text) {
  const div = document.createElement("div");
  div.className = "empty-state";
  const p = document.createElement("p");
  p.textContent = text;
  div.append(p);
  return div;
}

function setError(el, message) {
  if (!el) return;
  el.textContent = message || "";
  el.hidden = !message;
}

// --- width -------------------------------------------------------------------------------------

function clampWidth(width) { return Math.round(Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, width))); }

function applyWidth(width, { save = false } = {}) {
  const value = clampWidth(width);
  document.documentElement.style.setProperty("--panel-width", `${value}px`);
  $(".panel-resize").setAttribute("aria-valuenow", String(value));
  if (save) localStorage.setItem(WIDTH_KEY, String(value));
  return value;
}
function currentWidth() { return Number($(".panel-resize").getAttribute("aria-valuenow")) || DEFAULT_WIDTH; }

function installResize() {
  const handle = $(".panel-resize");
  applyWidth(Number(localStorage.getItem(WIDTH_KEY)) || DEFAULT_WIDTH);
  handle.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    handle.setPointerCapture(event.pointerId);
    panel.classList.add("is-resizing");
    const move = (e) => applyWidth(window.innerWidth - e.clientX);
    const up = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
      handle.removeEventListener("pointercancel", up);
      panel.classList.remove("is-resizing");
      applyWidth(currentWidth(), { save: true });
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
    handle.addEventListener("pointercancel", up);
  });
  handle.addEventListener("keydown", (event) => {
    const steps = { ArrowLeft: KEY_STEP, ArrowRight: -KEY_STEP, Home: MAX_WIDTH, End: -MAX_WIDTH };
    if (!(event.key in steps)) return;
    event.preventDefault();
    applyWidth(currentWidth() + steps[event.key], { save: true });
  });
}

// --- open / close --------------------------------------------------------------------------------

function open(id, tab) {
  const changed = id !== state.id;
  if (changed) {
    unmountAll();
    state.id = id;
    state.loaded.clear();
    for (const name of TABS) tabPanel(name).replaceChildren();
    $("#panel-head").replaceChildren();
    $("#panel-ws-id").textContent = id;
    loadHeader();
  }
  panel.hidden = false;
  document.body.classList.add("panel-open");
  showTab(TABS.includes(tab) ? tab : state.tab);
  renderRestartBanner();
}

function close() {
  if (panel.hidden && state.id === null) return;
  unmountAll();
  stopPolling();
  state.id = null;
  state.loaded.clear();
  panel.hidden = true;
  document.body.classList.remove("panel-open");
}

function unmountAll() {
  for (const name of TABS) if (state.loaded.has(name)) controllers[name]?.unmount?.();
}

// --- tabs ----------------------------------------------------------------------------------------

function showTab(tab) {
  const previous = state.tab;
  // A tab that holds a connection (the terminal) lets go of it while hidden.
  if (previous !== tab && controllers[previous]?.unmountWhenHidden && state.loaded.has(previous)) {
    controllers[previous].unmount();
    state.loaded.delete(previous);
    state.seq[previous] = (state.seq[previous] || 0) + 1; // a load still on its way is dropped
    tabPanel(previous).replaceChildren();
  }
  state.tab = tab;
  for (const name of TABS) {
    const on = name === tab;
    const button = tabButton(name);
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
    button.classList.toggle("is-active", on);
    tabPanel(name).hidden = !on;
  }
  tabButton(tab).scrollIntoView({ block: "nearest", inline: "nearest" });
  if (!state.loaded.has(tab)) loadTab(tab);
  startPolling();
}

function installTabs() {
  const list = $('[role="tablist"]');
  list.addEventListener("click", (event) => {
    const button = event.target.closest('[role="tab"]');
    if (button) showTab(button.id.replace(/^tab-/, ""));
  });
  list.addEventListener("keydown", (event) => {
    const index = TABS.indexOf(state.tab);
    const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: TABS.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const tab = TABS[(next + TABS.length) % TABS.length];
    showTab(tab);
    tabButton(tab).focus();
  });
}

// Load a tab's fragment. `only` swaps just the parts it selects (a filtered list and its count)
// so the controls the operator is using — a search box, a chip — stay as they are.
async function loadTab(tab, { query = "", only = null } = {}) {
  const id = state.id;
  const el = tabPanel(tab);
  const seq = (state.seq[tab] || 0) + 1;
  state.seq[tab] = seq;
  if (!only && !el.childElementCount) el.innerHTML = '<div class="panel-loading" role="status">Loading…</div>';
  const html = await fragment(fragmentPath(tab, query));
  if (state.id !== id || state.seq[tab] !== seq) return; // another workspace or a newer load won
  if (controllers[tab]?.unmountWhenHidden && state.tab !== tab) return; // hidden meanwhile: mount when shown
  if (html === null) {
    if (state.loaded.has(tab)) controllers[tab]?.unmount?.();
    state.loaded.delete(tab);
    el.replaceChildren(emptyState("Nothing to show here: this workspace may have been removed."));
    return;
  }
  const template = document.createElement("template");
  template.innerHTML = html;
  const parts = only ? [...el.querySelectorAll(only)] : [];
  const fresh = only ? [...template.content.querySelectorAll(only)] : [];
  if (parts.length && parts.length === fresh.length) {
    const open = new Set([...el.querySelectorAll("details[open][data-row-id]")].map((d) => d.dataset.rowId));
    parts.forEach((part, index) => {
      for (const details of fresh[index].querySelectorAll("details[data-row-id]")) if (open.has(details.dataset.rowId)) details.open = true;
      part.replaceWith(fresh[index]);
      localiseTimes(fresh[index]);
    });
    return;
  }
  if (state.loaded.has(tab)) controllers[tab]?.unmount?.();
  el.replaceChildren(template.content);
  state.loaded.add(tab);
  localiseTimes(el);
  controllers[tab]?.mount?.(el, context());
}

function reloadTab(tab = state.tab) {
  const controller = controllers[tab];
  if (controller?.refresh) return controller.refresh();
  if (controller?.query) return loadTab(tab, { query: controller.query(), only: "[data-results]" });
  return loadTab(tab);
}

function context() {
  return {
    id: state.id, canvas,
    restart: () => restart(state.id),
    statusLabel: (status) => (status ? STATUS_LABELS[status] || status : ""),
  };
}

// --- polling (only the visible tab, only while the page is visible) --------------------------------

function startPolling() {
  stopPolling();
  const every = POLL_MS[state.tab];
  if (!every || state.id === null) return;
  state.pollTimer = setInterval(() => {
    if (document.hidden || panel.hidden || controllers[state.tab]?.paused?.()) return;
    reloadTab(state.tab);
  }, every);
}
function stopPolling() { clearInterval(state.pollTimer); state.pollTimer = null; }

// --- header ----------------------------------------------------------------------------------------

async function loadHeader() {
  const id = state.id;
  const seq = (state.seq.header || 0) + 1;
  state.seq.header = seq;
  const html = await fragment(fragmentPath(""));
  if (state.id !== id || state.seq.header !== seq) return;
  const head = $("#panel-head");
  if (html === null) { head.replaceChildren(emptyState("This workspace is gone.")); return; }
  head.innerHTML = html;
}
function refreshHeaderSoon() {
  if (state.id === null) return;
  clearTimeout(state.headerTimer);
  state.headerTimer = setTimeout(loadHeader, HEADER_DEBOUNCE_MS);
}

// --- needs restart (client-only flag) ----------------------------------------------------------------

function markNeedsRestart(id) {
  needsRestart.add(id);
  renderRestartMarks();
  renderRestartBanner();
  canvas.emit("needs-restart", { ids: [...needsRestart] });
}
function clearNeedsRestart(id) {
  if (!needsRestart.delete(id)) return;
  renderRestartMarks();
  renderRestartBanner();
  canvas.emit("needs-restart", { ids: [...needsRestart] });
}

// The card's "↻ Restart to apply changes" (spec §1.3 item 7): shown while flagged and idle.
// Cards are re-rendered by the server (morphs drop what is not in the partial), so this runs
// again after every structural change — over the flagged cards only, not the whole org.
function renderRestartMarks(ids = null) {
  const marked = [...document.querySelectorAll("#cards .ws-node[data-needs-restart]")].map((el) => canvas.idOf(el));
  for (const id of new Set(ids ?? [...needsRestart, ...marked])) {
    const el = canvas.card(id);
    if (!el) continue;
    const flagged = needsRestart.has(id);
    const busy = Boolean(el.querySelector(":scope > .ws-task:not([hidden])"));
    let button = el.querySelector(":scope > .ws-restart-mark");
    if (flagged) el.dataset.needsRestart = "true"; else delete el.dataset.needsRestart;
    if (!flagged || busy) { button?.remove(); continue; }
    if (!button) {
      button = document.createElement("button");
      button.type = "button";
      button.className = "ws-restart-mark";
      button.textContent = "↻ Restart to apply changes";
      button.title = "The config changed since this workspace started";
      button.addEventListener("pointerdown", (event) => event.stopPropagation());
      button.addEventListener("click", (event) => { event.stopPropagation(); restart(id); });
      el.querySelector(":scope > .ws-children").before(button);
    }
  }
}
function renderRestartBanner() {
  const banner = $("#panel-restart");
  const busy = canvas.card(state.id)?.querySelector(":scope > .ws-task:not([hidden])");
  banner.hidden = !(state.id && needsRestart.has(state.id) && !busy);
}

async function restart(id) {
  if (!id) return;
  const result = await api("POST", `/workspaces/${encodeURIComponent(id)}/restart`);
  if (!result.ok) { canvas.toast(`Restart failed: ${result.error}`, "error"); return; }
  clearNeedsRestart(id);
  canvas.applyState(id, { status: "provisioning" });
  canvas.toast(`Restarting ${canvas.nameOf(canvas.card(id)) || "workspace"}`, "success");
  if (id === state.id) { refreshHeaderSoon(); if (state.loaded.has("details")) loadTab("details"); }
}

// --- the tabs' controllers ------------------------------------------------------------------------------

const activityTab = {
  mount(el) { this.kind = el.querySelector(".activity")?.dataset.kind || ""; this.live = true; },
  query() { return this.kind ? `?type=${encodeURIComponent(this.kind)}` : ""; },
  paused() { return !this.live; },
  click(event, el) {
    const chip = event.target.closest("[data-activity-type]");
    if (chip) {
      this.kind = chip.dataset.activityType;
      for (const other of el.querySelectorAll("[data-activity-type]")) {
        const on = other === chip;
        other.classList.toggle("is-active", on);
        other.setAttribute("aria-pressed", String(on));
      }
      reloadTab("activity");
      return;
    }
    const toggle = event.target.closest("[data-live-toggle]");
    if (toggle) {
      this.live = !this.live;
      toggle.textContent = this.live ? "⟳ Live" : "‖ Paused";
      toggle.classList.toggle("is-live", this.live);
      toggle.setAttribute("aria-pressed", String(this.live));
    }
  },
};

const eventsTab = { query() { return ""; } };

// Traces: the newest traces arrive with their waterfall; an older row fetches its own when opened.
const tracesTab = {
  query() { return ""; },
  mount(el) {
    if (el.dataset.tracesBound) return; // the tab's section outlives its fragments
    el.dataset.tracesBound = "1";
    el.addEventListener("toggle", (event) => {
      const row = event.target;
      if (!row.matches?.("details[data-trace-id]") || !row.open) return;
      const slot = row.querySelector("[data-waterfall-slot]");
      if (slot) this.loadWaterfall(slot, row.dataset.traceId);
    }, true);
  },
  async loadWaterfall(slot, traceId) {
    const html = await fragment(fragmentPath("traces", `?trace=${encodeURIComponent(traceId)}`));
    if (!slot.isConnected) return;
    if (html === null) { slot.innerHTML = '<p class="muted small">This trace is gone (retention).</p>'; return; }
    slot.outerHTML = html;
  },
};

const detailsTab = {
  click(event, el) {
    const form = el.querySelector("[data-details-form]");
    const view = el.querySelector("[data-details-view]");
    if (event.target.closest("[data-details-edit]")) {
      form.hidden = false; view.hidden = true;
      event.target.closest("[data-details-edit]").hidden = true;
      form.querySelector('[name="name"]').focus();
    } else if (event.target.closest("[data-details-cancel]")) {
      form.reset();
      form.hidden = true; view.hidden = false;
      el.querySelector("[data-details-edit]").hidden = false;
      setError(form.querySelector("[data-details-error]"), "");
    } else if (event.target.closest("[data-details-delete]")) {
      el.querySelector("[data-delete-start]").hidden = true;
      el.querySelector("[data-delete-confirm]").hidden = false;
      el.querySelector("[data-delete-confirm-btn]").focus();
    } else if (event.target.closest("[data-delete-cancel]")) {
      el.querySelector("[data-delete-start]").hidden = false;
      el.querySelector("[data-delete-confirm]").hidden = true;
      el.querySelector("[data-details-delete]").focus();
    } else if (event.target.closest("[data-delete-confirm-btn]")) {
      this.remove(el, event.target.closest("button"));
    }
  },
  // Esc backs out of an edit or a delete confirmation before it closes the panel.
  keydown(event, el) {
    if (event.key !== "Escape") return;
    const cancel = event.target.closest("[data-details-form]") ? "[data-details-cancel]"
      : event.target.closest("[data-delete-confirm]") ? "[data-delete-cancel]" : null;
    if (!cancel) return;
    event.stopPropagation();
    el.querySelector(cancel).click();
    if (cancel === "[data-details-cancel]") el.querySelector("[data-details-edit]").focus();
  },
  async submit(event, el) {
    const form = event.target.closest("[data-details-form]");
    if (!form) return;
    const id = state.id;
    const errorEl = form.querySelector("[data-details-error]");
    const data = new FormData(form);
    const name = String(data.get("name") || "").trim();
    if (!name) { setError(errorEl, "A name is required."); return; }
    const changes = {};
    const initial = (field) => form.querySelector(`[name="${field}"]`).defaultValue;
    for (const field of ["name", "role", "runtime"]) {
      const value = String(data.get(field) || "").trim();
      if (value !== initial(field).trim() && (field !== "runtime" || value)) changes[field] = value;
    }
    const tier = Number(data.get("tier"));
    if (tier !== Number(form.querySelector('[name="tier"] option[selected]')?.value)) changes.tier = tier;
    const model = String(data.get("model") || "").trim();
    const modelChanged = model !== form.querySelector('[name="model"]').dataset.initial;
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    setError(errorEl, "");
    try {
      if (Object.keys(changes).length) {
        const result = await api("PATCH", `/workspaces/${encodeURIComponent(id)}`, changes);
        if (!result.ok) { setError(errorEl, result.error); return; }
      }
      if (modelChanged) {
        const result = await api("PUT", `/workspaces/${encodeURIComponent(id)}/model`, { model });
        if (!result.ok) {
          setError(errorEl, `${Object.keys(changes).length ? "Other fields saved, but the model update failed" : "The model update failed"}: ${result.error}`);
          return;
        }
      }
    } finally {
      submit.disabled = false;
    }
    if (state.id !== id) return;
    canvas.refreshCard(id);
    refreshHeaderSoon();
    loadTab("details");
    canvas.toast(modelChanged ? "Saved — the workspace restarts with the new model" : "Saved", "success");
  },
  async remove(el, button) {
    const id = state.id;
    button.disabled = true;
    const result = await api("DELETE", `/workspaces/${encodeURIComponent(id)}?confirm=true`);
    button.disabled = false;
    if (!result.ok) { setError(el.querySelector("[data-delete-error]"), `Delete failed: ${result.error}`); return; }
    canvas.toast(`Deleted ${canvas.nameOf(canvas.card(id)) || "the workspace"}`, "success");
    canvas.removeCard(id);
    if (state.id === id) canvas.deselect();
  },
};

const configTab = {
  mount(el) {
    this.text = el.querySelector("[data-config-text]");
    if (this.text) this.saved = this.text.value;
  },
  refresh() {
    if (this.text && this.text.value !== this.saved && !window.confirm("Discard the changes to config.yaml?")) return;
    loadTab("config");
  },
  input(event, el) {
    if (!event.target.matches("[data-config-text]")) return;
    const dirty = this.text.value !== this.saved;
    el.querySelector("[data-config-dirty]").hidden = !dirty;
    el.querySelector("[data-config-save]").disabled = !dirty;
  },
  keydown(event, el) {
    if (event.target.matches("[data-config-text]") && (event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      event.preventDefault();
      this.save(el);
    }
  },
  click(event, el) { if (event.target.closest("[data-config-save]")) this.save(el); },
  async save(el) {
    const id = state.id;
    const errorEl = el.querySelector("[data-config-error]");
    const content = this.text.value;
    const problem = yamlTabProblem(content);
    if (problem) { setError(errorEl, problem); return; }
    const button = el.querySelector("[data-config-save]");
    button.disabled = true;
    setError(errorEl, "");
    const result = await api("PUT", `/workspaces/${encodeURIComponent(id)}/files/config.yaml`, { content });
    if (state.id !== id) return;
    if (!result.ok) { button.disabled = false; setError(errorEl, `Could not save config.yaml: ${result.error}`); return; }
    markNeedsRestart(id);
    canvas.toast("config.yaml saved — restart to apply", "success");
    await loadTab("config"); // the server re-reads and re-checks what it stored
  },
};

// YAML never allows tabs in indentation; everything else the server checks after the save.
function yamlTabProblem(text) {
  const line = text.split("\n").findIndex((l) => /^ *\t/.test(l));
  return line < 0 ? "" : `YAML does not allow tabs for indentation (line ${line + 1}): indent with spaces.`;
}

const filesTab = {
  mount(el) { this.el = el; this.path = null; this.saved = ""; },
  dirty() { return this.path !== null && this.editor().text.value !== this.saved; },
  refresh() {
    if (this.dirty() && !window.confirm(`Discard the changes to ${this.path}?`)) return;
    this.reloadKeeping();
  },
  editor() {
    return { text: this.el.querySelector("[data-editor-text]"), placeholder: this.el.querySelector("[data-editor-placeholder]"),
      head: this.el.querySelector("[data-editor-head]"), path: this.el.querySelector("[data-editor-path]"),
      dirty: this.el.querySelector("[data-editor-dirty]"),
      save: this.el.querySelector("[data-files-save]") };
  },
  error(message) { setError(this.el.querySelector("[data-files-error]"), message); },
  async openFile(path) {
    const id = state.id;
    this.error("");
    const result = await api("GET", `/workspaces/${encodeURIComponent(id)}/files/${filePath(path)}`);
    if (state.id !== id) return;
    if (!result.ok) { this.error(`Could not open ${path}: ${result.error}`); return; }
    const editor = this.editor();
    this.path = path;
    this.saved = result.data.content;
    editor.text.value = result.data.content;
    editor.text.hidden = false;
    editor.head.hidden = false;
    editor.placeholder.hidden = true;
    editor.path.textContent = path;
    editor.dirty.hidden = true;
    editor.save.disabled = true;
    for (const button of this.el.querySelectorAll("[data-file-path]")) button.classList.toggle("is-open", button.dataset.filePath === path);
    editor.text.focus();
  },
  async save() {
    if (this.path === null) return;
    const id = state.id;
    const editor = this.editor();
    const content = editor.text.value;
    editor.save.disabled = true;
    const result = await api("PUT", `/workspaces/${encodeURIComponent(id)}/files/${filePath(this.path)}`, { content });
    if (state.id !== id) return;
    if (!result.ok) { editor.save.disabled = false; this.error(`Could not save ${this.path}: ${result.error}`); return; }
    this.saved = content;
    editor.dirty.hidden = editor.text.value === content;
    markNeedsRestart(id);
    canvas.toast(`Saved ${this.path}`, "success");
  },
  async reloadKeeping(path = this.path) {
    await loadTab("files");
    if (path !== null && state.loaded.has("files") && this.el.querySelector(`[data-file-path="${CSS.escape(path)}"]`)) await this.openFile(path);
  },
  async create(form) {
    const input = form.querySelector('[name="path"]');
    const path = input.value.trim().replace(/^\/+/, "");
    if (!path || path.endsWith("/")) { this.error("Give the new file a path, such as notes/todo.md."); return; }
    const result = await api("PUT", `/workspaces/${encodeURIComponent(state.id)}/files/${filePath(path)}`, { content: "" });
    if (!result.ok) { this.error(`Could not create ${path}: ${result.error}`); return; }
    markNeedsRestart(state.id);
    await this.reloadKeeping(path);
  },
  async upload(list) {
    const id = state.id;
    const problems = [];
    let saved = 0;
    for (const file of list) {
      if (file.size > MAX_UPLOAD_BYTES) { problems.push(`${file.name} is larger than 1 MB`); continue; }
      const content = await file.text();
      if (content.includes("\u0000")) { problems.push(`${file.name} is not a text file`); continue; }
      const result = await api("PUT", `/workspaces/${encodeURIComponent(id)}/files/${filePath(file.webkitRelativePath || file.name)}`, { content });
      if (result.ok) saved += 1; else problems.push(`${file.name}: ${result.error}`);
    }
    if (state.id !== id) return;
    if (saved) { markNeedsRestart(id); canvas.toast(`Uploaded ${saved} file${saved === 1 ? "" : "s"}`, "success"); }
    await this.reloadKeeping();
    this.error(problems.length ? `Not uploaded: ${problems.join("; ")}` : "");
  },
  confirmDelete(button) {
    this.el.querySelector(".tree-confirm")?.remove();
    const path = button.dataset.fileDelete;
    const row = button.closest(".tree-row");
    const box = document.createElement("div");
    box.className = "tree-confirm";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", `Delete ${path}?`);
    const text = document.createElement("span");
    text.textContent = button.dataset.fileDir ? `Delete ${path} and all its contents?` : `Delete ${path}?`;
    const yes = document.createElement("button");
    yes.type = "button"; yes.className = "btn btn-small btn-danger"; yes.textContent = "Delete"; yes.dataset.fileDeleteYes = path;
    const no = document.createElement("button");
    no.type = "button"; no.className = "btn btn-small btn-ghost"; no.textContent = "Cancel"; no.dataset.fileDeleteNo = "";
    box.append(text, yes, no);
    row.after(box);
    yes.focus();
  },
  async remove(path) {
    const result = await api("DELETE", `/workspaces/${encodeURIComponent(state.id)}/files/${filePath(path)}`);
    if (!result.ok) { this.error(`Could not delete ${path}: ${result.error}`); return; }
    markNeedsRestart(state.id);
    const keep = this.path !== null && this.path !== path && !this.path.startsWith(`${path}/`) ? this.path : null;
    await this.reloadKeeping(keep);
  },
  click(event, el) {
    const target = event.target;
    const file = target.closest("[data-file-path]");
    if (file) {
      if (this.dirty() && !window.confirm(`Discard the changes to ${this.path}?`)) return;
      this.openFile(file.dataset.filePath);
      return;
    }
    const del = target.closest("[data-file-delete]");
    if (del) { event.preventDefault(); this.confirmDelete(del); return; }
    const yes = target.closest("[data-file-delete-yes]");
    if (yes) { this.remove(yes.dataset.fileDeleteYes); return; }
    if (target.closest("[data-file-delete-no]")) { target.closest(".tree-confirm").remove(); return; }
    if (target.closest("[data-files-save]")) { this.save(); return; }
    if (target.closest("[data-files-upload]")) { el.querySelector("[data-files-input]").click(); return; }
    if (target.closest("[data-files-new]")) {
      const form = el.querySelector("[data-files-new-form]");
      form.hidden = false;
      form.querySelector("input").focus();
      return;
    }
    if (target.closest("[data-files-new-cancel]")) { el.querySelector("[data-files-new-form]").hidden = true; this.error(""); }
  },
  submit(event) { const form = event.target.closest("[data-files-new-form]"); if (form) this.create(form); },
  change(event) {
    if (!event.target.matches("[data-files-input]")) return;
    const list = [...event.target.files];
    event.target.value = "";
    if (list.length) this.upload(list);
  },
  input(event) {
    if (!event.target.matches("[data-editor-text]")) return;
    const editor = this.editor();
    const dirty = editor.text.value !== this.saved;
    editor.dirty.hidden = !dirty;
    editor.save.disabled = !dirty;
  },
  keydown(event, el) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s" && event.target.matches("[data-editor-text]")) {
      event.preventDefault();
      this.save();
    } else if (event.key === "Escape" && event.target.closest("[data-files-new-form]")) {
      event.stopPropagation();
      el.querySelector("[data-files-new-form]").hidden = true;
    }
  },
};

const memoryTab = {
  mount(el) {
    this.scope = el.querySelector(".memory")?.dataset.scope || "LOCAL";
    this.q = el.querySelector("[data-memory-q]")?.value || "";
    this.timer = null;
  },
  unmount() { clearTimeout(this.timer); },
  query() {
    const params = new URLSearchParams({ scope: this.scope });
    if (this.q) params.set("q", this.q);
    return `?${params}`;
  },
  click(event, el) {
    const scope = event.target.closest("[data-memory-scope]");
    if (scope) {
      this.scope = scope.dataset.memoryScope;
      for (const other of el.querySelectorAll("[data-memory-scope]")) {
        const on = other === scope;
        other.classList.toggle("is-active", on);
        other.setAttribute("aria-pressed", String(on));
      }
      reloadTab("memory");
      return;
    }
    const del = event.target.closest("[data-memory-delete]");
    if (del) {
      if (del.dataset.confirming) { this.remove(del); return; }
      del.dataset.confirming = "true";
      del.textContent = "Confirm delete";
      del.classList.add("btn-danger");
    }
  },
  input(event) {
    if (!event.target.matches("[data-memory-q]")) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.q = event.target.value.trim(); reloadTab("memory"); }, SEARCH_DEBOUNCE_MS);
  },
  async remove(button) {
    button.disabled = true;
    const row = button.closest("li");
    row.classList.add("is-removing");
    const result = await api("DELETE", `/workspaces/${encodeURIComponent(state.id)}/memories/${encodeURIComponent(button.dataset.memoryDelete)}`);
    if (!result.ok) { canvas.toast(`Could not delete the memory: ${result.error}`, "error"); row.classList.remove("is-removing"); button.disabled = false; }
    reloadTab("memory");
  },
};

// Schedule (canvas spec §3.11): cron prompts. The form's preview of the next runs is rendered
// by the server (the expression in its zone) as the operator types; writes go to the schedules API.
const scheduleTab = {
  mount(el) { this.el = el; this.timer = null; },
  query() { return ""; }, // reloads swap the list and its count: open rows and the form stay as they are
  paused() { return Boolean(this.el?.querySelector("[data-confirming]")); }, // a delete awaiting its confirm
  unmount() { clearTimeout(this.timer); },
  form() { return this.el.querySelector("[data-schedule-form]"); },
  path(id = "") { return `/workspaces/${encodeURIComponent(state.id)}/schedules${id ? `/${encodeURIComponent(id)}` : ""}`; },
  openForm(row = null) {
    const form = this.form();
    form.reset();
    form.elements.id.value = row ? row.dataset.scheduleId : "";
    if (row) {
      form.elements.name.value = row.dataset.name;
      form.elements.cron_expr.value = row.dataset.cron;
      form.elements.timezone.value = row.dataset.tz;
      form.elements.prompt.value = row.querySelector("[data-schedule-prompt]").textContent;
      form.elements.enabled.checked = row.dataset.enabled === "true";
    } else {
      form.elements.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    }
    form.querySelector("[data-schedule-form-title]").textContent = row ? `Edit ${row.dataset.name}` : "New schedule";
    form.querySelector("[data-schedule-save]").textContent = row ? "Save" : "Create";
    setError(form.querySelector("[data-schedule-error]"), "");
    form.hidden = false;
    this.el.querySelector("[data-schedule-empty]")?.setAttribute("hidden", "");
    this.preview();
    form.elements.name.focus();
  },
  closeForm() {
    this.form().hidden = true;
    this.el.querySelector("[data-schedule-empty]")?.removeAttribute("hidden");
  },
  async preview() {
    const form = this.form();
    const params = new URLSearchParams({ preview: "1", cron: form.elements.cron_expr.value, tz: form.elements.timezone.value });
    const html = await fragment(fragmentPath("schedule", `?${params}`));
    const slot = form.querySelector("[data-schedule-preview]");
    if (html === null || !slot?.isConnected) return;
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    slot.replaceWith(template.content);
  },
  async save() {
    const form = this.form();
    const id = form.elements.id.value;
    const body = {
      name: form.elements.name.value, cron_expr: form.elements.cron_expr.value, timezone: form.elements.timezone.value,
      prompt: form.elements.prompt.value, enabled: form.elements.enabled.checked,
    };
    const button = form.querySelector("[data-schedule-save]");
    button.disabled = true;
    const result = await api(id ? "PATCH" : "POST", this.path(id), body);
    button.disabled = false;
    if (!result.ok) { setError(form.querySelector("[data-schedule-error]"), result.error); return; }
    canvas.toast(id ? `Schedule ${body.name} saved` : `Schedule ${body.name} created`, "success");
    form.hidden = true;
    reloadTab("schedule");
  },
  async toggle(input) {
    input.disabled = true;
    const result = await api("PATCH", this.path(input.dataset.scheduleToggle), { enabled: input.checked });
    if (!result.ok) { canvas.toast(`Could not change the schedule: ${result.error}`, "error"); input.checked = !input.checked; }
    reloadTab("schedule");
  },
  async run(button) {
    button.disabled = true;
    const result = await api("POST", `${this.path(button.dataset.scheduleRun)}/run`);
    if (!result.ok) { canvas.toast(`Could not run the schedule: ${result.error}`, "error"); button.disabled = false; return; }
    canvas.toast("Schedule fired — its reply shows in the history", "success");
    setTimeout(() => { if (state.tab === "schedule") reloadTab("schedule"); }, 3000);
  },
  async remove(button) {
    button.disabled = true;
    const result = await api("DELETE", this.path(button.dataset.scheduleDelete));
    if (!result.ok) { canvas.toast(`Could not delete the schedule: ${result.error}`, "error"); button.disabled = false; return; }
    reloadTab("schedule");
  },
  click(event) {
    const target = event.target;
    if (target.closest(".switch")) {
      // the switch sits in the row's <summary>: flip the schedule, not the row
      if (!target.matches("[data-schedule-toggle]")) { event.preventDefault(); target.closest(".switch").querySelector("input").click(); }
      return;
    }
    if (target.closest("[data-schedule-new]")) { this.openForm(); return; }
    if (target.closest("[data-schedule-cancel]")) { this.closeForm(); return; }
    const edit = target.closest("[data-schedule-edit]");
    if (edit) { this.openForm(edit.closest("[data-schedule-id]")); return; }
    const run = target.closest("[data-schedule-run]");
    if (run) { this.run(run); return; }
    const del = target.closest("[data-schedule-delete]");
    if (del) {
      if (del.dataset.confirming) { this.remove(del); return; }
      del.dataset.confirming = "true";
      del.textContent = "Confirm delete";
      del.classList.add("btn-danger");
    }
  },
  change(event) { if (event.target.matches("[data-schedule-toggle]")) this.toggle(event.target); },
  input(event) {
    if (!event.target.matches("[name=cron_expr], [name=timezone]")) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.preview(), SEARCH_DEBOUNCE_MS);
  },
  submit(event) { if (event.target.closest("[data-schedule-form]")) this.save(); },
  keydown(event) {
    if (event.key === "Escape" && event.target.closest("[data-schedule-form]")) { event.stopPropagation(); this.closeForm(); }
  },
};

// The Skills tab (canvas spec §3.4): promote / dismiss candidates, roll back or remove a skill,
// install / uninstall plugins. Each write goes to the API; the tab is then re-rendered (again a
// little later, once the runtime reloaded or restarted and pushed its new card).
const SKILL_RELOAD_MS = 4000, PLUGIN_REFETCH_MS = 15000;
const skillsTab = {
  mount() { this.timers = []; },
  unmount() { for (const timer of this.timers || []) clearTimeout(timer); this.timers = []; },
  later(ms) { this.timers.push(setTimeout(() => { if (state.tab === "skills") reloadTab("skills"); }, ms)); },
  path(rest) { return `/workspaces/${encodeURIComponent(state.id)}${rest}`; },
  async write(button, method, rest, body, done, again = SKILL_RELOAD_MS) {
    if (button) button.disabled = true;
    const result = await api(method, this.path(rest), body);
    if (!result.ok) {
      canvas.toast(`${done.failed}: ${result.error}`, "error");
      if (button) button.disabled = false;
      return;
    }
    canvas.toast(done.ok, "success");
    reloadTab("skills");
    this.later(again);
  },
  confirm(button, label) {
    if (button.dataset.confirming) return true;
    button.dataset.confirming = "true";
    button.textContent = label;
    button.classList.add("btn-danger");
    return false;
  },
  click(event, el) {
    const target = event.target;
    const promote = target.closest("[data-candidate-promote]");
    if (promote) {
      const name = promote.closest("[data-candidate]").querySelector("[data-candidate-name]").value.trim();
      this.write(promote, "POST", `/skills/candidates/${encodeURIComponent(promote.dataset.candidatePromote)}/promote`,
        name ? { name } : {}, { ok: `Promoted ${name} — the agent loads it now`, failed: "Could not promote" });
      return;
    }
    const dismiss = target.closest("[data-candidate-dismiss]");
    if (dismiss) {
      this.write(dismiss, "POST", `/skills/candidates/${encodeURIComponent(dismiss.dataset.candidateDismiss)}/dismiss`,
        {}, { ok: "Candidate dismissed", failed: "Could not dismiss" }, 0);
      return;
    }
    const rollback = target.closest("[data-skill-rollback]");
    if (rollback) {
      const skill = rollback.dataset.skillRollback;
      this.write(rollback, "POST", `/skills/${encodeURIComponent(skill)}/rollback`, {},
        { ok: `Rolled ${skill} back`, failed: "Could not roll back" });
      return;
    }
    const remove = target.closest("[data-skill-remove]");
    if (remove) {
      if (!this.confirm(remove, "Confirm remove")) return;
      const skill = remove.dataset.skillRemove;
      this.write(remove, "DELETE", `/skills/${encodeURIComponent(skill)}`, undefined,
        { ok: `Removed ${skill} (it can be rolled back)`, failed: "Could not remove" });
      return;
    }
    const toggle = target.closest("[data-plugin-toggle]");
    if (toggle) {
      const registry = el.querySelector("[data-plugin-registry]");
      registry.hidden = !registry.hidden;
      toggle.setAttribute("aria-expanded", String(!registry.hidden));
      return;
    }
    const install = target.closest("[data-plugin-install]");
    if (install) { this.install(install, install.dataset.pluginInstall); return; }
    const uninstall = target.closest("[data-plugin-uninstall]");
    if (uninstall) {
      if (!this.confirm(uninstall, "Confirm uninstall")) return;
      const name = uninstall.dataset.pluginUninstall;
      this.write(uninstall, "DELETE", `/plugins/${encodeURIComponent(name)}`, undefined,
        { ok: `Uninstalled ${name} — restarting workspace`, failed: "Could not uninstall" }, PLUGIN_REFETCH_MS);
    }
  },
  submit(event) {
    const form = event.target.closest("[data-plugin-source-form]");
    if (!form) return;
    const source = form.querySelector('[name="source"]').value.trim();
    if (source) this.install(form.querySelector('[type="submit"]'), source);
  },
  install(button, source) {
    const name = source.split("://").pop();
    this.write(button, "POST", "/plugins", { source },
      { ok: `Installed ${name} — restarting workspace`, failed: `Could not install ${name}` }, PLUGIN_REFETCH_MS);
  },
};

const controllers = {
  chat: chatTab, activity: activityTab, details: detailsTab, skills: skillsTab, terminal: terminalTab, config: configTab,
  schedule: scheduleTab, files: filesTab, memory: memoryTab, traces: tracesTab, events: eventsTab,
};

function installTabEvents() {
  for (const tab of TABS) {
    const el = tabPanel(tab);
    for (const type of ["click", "input", "change", "keydown", "submit"]) {
      el.addEventListener(type, (event) => {
        if (type === "submit") event.preventDefault();
        const handler = controllers[tab]?.[type];
        if (handler && state.loaded.has(tab)) handler.call(controllers[tab], event, el);
      });
    }
  }
}

// --- panel-wide actions and keys ------------------------------------------------------------------------

function installActions() {
  panel.addEventListener("click", (event) => {
    const select = event.target.closest("[data-panel-select]");
    if (select) {
      const id = select.dataset.panelSelect;
      if (canvas.card(id)) { canvas.select(id, { tab: state.tab }); canvas.panTo(canvas.card(id)); }
      else canvas.toast("That workspace is not on the canvas.", "info");
      return;
    }
    const action = event.target.closest("[data-panel-action]")?.dataset.panelAction;
    if (action === "close") { const id = state.id; canvas.deselect(); canvas.card(id)?.focus(); }
    else if (action === "refresh") reloadTab();
    else if (action === "restart" || action === "restart-now") restart(state.id);
    else if (action === "copy-id") {
      navigator.clipboard?.writeText(state.id).then(() => canvas.toast("Workspace ID copied", "success"), () => selectText($("#panel-ws-id")));
      if (!navigator.clipboard) selectText($("#panel-ws-id"));
    }
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    event.stopPropagation(); // the canvas's own Esc (menus, batch) is not for keys typed in here
    const id = state.id;
    canvas.deselect();
    canvas.card(id)?.focus();
  });
}

function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

// --- live ---------------------------------------------------------------------------------------------------

function onWsEvent(envelope) {
  if (!envelope || typeof envelope.event !== "string") return;
  const id = envelope.workspace_id;
  // A restart provisions again: whatever the flag waited for is being applied now.
  if (envelope.event === "WORKSPACE_PROVISIONING") clearNeedsRestart(id);
  if (id !== state.id) return;
  chatTab.wsEvent(envelope);
  if (["AGENT_CARD_UPDATED", "WORKSPACE_UPDATED"].includes(envelope.event)) refreshHeaderSoon();
  if (state.loaded.has("schedule") && ["SCHEDULE_UPDATED", "CRON_EXECUTED", "CRON_SKIPPED"].includes(envelope.event)
      && !scheduleTab.paused()) {
    reloadTab("schedule");
  }
  if (state.loaded.has("skills") && state.tab === "skills" && (envelope.event === "AGENT_CARD_UPDATED"
      || envelope.event.startsWith("SKILL_") || envelope.event.startsWith("PLUGIN_")
      || (envelope.event === "ACTIVITY_LOGGED" && envelope.payload?.activity_type === "skill_promotion"))) reloadTab("skills");
  if (envelope.event === "WORKSPACE_REMOVED") return;
  if (state.loaded.has("details") && envelope.event.startsWith("WORKSPACE_") && envelope.event !== "WORKSPACE_HEARTBEAT"
      && !tabPanel("details").querySelector("[data-details-form]:not([hidden]), [data-delete-confirm]:not([hidden])")) {
    loadTab("details");
  }
}

export function install(c) {
  canvas = c;
  panel = document.getElementById("side-panel");
  if (!panel) return;
  installResize();
  installTabs();
  installTabEvents();
  installActions();
  canvas.on("select", ({ id, tab }) => open(id, tab));
  canvas.on("deselect", () => close());
  canvas.on("card-state", ({ id, state: change }) => {
    // A restart from anywhere (menu, banner, API, another browser) puts the card in provisioning:
    // whatever needed a restart is being applied.
    if (change?.status === "provisioning") clearNeedsRestart(id);
    if (needsRestart.has(id)) renderRestartMarks([id]);
    if (id !== state.id) return;
    refreshHeaderSoon();
    renderRestartBanner();
    chatTab.cardState(id);
  });
  for (const name of ["cards-changed", "cards-synced", "card-added"]) {
    canvas.on(name, () => { renderRestartMarks(); if (state.id !== null) { refreshHeaderSoon(); renderRestartBanner(); chatTab.cardState(state.id); } });
  }
  canvas.on("card-removed", ({ ids }) => { for (const id of ids) needsRestart.delete(id); });
  canvas.on("ws-event", onWsEvent);
  document.addEventListener("visibilitychange", () => { if (!document.hidden && state.id !== null && POLL_MS[state.tab]) reloadTab(); });
}

// For tests and other parts: the flag is client-side state (spec §1.2).
export function needsRestartIds() { return [...needsRestart]; }

// The canvas's surfaces (canvas spec §2.2, §4.1–§4.7): creating and deploying workspaces (create
// dialog, empty state, template palette with its key preflight, org import, bundle import), the
// onboarding guide, the settings drawer (global secrets, workspace tokens) and the page banners
// (pending approvals, provisioning timeouts). Lists are server-rendered fragments
// (workspaces/canvas/surface_views.py); every write goes to the platform API.
//
// Other parts open these surfaces through canvas events: `open-create` ({parentId?}),
// `open-palette`, `open-settings`.

import { api, fragment } from "./api.js";
import * as geo from "./geometry.js";

const ONBOARDING_DONE_KEY = "molecule-onboarding-complete";
const ONBOARDING_STEP_KEY = "molecule-onboarding-step";
// A fixed provisioning-timeout threshold in ms for every card, over the template's and the
// default: lets a test (or an operator chasing slow starts) see the banner without waiting.
const PROVISION_TIMEOUT_OVERRIDE_KEY = "molecule-provision-timeout-ms";
const DEFAULT_PROVISION_TIMEOUT_MS = 120_000;
const EXTRA_PER_PROVISIONING_MS = 45_000; // per workspace beyond FREE_CONCURRENT provisioning at once
const FREE_CONCURRENT = 3;
const PROVISION_CHECK_MS = 2_000;
const APPROVALS_POLL_MS = 10_000;
const ORG_IMPORT_TIMEOUT_MS = 120_000;
const SELECT_AFTER_CREATE_MS = 500;
const CONFIG_ADVANCE_MS = 3_000;
const SECRET_KEY = /^[A-Z][A-Z0-9_]*$/;
// Value shapes of well-known keys: a mismatch is a hint, never a refusal.
const VALUE_SHAPES = [
  [/^(GITHUB|GH)_/, /^(ghp_|github_pat_|gho_|ghs_)/, "GitHub tokens start with ghp_ or github_pat_"],
  [/^ANTHROPIC_/, /^sk-ant-/, "Anthropic keys start with sk-ant-"],
  [/^OPENROUTER_/, /^sk-or-/, "OpenRouter keys start with sk-or-"],
  [/^OPENAI_/, /^sk-/, "OpenAI keys start with sk-"],
];

let canvas;
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const csv = (value) => (value || "").split(",").map((s) => s.trim()).filter(Boolean);

export function install(core) {
  canvas = core;
  mountToolbarButtons();
  labelShortcuts();
  installCopyButtons();
  installCreate();
  installDeploys();
  installEmptyState();
  installPalette();
  installBundles();
  installFolderImport();
  installOnboarding();
  installSettings();
  installApprovals();
  installProvisionWatch();
}

// --- shared ---------------------------------------------------------------------------------------

// Shortcut hints read as the operator's keyboard has them (⌘ on a Mac, Ctrl elsewhere).
const onMac = () => /Mac|iPhone|iPad/.test(navigator.platform);
const shortcut = (key) => (onMac() ? `⌘${key}` : `Ctrl ${key}`);

function labelShortcuts() {
  for (const kbd of $$("kbd[data-shortcut]")) kbd.textContent = shortcut(kbd.dataset.shortcut === "Comma" ? "," : kbd.dataset.shortcut);
}

function mountToolbarButtons() {
  const slot = document.getElementById("toolbar-actions");
  const holder = document.getElementById("surface-toolbar-buttons");
  if (slot && holder) slot.append(...holder.children);
  holder?.remove();
}

// Open a modal <dialog>; focus goes back to what had it when the dialog closes.
function showDialog(dialog) {
  const opener = document.activeElement;
  if (!dialog.open) dialog.showModal();
  dialog.addEventListener("close", () => { if (opener?.isConnected) opener.focus({ preventScroll: true }); }, { once: true });
}

function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  const dialog = $("#surface-confirm");
  $("#surface-confirm-title").textContent = title;
  $("[data-confirm-message]", dialog).textContent = message;
  const ok = $("[data-confirm-ok]", dialog);
  ok.textContent = confirmLabel;
  ok.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
  dialog.returnValue = "";
  showDialog(dialog);
  ok.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

function showError(el, message) {
  if (!el) return;
  el.textContent = message || "";
  el.hidden = !message;
}

async function copyText(text, button) {
  let copied = false;
  try { await navigator.clipboard.writeText(text); copied = true; } catch { copied = false; }
  if (!copied) {
    // No clipboard permission (e.g. a plain-http host): select the text so ⌘C works.
    const range = document.createRange();
    const target = button?.closest(".copy-line, .snippet")?.querySelector("code, pre");
    if (target) { range.selectNodeContents(target); getSelection().removeAllRanges(); getSelection().addRange(range); }
  }
  if (button) {
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = copied ? "Copied" : `Press ${shortcut("C")}`;
    setTimeout(() => { button.textContent = label; }, 1500);
  }
}

function installCopyButtons() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = button.closest("dialog, aside, section")?.querySelector(button.dataset.copy) ?? $(button.dataset.copy);
    if (source) copyText(source.textContent, button);
  });
}

const typing = (target) => target?.closest?.("input, textarea, select, [contenteditable=true]");

// --- create dialog (§2.2) -----------------------------------------------------------------------------

function installCreate() {
  const dialog = $("#create-dialog");
  const fab = $("#new-workspace");
  canvas.on("select", () => { fab.hidden = true; });
  canvas.on("deselect", () => { fab.hidden = false; });
  fab.hidden = Boolean(canvas.selectedId);
  canvas.on("open-create", (detail) => openCreate(detail || {}));
  document.addEventListener("click", (event) => {
    if (event.target.closest('[data-action="open-create"]')) openCreate({});
    if (event.target.closest('[data-action="create-cancel"]')) dialog.close();
  });
  dialog.addEventListener("change", (event) => {
    if (event.target.id === "cw-external") syncExternal();
    if (event.target.id === "cw-template") applyTemplateDefaults(event.target);
  });
  dialog.addEventListener("submit", (event) => {
    if (event.target.id !== "create-form") return;
    event.preventDefault();
    submitCreate(event.target);
  });
}

async function openCreate({ parentId = "" } = {}) {
  const dialog = $("#create-dialog");
  const host = $("#create-form-host");
  const query = parentId ? `?parent=${encodeURIComponent(parentId)}` : "";
  const html = await fragment(`/canvas/create-form/${query}`);
  if (html === null) { canvas.toast("Could not load the create form", "error"); return; }
  host.innerHTML = html;
  $("[data-create-submit]", dialog).disabled = false;
  showDialog(dialog);
  $("#cw-name", dialog).focus();
}

function syncExternal() {
  const external = $("#cw-external").checked;
  $("[data-template-row]").hidden = external;
}

// Picking a template proposes its tier and shows its model as the default.
function applyTemplateDefaults(select) {
  const option = select.selectedOptions[0];
  const tier = Number(option?.dataset.tier);
  if (tier >= 1 && tier <= 4) { const radio = $(`#create-form input[name=tier][value="${tier}"]`); if (radio) radio.checked = true; }
  $("#cw-model").placeholder = option?.dataset.model || "Template default";
}

// Budget in USD as typed → the API's unit (cents); "" → null (unlimited); NaN for bad input.
export function budgetCents(text) {
  const value = String(text ?? "").trim();
  if (!value) return null;
  if (!/^\d+(\.\d{1,2})?$/.test(value)) return NaN;
  return Math.round(Number(value) * 100);
}

async function submitCreate(form) {
  const error = $("[data-form-error]", form);
  const submit = $("[data-create-submit]");
  const data = new FormData(form);
  const name = String(data.get("name") || "").trim();
  if (!name) { showError(error, "Name is required"); $("#cw-name").focus(); return; }
  const budget = budgetCents(data.get("budget"));
  if (Number.isNaN(budget)) { showError(error, "Budget limit must be an amount in USD, e.g. 25 or 12.50"); $("#cw-budget").focus(); return; }
  const external = data.get("external") === "on";
  const parentId = String(data.get("parent_id") || "");
  const body = { name, tier: Number(data.get("tier")) || 3, budget_limit: budget, canvas: newSpot(parentId) };
  const role = String(data.get("role") || "").trim();
  const model = String(data.get("model") || "").trim();
  const template = String(data.get("template") || "");
  if (role) body.role = role;
  if (model) body.model = model;
  if (parentId) body.parent_id = parentId;
  if (external) { body.external = true; body.runtime = "external"; } else if (template) body.template = template;

  showError(error, "");
  submit.disabled = true;
  const response = await api("POST", "/workspaces", body);
  submit.disabled = false;
  if (!response.ok) { showError(error, response.error || `Create failed (${response.status})`); return; }
  $("#create-dialog").close();
  const { id, connection } = response.data;
  if (!connection) { await revealNew(id); return; }
  // External: the connection block first; the new card is selected once the operator has it.
  showConnection(connection);
  await revealNew(id, { select: false });
  $("#connect-dialog").addEventListener("close", () => { if (canvas.card(id)) canvas.select(id, { tab: "details" }); }, { once: true });
}

// Where a new card goes: the next free grid slot of its parent, else a free spot near the
// centre of what the operator is looking at (absolute canvas coordinates, as the API stores them).
function newSpot(parentId) {
  const parent = canvas.card(parentId);
  if (parent) {
    const children = canvas.childCards(parent);
    const slot = geo.freeSlot(children.map((c) => ({ ...canvas.rel(c), ...canvas.size(c) })),
      children.map((c) => { const s = canvas.size(c); return [s.w, s.h]; }), [geo.LEAF_W, geo.LEAF_H]);
    const origin = canvas.absPos(parent);
    return { x: Math.round(origin.x + slot.x), y: Math.round(origin.y + slot.y) };
  }
  const { w, h } = canvas.screenSize();
  const centre = geo.toWorld(canvas.view, { x: w / 2, y: h / 2 });
  const roots = canvas.allCards().filter((el) => !canvas.parentCard(el)).map((el) => canvas.absBox(el));
  const box = { x: Math.round(centre.x - geo.LEAF_W / 2), y: Math.round(centre.y - geo.LEAF_H / 2), w: geo.LEAF_W, h: geo.LEAF_H };
  for (let step = 0; step < 50 && roots.some((r) => geo.overlaps(box, r)); step += 1) box.x += geo.LEAF_W + 40;
  return { x: box.x, y: box.y };
}

// Show a card the platform just created: fetch its rendering (idempotent with the live part,
// which adds it on the WS event too), bring it into view, then select it.
async function revealNew(id, { tab = "chat", select = true } = {}) {
  const el = await canvas.refreshCard(id);
  if (!el) return null;
  canvas.panTo(el);
  if (select) setTimeout(() => { if (canvas.card(id)) canvas.select(id, { tab }); }, SELECT_AFTER_CREATE_MS);
  return el;
}

function showConnection(connection) {
  const dialog = $("#connect-dialog");
  for (const el of $$("[data-connect]", dialog)) {
    const value = connection[el.dataset.connect];
    el.textContent = value ?? "";
    el.closest("dd, .snippet").hidden = value === undefined;
    const dt = el.closest("dd")?.previousElementSibling;
    if (dt) dt.hidden = value === undefined;
  }
  showDialog(dialog);
  // The token exists only in this dialog: clear it once the operator is done with it.
  dialog.addEventListener("close", () => { for (const el of $$("[data-connect]", dialog)) el.textContent = ""; }, { once: true });
}

// --- deploying templates and orgs (§4.1, §4.2) ---------------------------------------------------------

let deploying = false;

function deployButtons() {
  return $$('[data-action="deploy-template"], [data-action="create-blank"], [data-action="import-org"]');
}

function setDeploying(on, button) {
  deploying = on;
  for (const b of deployButtons()) b.disabled = on;
  if (button && button.dataset.action !== "deploy-template") {
    if (on) { button.dataset.label = button.textContent; button.textContent = "Deploying…"; }
    else if (button.dataset.label) { button.textContent = button.dataset.label; delete button.dataset.label; }
  }
  button?.classList.toggle("is-deploying", on);
}

// Run one deploy at a time (every deploy button is disabled while it runs).
async function runDeploy(button, work) {
  if (deploying) return;
  for (const el of $$("[data-deploy-error]")) showError(el, "");
  setDeploying(true, button);
  try { await work(); } finally { setDeploying(false, button); }
}

function deployError(message) {
  for (const el of $$("[data-deploy-error]")) showError(el, message);
  canvas.toast(message, "error");
}

function installDeploys() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest('[data-action="deploy-template"], [data-action="create-blank"], [data-action="import-org"]');
    if (!button || button.disabled) return;
    if (button.dataset.action === "create-blank") createBlank(button);
    else if (button.dataset.action === "deploy-template") deployTemplate(button);
    else importOrg(button);
  });
  for (const id of ["keys-dialog", "org-dialog"]) {
    $(`#${id}`).addEventListener("click", (event) => {
      if (event.target.closest('[data-action="keys-cancel"], [data-action="org-cancel"]')) $(`#${id}`).close("cancel");
    });
  }
}

function createBlank(button) {
  return runDeploy(button, async () => {
    const response = await api("POST", "/workspaces", { name: "My First Agent", tier: 2, canvas: { x: 200, y: 150 } });
    if (!response.ok) { deployError(`Could not create the workspace: ${response.error}`); return; }
    await revealNew(response.data.id);
  });
}

// Names of the global secrets (never values: the API does not send them).
async function globalSecretNames() {
  const response = await api("GET", "/settings/secrets");
  return new Set(response.ok && Array.isArray(response.data) ? response.data.map((s) => s.key) : []);
}

async function deployTemplate(button) {
  // Preflight: the template's required keys that no global secret provides yet.
  const required = csv(button.dataset.requiredEnv);
  const present = required.length ? await globalSecretNames() : new Set();
  const missing = required.filter((key) => !present.has(key));
  if (missing.length && !(await askForKeys(button.dataset.templateName, missing))) return;
  await runDeploy(button, async () => {
    const tier = Number(button.dataset.tier);
    const body = { name: button.dataset.templateName, template: button.dataset.templateId, canvas: newSpot("") };
    if (tier >= 1 && tier <= 4) body.tier = tier;
    const response = await api("POST", "/workspaces", body);
    if (!response.ok) { deployError(`Could not deploy ${button.dataset.templateName}: ${response.error}`); return; }
    await revealNew(response.data.id); // the palette stays open: operators often deploy several
  });
}

function keyField(key, { required = true } = {}) {
  const id = `key-${key}`;
  const field = document.createElement("div");
  field.className = "field";
  field.innerHTML = '<label><code></code></label><input type="password" autocomplete="new-password" spellcheck="false">';
  field.querySelector("label").htmlFor = id;
  field.querySelector("code").textContent = key;
  const input = field.querySelector("input");
  input.id = id;
  input.name = key;
  input.placeholder = required ? "Required" : "Optional";
  return field;
}

async function saveKeys(entries) {
  for (const [key, value] of entries) {
    const response = await api("PUT", "/settings/secrets", { key, value });
    if (!response.ok) return `Could not save ${key}: ${response.error}`;
  }
  return null;
}

// The Missing Keys modal: one password input per key; resolves true once all are saved.
function askForKeys(templateName, missing) {
  const dialog = $("#keys-dialog");
  const fields = $("[data-keys-fields]", dialog);
  const error = $("[data-keys-error]", dialog);
  $("[data-keys-intro]", dialog).textContent = `${templateName} needs ${missing.length === 1 ? "this key" : "these keys"} before it can start:`;
  fields.replaceChildren(...missing.map((key) => keyField(key)));
  showError(error, "");
  dialog.returnValue = "";
  showDialog(dialog);
  fields.querySelector("input")?.focus();
  return new Promise((resolve) => {
    const save = async () => {
      const entries = missing.map((key) => [key, $(`#key-${CSS.escape(key)}`, dialog).value]);
      const empty = entries.find(([, value]) => !value);
      if (empty) { showError(error, `Enter a value for ${empty[0]}`); $(`#key-${CSS.escape(empty[0])}`, dialog).focus(); return; }
      saveButton.disabled = true;
      const problem = await saveKeys(entries);
      saveButton.disabled = false;
      if (problem) { showError(error, problem); return; }
      dialog.close("saved");
    };
    const saveButton = $('[data-action="keys-save"]', dialog);
    const form = $("[data-keys-form]", dialog);
    const onSubmit = (event) => { event.preventDefault(); save(); };
    saveButton.addEventListener("click", save);
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("close", () => {
      saveButton.removeEventListener("click", save);
      form.removeEventListener("submit", onSubmit);
      fields.replaceChildren(); // no key value stays in the page
      resolve(dialog.returnValue === "saved");
    }, { once: true });
  });
}

// Org Import Preflight: required keys block the import until set, recommended ones only warn.
function orgPreflight(name, required, recommended, present) {
  const dialog = $("#org-dialog");
  const list = $("[data-org-env]", dialog);
  const error = $("[data-org-error]", dialog);
  const confirm = $('[data-action="org-confirm"]', dialog);
  $("#org-title").textContent = `Import ${name}`;
  $("[data-org-intro]", dialog).textContent = "This org uses these global secrets. Keys already set are struck through.";
  const rows = [];
  for (const [key, isRequired] of [...required.map((k) => [k, true]), ...recommended.filter((k) => !required.includes(k)).map((k) => [k, false])]) {
    const li = document.createElement("li");
    li.className = `env-row${present.has(key) ? " is-set" : ""}`;
    li.innerHTML = '<span class="env-name"><code></code><span class="env-kind"></span></span>';
    li.querySelector("code").textContent = key;
    li.querySelector(".env-kind").textContent = present.has(key) ? "set" : isRequired ? "required" : "recommended";
    if (!present.has(key)) {
      const field = keyField(key, { required: isRequired });
      field.querySelector("label").remove();
      field.querySelector("input").setAttribute("aria-label", `Value for ${key}`);
      li.append(field);
      rows.push([key, isRequired, field.querySelector("input")]);
    }
    list.append(li);
  }
  const sync = () => { confirm.disabled = rows.some(([, isRequired, input]) => isRequired && !input.value); };
  list.addEventListener("input", sync);
  sync();
  showError(error, "");
  dialog.returnValue = "";
  showDialog(dialog);
  (rows[0]?.[2] ?? confirm).focus();
  return new Promise((resolve) => {
    const go = async () => {
      confirm.disabled = true;
      const problem = await saveKeys(rows.filter(([, , input]) => input.value).map(([key, , input]) => [key, input.value]));
      if (problem) { showError(error, problem); sync(); return; }
      dialog.close("import");
    };
    confirm.addEventListener("click", go);
    dialog.addEventListener("close", () => {
      confirm.removeEventListener("click", go);
      list.removeEventListener("input", sync);
      list.replaceChildren();
      confirm.disabled = false;
      resolve(dialog.returnValue === "import");
    }, { once: true });
  });
}

async function importOrg(button) {
  const row = button.closest(".org-row");
  const { orgDir: dir, orgName: name } = row.dataset;
  const required = csv(row.dataset.requiredEnv), recommended = csv(row.dataset.recommendedEnv);
  if (required.length || recommended.length) {
    const present = await globalSecretNames();
    if (!(await orgPreflight(name, required, recommended, present))) return;
  }
  await runDeploy(button, async () => {
    const response = await api("POST", "/org/import", { dir }, { timeoutMs: ORG_IMPORT_TIMEOUT_MS });
    if (!response.ok) { deployError(`Could not import ${name}: ${response.error}`); return; }
    const { org, count, workspaces } = response.data;
    canvas.toast(`Imported "${org}" (${count} workspace${count === 1 ? "" : "s"})`, "success");
    closePalette(); // the view fits the new org: all of it, not half under the drawer
    // The cards also arrive over the WebSocket; a re-sync makes sure all of them are here now.
    await canvas.resync();
    const roots = workspaces.filter((w) => !w.parent_id).map((w) => canvas.card(w.id)).filter(Boolean);
    if (roots.length) canvas.fit(roots, { maxZoom: 1 });
  });
}

// --- empty state (§4.1) -------------------------------------------------------------------------------

function installEmptyState() {
  let loaded = false;
  const load = async () => {
    if (loaded) return;
    loaded = true;
    const html = await fragment("/canvas/welcome/");
    const host = $("#welcome-templates");
    if (html === null) { host.innerHTML = '<p class="empty-line">Templates could not be loaded.</p>'; loaded = false; return; }
    host.innerHTML = html;
    $("#welcome-orgs").replaceChildren(...$$(".org-section", host));
    for (const b of deployButtons()) b.disabled = deploying;
  };
  const sync = () => { if (document.body.classList.contains("is-empty")) load(); };
  canvas.on("counts", sync);
  sync();
}

// --- template palette (§4.2) ---------------------------------------------------------------------------

function paletteOpen() { return document.body.classList.contains("palette-open"); }

async function openPalette() {
  const drawer = $("#palette");
  drawer.inert = false;
  document.body.classList.add("palette-open");
  $("#palette-toggle")?.setAttribute("aria-expanded", "true");
  const html = await fragment("/canvas/palette/");
  if (html !== null) {
    $("#palette-body").innerHTML = html;
    for (const b of deployButtons()) b.disabled = deploying;
  }
}

function closePalette() {
  if (!paletteOpen()) return;
  document.body.classList.remove("palette-open");
  $("#palette").inert = true;
  $("#palette-toggle")?.setAttribute("aria-expanded", "false");
}

function installPalette() {
  $("#palette-toggle")?.addEventListener("click", () => (paletteOpen() ? closePalette() : openPalette()));
  $('[data-action="palette-close"]').addEventListener("click", () => { closePalette(); $("#palette-toggle")?.focus(); });
  canvas.on("open-palette", () => openPalette());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && paletteOpen() && !document.querySelector("dialog[open]") && $("#palette").contains(document.activeElement)) {
      closePalette();
      $("#palette-toggle")?.focus();
    }
  });
}

// --- bundles (§4.5 import) --------------------------------------------------------------------------------

function installBundles() {
  const input = $("#bundle-input");
  const overlay = $("#bundle-drop");
  document.addEventListener("click", (event) => { if (event.target.closest('[data-action="bundle-pick"]')) input.click(); });
  input.addEventListener("change", () => {
    const [file] = input.files;
    input.value = "";
    if (file) importBundle(file);
  });
  // A file dragged anywhere over the window shows the drop overlay, unless the element under
  // it takes files itself (a chat composer: it marks itself data-drop-zone or handles the event).
  const ownDrop = (event) => event.defaultPrevented || event.target.closest?.("[data-drop-zone]");
  const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
  let depth = 0;
  const hide = () => { depth = 0; overlay.hidden = true; };
  window.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event) || ownDrop(event)) return;
    depth += 1;
    overlay.hidden = false;
  });
  window.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || ownDrop(event)) { if (!overlay.hidden && ownDrop(event)) hide(); return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
  window.addEventListener("drop", (event) => {
    if (!carriesFiles(event) || ownDrop(event)) { hide(); return; }
    event.preventDefault();
    hide();
    const [file] = event.dataTransfer.files;
    if (file) importBundle(file);
  });
}

async function importBundle(file) {
  if (!file.name.toLowerCase().endsWith(".bundle.json")) { canvas.toast("Only .bundle.json files are accepted", "error"); return; }
  let bundle;
  try { bundle = JSON.parse(await file.text()); } catch { canvas.toast(`${file.name} is not valid JSON`, "error"); return; }
  if (!bundle || typeof bundle !== "object" || Array.isArray(bundle)) { canvas.toast(`${file.name} is not a bundle (expected a JSON object)`, "error"); return; }
  const response = await api("POST", "/bundles/import", bundle, { timeoutMs: 60_000 });
  if (!response.ok) {
    const detail = response.data && typeof response.data === "object" && response.data.detail;
    canvas.toast(`Bundle import failed: ${response.error}${detail ? ` (${detail})` : ""}`, "error");
    return;
  }
  canvas.toast(`Imported "${response.data.name}" successfully`, "success");
  await canvas.resync();
  const el = canvas.card(response.data.workspace_id);
  if (el) canvas.panTo(el);
}

// --- Import Agent Folder (§4.2): a local folder becomes a template ------------------------------------------

const MAX_TEMPLATE_FILE_BYTES = 1 << 20; // the API's per-file limit

function installFolderImport() {
  const input = $("#folder-input");
  document.addEventListener("click", (event) => { if (event.target.closest('[data-action="folder-pick"]')) input.click(); });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    if (files.length) importFolder(files);
  });
}

// Text files up to 1 MiB, keyed by their path inside the folder; dot-folders (.git…) and binary
// files are left out, as the template would not use them.
export async function folderFiles(files) {
  const result = {}, skipped = [];
  for (const file of files) {
    const [, ...parts] = (file.webkitRelativePath || file.name).split("/");
    const path = parts.join("/");
    if (!path || parts.some((part) => part.startsWith("."))) continue;
    if (file.size > MAX_TEMPLATE_FILE_BYTES) { skipped.push(path); continue; }
    const text = await file.text();
    if (text.includes("\u0000")) { skipped.push(path); continue; }
    result[path] = text;
  }
  return { files: result, skipped };
}

async function importFolder(list) {
  const folder = (list[0].webkitRelativePath || "").split("/")[0] || "template";
  const { files, skipped } = await folderFiles(list);
  if (!Object.keys(files).length) { canvas.toast(`${folder} has no text files to import`, "error"); return; }
  const response = await api("POST", "/templates/import", { name: folder, files });
  if (!response.ok) {
    const reason = response.status === 409 ? `a template "${response.data?.id}" already exists` : response.error;
    canvas.toast(`Could not import ${folder}: ${reason}`, "error");
    return;
  }
  const note = skipped.length ? ` (skipped ${skipped.length} binary or large file${skipped.length === 1 ? "" : "s"})` : "";
  canvas.toast(`Imported template "${response.data.name}"${note}`, "success");
  if (paletteOpen()) await openPalette();
}

// --- onboarding guide (§4.3) --------------------------------------------------------------------------------

function installOnboarding() {
  const guide = $("#onboarding");
  if (localStorage.getItem(ONBOARDING_DONE_KEY)) return;
  let step = Number(localStorage.getItem(ONBOARDING_STEP_KEY)) || 1;
  if (step === 1 && canvas.allCards().length) step = 2;
  let configTimer = null;

  const show = (next) => {
    step = Math.min(4, Math.max(1, next));
    localStorage.setItem(ONBOARDING_STEP_KEY, String(step));
    for (const section of $$("[data-ob-step]", guide)) section.hidden = Number(section.dataset.obStep) !== step;
    $("[data-ob-label]", guide).textContent = `Step ${step} of 4`;
    $(".ob-progress", guide).setAttribute("aria-valuenow", String(step));
    guide.style.setProperty("--ob-progress", `${step * 25}%`);
  };
  const finish = () => {
    clearTimeout(configTimer);
    localStorage.setItem(ONBOARDING_DONE_KEY, "1");
    localStorage.removeItem(ONBOARDING_STEP_KEY);
    guide.hidden = true;
    document.body.classList.remove("onboarding-open");
  };
  const target = () => canvas.selectedId || canvas.idOf(canvas.allCards()[0]);

  guide.hidden = false;
  document.body.classList.add("onboarding-open");
  // The legend and zoom controls stack above the guide (surfaces.css reads this height).
  new ResizeObserver(() => document.body.style.setProperty("--onboarding-h", `${guide.offsetHeight}px`)).observe(guide);
  show(step);

  guide.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "onboarding-next") { if (step === 4) finish(); else show(step + 1); }
    else if (action === "onboarding-skip" || action === "onboarding-done") finish();
    else if (action === "onboarding-config" || action === "onboarding-chat") {
      const id = target();
      if (!id) { canvas.toast("Create a workspace first", "info"); show(1); return; }
      canvas.select(id, { tab: action === "onboarding-config" ? "config" : "chat" });
      if (action === "onboarding-config") {
        clearTimeout(configTimer);
        configTimer = setTimeout(() => { if (step === 2) show(3); }, CONFIG_ADVANCE_MS);
      }
    }
  });
  canvas.on("counts", ({ total }) => { if (step === 1 && total > 0 && !guide.hidden) show(2); });
  canvas.on("ws-event", (envelope) => {
    if (step === 3 && !guide.hidden && ["AGENT_MESSAGE", "A2A_RESPONSE"].includes(envelope?.event)) show(4);
  });
}

// --- settings drawer (§4.4) ------------------------------------------------------------------------------------

function settingsOpen() { return $("#settings-drawer").classList.contains("is-open"); }

function secretFormDirty() {
  const form = $("[data-secret-form]");
  return !form.hidden && Boolean(form.elements.key.value || form.elements.value.value);
}

async function openSettings() {
  const drawer = $("#settings-drawer");
  drawer.inert = false;
  drawer.classList.add("is-open");
  document.body.classList.add("settings-open");
  $("#settings-toggle")?.setAttribute("aria-expanded", "true");
  await loadSecrets();
  if (!$("#settings-panel-tokens").hidden) loadTokens();
  (drawer.querySelector('[role=tab][aria-selected="true"]') ?? drawer).focus();
}

async function closeSettings({ force = false } = {}) {
  if (!settingsOpen()) return true;
  if (!force && secretFormDirty()) {
    const discard = await confirmDialog({
      title: "Discard unsaved changes?", message: "The key you were adding or editing has not been saved.",
      confirmLabel: "Discard", danger: true,
    });
    if (!discard) return false;
  }
  resetSecretForm();
  hideToken();
  const drawer = $("#settings-drawer");
  drawer.classList.remove("is-open");
  drawer.inert = true;
  document.body.classList.remove("settings-open");
  const toggle = $("#settings-toggle");
  toggle?.setAttribute("aria-expanded", "false");
  if (drawer.contains(document.activeElement)) toggle?.focus();
  return true;
}

async function loadSecrets() {
  const html = await fragment("/canvas/settings/secrets/");
  if (html !== null) $("#secrets-list-host").innerHTML = html;
  filterSecrets();
}

function filterSecrets() {
  const query = $("[data-secret-search]").value.trim().toUpperCase();
  for (const row of $$(".secret-row")) row.hidden = Boolean(query) && !row.dataset.key.includes(query);
  for (const group of $$(".secret-group")) group.hidden = !$$(".secret-row", group).some((row) => !row.hidden);
}

function resetSecretForm() {
  const form = $("[data-secret-form]");
  form.reset();
  form.hidden = true;
  form.elements.key.readOnly = false;
  showError($("[data-secret-error]"), "");
  $("[data-secret-hint]").textContent = "";
}

function openSecretForm(key = "") {
  const form = $("[data-secret-form]");
  resetSecretForm();
  form.hidden = false;
  $("[data-secret-form-title]").textContent = key ? `Replace ${key}` : "Add New Key";
  form.elements.key.value = key;
  form.elements.key.readOnly = Boolean(key);
  $("[data-key-suggestions]").hidden = Boolean(key);
  (key ? form.elements.value : form.elements.key).focus();
}

export function secretKeyProblem(key) {
  if (!key) return "Enter a key name";
  if (!SECRET_KEY.test(key)) return "Key names are UPPER_SNAKE_CASE: capital letters, digits and _ (e.g. ANTHROPIC_API_KEY)";
  return null;
}

export function valueHint(key, value) {
  if (!value) return "";
  for (const [keyShape, valueShape, hint] of VALUE_SHAPES) if (keyShape.test(key)) return valueShape.test(value) ? "" : hint;
  return "";
}

async function saveSecret(form) {
  const key = form.elements.key.value.trim();
  const value = form.elements.value.value;
  const error = $("[data-secret-error]");
  const problem = secretKeyProblem(key) || (!value && "Enter a value");
  if (problem) { showError(error, problem); (value ? form.elements.key : form.elements.value).focus(); return; }
  const response = await api("PUT", "/settings/secrets", { key, value });
  if (!response.ok) { showError(error, response.error || "Could not save the key"); return; }
  resetSecretForm();
  canvas.toast(`Saved ${key}`, "success");
  await loadSecrets();
}

async function deleteSecret(key) {
  const sure = await confirmDialog({
    title: "Delete key", danger: true, confirmLabel: "Delete",
    message: `Delete ${key}? Workspaces that use it are restarted without it. This cannot be undone.`,
  });
  if (!sure) return;
  const response = await api("DELETE", `/settings/secrets/${encodeURIComponent(key)}`);
  if (!response.ok && response.status !== 404) { canvas.toast(`Could not delete ${key}: ${response.error}`, "error"); return; }
  canvas.toast(`Deleted ${key}`, "success");
  await loadSecrets();
}

function selectSettingsTab(name) {
  for (const tab of $$("#settings-drawer [role=tab]")) {
    const on = tab.id === `settings-tab-${name}`;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`#${tab.getAttribute("aria-controls")}`).hidden = !on;
  }
  if (name === "tokens") loadTokens();
}

// --- workspace tokens (the selected workspace by default) ---

function fillTokenWorkspaces() {
  const select = $("#tokens-workspace");
  const current = select.value || canvas.selectedId || "";
  select.replaceChildren(...canvas.allCards().map((el) => {
    const option = document.createElement("option");
    option.value = canvas.idOf(el);
    option.textContent = `${"\u2003".repeat(canvas.depthOf(el))}T${el.dataset.tier} · ${canvas.nameOf(el)}`;
    return option;
  }));
  if (canvas.card(current)) select.value = current;
  return select.value;
}

function hideToken() {
  const reveal = $("[data-token-reveal]");
  reveal.hidden = true;
  $("[data-token-value]").textContent = "";
}

async function loadTokens() {
  const id = fillTokenWorkspaces();
  const list = $("[data-token-list]");
  const count = $("[data-token-count]");
  $('[data-action="token-create"]').disabled = !id;
  showError($("[data-token-error]"), "");
  if (!id) { list.innerHTML = '<li class="empty-line">No workspaces yet.</li>'; count.textContent = ""; return; }
  const response = await api("GET", `/workspaces/${id}/tokens`);
  if (!response.ok) { list.innerHTML = ""; showError($("[data-token-error]"), `Tokens could not be loaded: ${response.error}`); return; }
  const { tokens, count: n } = response.data;
  count.textContent = `${n} active`;
  list.replaceChildren(...tokens.map((token) => {
    const li = document.createElement("li");
    li.className = "token-row";
    li.innerHTML = '<code class="token-prefix"></code><span class="token-dates"></span><button type="button" class="btn btn-ghost btn-small danger-text">Revoke</button>';
    li.querySelector("code").textContent = `${token.prefix}…`;
    li.querySelector(".token-dates").textContent = `created ${shortDate(token.created_at)} · ${token.last_used_at ? `used ${shortDate(token.last_used_at)}` : "never used"}`;
    const revoke = li.querySelector("button");
    revoke.setAttribute("aria-label", `Revoke token ${token.prefix}`);
    revoke.addEventListener("click", () => revokeToken(id, token));
    return li;
  }));
  if (!tokens.length) list.innerHTML = '<li class="empty-line">No active tokens.</li>';
}

function shortDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

async function createToken() {
  const id = $("#tokens-workspace").value;
  if (!id) return;
  const response = await api("POST", `/workspaces/${id}/tokens`);
  if (!response.ok) { showError($("[data-token-error]"), response.error); return; }
  await loadTokens();
  $("[data-token-value]").textContent = response.data.auth_token;
  $("[data-token-reveal]").hidden = false;
}

async function revokeToken(workspaceId, token) {
  const sure = await confirmDialog({
    title: "Revoke token", danger: true, confirmLabel: "Revoke",
    message: `Revoke the token ${token.prefix}…? An agent using it can no longer call the platform.`,
  });
  if (!sure) return;
  const response = await api("DELETE", `/workspaces/${workspaceId}/tokens/${token.id}`);
  if (!response.ok) { showError($("[data-token-error]"), response.error); return; }
  hideToken();
  await loadTokens();
}

function installSettings() {
  const drawer = $("#settings-drawer");
  const form = $("[data-secret-form]");
  $("#settings-toggle")?.addEventListener("click", () => (settingsOpen() ? closeSettings() : openSettings()));
  canvas.on("open-settings", () => openSettings());
  drawer.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action], [role=tab], [data-suggest]");
    if (!button) return;
    if (button.getAttribute("role") === "tab") { selectSettingsTab(button.id.replace("settings-tab-", "")); return; }
    const action = button.dataset.action;
    const key = button.closest(".secret-row")?.dataset.key;
    if (action === "settings-close") closeSettings();
    else if (action === "secret-add") openSecretForm();
    else if (action === "secret-cancel") resetSecretForm();
    else if (action === "secret-edit") openSecretForm(key);
    else if (action === "secret-delete") deleteSecret(key);
    else if (action === "token-create") createToken();
    else if (button.dataset.suggest) { form.elements.key.value = button.dataset.suggest; form.elements.value.focus(); }
  });
  drawer.addEventListener("keydown", (event) => {
    if (event.target.getAttribute("role") !== "tab" || !["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) return;
    const tabs = $$("[role=tab]", drawer);
    const index = tabs.indexOf(event.target);
    const next = event.key === "Home" ? 0 : event.key === "End" ? tabs.length - 1 : (index + (event.key === "ArrowRight" ? 1 : -1) + tabs.length) % tabs.length;
    event.preventDefault();
    tabs[next].focus();
    selectSettingsTab(tabs[next].id.replace("settings-tab-", ""));
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); saveSecret(form); });
  form.elements.key.addEventListener("input", () => {
    const input = form.elements.key;
    const upper = input.value.toUpperCase().replace(/[\s-]/g, "_");
    if (upper !== input.value) input.value = upper;
  });
  form.addEventListener("input", () => {
    $("[data-secret-hint]").textContent = valueHint(form.elements.key.value, form.elements.value.value);
  });
  $("[data-secret-search]").addEventListener("input", filterSecrets);
  $("#tokens-workspace").addEventListener("change", () => { hideToken(); loadTokens(); });
  canvas.on("select", () => { if (settingsOpen() && !$("#settings-panel-tokens").hidden) { $("#tokens-workspace").value = canvas.selectedId; hideToken(); loadTokens(); } });

  document.addEventListener("keydown", (event) => {
    if ((event.metaKey || event.ctrlKey) && event.key === ",") {
      if (typing(event.target) && !drawer.contains(event.target)) return;
      event.preventDefault();
      if (settingsOpen()) closeSettings(); else openSettings();
    } else if (event.key === "Escape" && settingsOpen() && !document.querySelector("dialog[open]")) {
      if (typing(event.target) && !drawer.contains(event.target)) return;
      event.preventDefault(); // else this Esc's default action would close the guard dialog it opens
      closeSettings();
    }
  });
}

// --- approvals banner (§4.6) ---------------------------------------------------------------------------------

function installApprovals() {
  const host = document.getElementById("banners");
  let inFlight = false;
  const poll = async () => {
    if (inFlight) return;
    inFlight = true;
    const response = await api("GET", "/approvals/pending");
    inFlight = false;
    if (!response.ok || !Array.isArray(response.data)) return;
    const pending = new Map(response.data.map((a) => [a.id, a]));
    for (const banner of $$(".banner-approval", host)) if (!pending.has(banner.dataset.approvalId)) banner.remove();
    for (const approval of pending.values()) {
      if (!host.querySelector(`.banner-approval[data-approval-id="${CSS.escape(approval.id)}"]`)) host.append(approvalBanner(approval));
    }
  };
  setInterval(poll, APPROVALS_POLL_MS);
  canvas.on("ws-event", (envelope) => { if (String(envelope?.event || "").startsWith("APPROVAL_")) poll(); });
  poll();
}

function approvalBanner(approval) {
  const banner = document.createElement("div");
  banner.className = "banner banner-approval";
  banner.dataset.approvalId = approval.id;
  banner.setAttribute("role", "group");
  banner.setAttribute("aria-label", `Approval requested by ${approval.workspace_name}`);
  banner.innerHTML = `<span class="banner-icon" aria-hidden="true"><svg viewBox="0 0 16 16" width="16" height="16"><path d="M8 1.8 15 14H1z" fill="none" stroke="currentColor" stroke-width="1.4" stroke-linejoin="round"/><path d="M8 6.2v3.6M8 11.8v.1" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"/></svg></span>
    <div class="banner-text"><div><b class="banner-who"></b> asks for approval: <span class="banner-action"></span></div><div class="banner-sub"></div></div>
    <div class="banner-actions"><button type="button" class="btn btn-small btn-approve">Approve</button><button type="button" class="btn btn-small btn-ghost">Deny</button></div>`;
  banner.querySelector(".banner-who").textContent = approval.workspace_name || "A workspace";
  banner.querySelector(".banner-action").textContent = approval.action;
  const sub = banner.querySelector(".banner-sub");
  sub.textContent = approval.reason || "";
  sub.hidden = !approval.reason;
  const [approve, deny] = banner.querySelectorAll("button");
  const decide = async (decision) => {
    approve.disabled = deny.disabled = true;
    const response = await api("POST", `/workspaces/${approval.workspace_id}/approvals/${approval.id}/decide`, { decision });
    // 404: already decided (by another operator, or expired): either way it is no longer pending.
    if (response.ok || response.status === 404) {
      banner.remove();
      if (response.ok) canvas.toast(`${decision === "approved" ? "Approved" : "Denied"}: ${approval.action}`, "success");
      return;
    }
    approve.disabled = deny.disabled = false;
    canvas.toast(`Could not record the decision: ${response.error}`, "error");
  };
  approve.addEventListener("click", () => decide("approved"));
  deny.addEventListener("click", () => decide("denied"));
  return banner;
}

// --- provisioning-timeout banner (§4.7) -------------------------------------------------------------------------

// How long a card may stay provisioning: the template's timeout (or 2 min), plus 45 s for every
// workspace beyond three provisioning at once; the localStorage override replaces it outright.
export function provisionThresholdMs(templateMs, provisioningCount, overrideMs) {
  if (overrideMs > 0) return overrideMs;
  const base = templateMs > 0 ? templateMs : DEFAULT_PROVISION_TIMEOUT_MS;
  return base + Math.max(0, provisioningCount - FREE_CONCURRENT) * EXTRA_PER_PROVISIONING_MS;
}

function installProvisionWatch() {
  const host = document.getElementById("banners");
  const since = new Map(); // id → when it entered provisioning (as far as this page knows)
  const dismissed = new Set();
  const bannerOf = (id) => host.querySelector(`.banner-provision[data-workspace-id="${CSS.escape(id)}"]`);
  const forget = (id) => { since.delete(id); dismissed.delete(id); bannerOf(id)?.remove(); };

  const scan = () => {
    const now = Date.now();
    const cards = canvas.allCards().filter((el) => el.dataset.status === "provisioning");
    const ids = new Set(cards.map((el) => canvas.idOf(el)));
    for (const id of [...since.keys()]) if (!ids.has(id)) forget(id);
    const override = Number(localStorage.getItem(PROVISION_TIMEOUT_OVERRIDE_KEY)) || 0;
    for (const el of cards) {
      const id = canvas.idOf(el);
      if (!since.has(id)) {
        const updated = Date.parse(el.dataset.updatedAt);
        since.set(id, Number.isFinite(updated) && updated <= now ? updated : now);
      }
      const elapsed = now - since.get(id);
      const limit = provisionThresholdMs(Number(el.dataset.provisionTimeoutMs) || 0, cards.length, override);
      if (elapsed < limit || dismissed.has(id)) continue;
      const banner = bannerOf(id) ?? host.appendChild(provisionBanner(id, { retry, cancel, dismiss }));
      banner.querySelector(".banner-who").textContent = canvas.nameOf(el);
      banner.querySelector(".banner-elapsed").textContent = duration(elapsed);
    }
  };
  const retry = async (id) => {
    const response = await api("POST", `/workspaces/${id}/restart`);
    if (!response.ok) { canvas.toast(`Retry failed: ${response.error}`, "error"); return; }
    since.set(id, Date.now());
    bannerOf(id)?.remove();
    canvas.toast(`Restarting ${canvas.nameOf(canvas.card(id))}`, "info");
  };
  const cancel = async (id) => {
    const name = canvas.nameOf(canvas.card(id)) || "this workspace";
    const sure = await confirmDialog({
      title: "Cancel deployment", danger: true, confirmLabel: "Delete workspace",
      message: `Stop provisioning "${name}" and delete it (with any sub-workspaces)? This cannot be undone.`,
    });
    if (!sure) return;
    const response = await api("DELETE", `/workspaces/${id}?confirm=true`);
    if (!response.ok) { canvas.toast(`Cancel failed: ${response.error}`, "error"); return; }
    forget(id);
    canvas.removeCard(id);
  };
  const dismiss = (id) => { dismissed.add(id); bannerOf(id)?.remove(); };

  // A card that leaves provisioning and comes back (a restart) starts a new clock.
  canvas.on("card-state", ({ id, state }) => {
    if (state.status === undefined) return;
    if (state.status === "provisioning") { if (!since.has(id)) since.set(id, Date.now()); } else forget(id);
  });
  canvas.on("card-removed", ({ ids }) => ids.forEach(forget));
  setInterval(scan, PROVISION_CHECK_MS);
  scan();
}

function provisionBanner(id, { retry, cancel, dismiss }) {
  const banner = document.createElement("div");
  banner.className = "banner banner-provision";
  banner.dataset.workspaceId = id;
  banner.setAttribute("role", "group");
  banner.setAttribute("aria-label", "Provisioning is taking long");
  banner.innerHTML = `<span class="banner-icon" aria-hidden="true"><svg viewBox="0 0 16 16" width="16" height="16"><circle cx="8" cy="8" r="6.2" fill="none" stroke="currentColor" stroke-width="1.4"/><path d="M8 4.5V8l2.6 1.6" fill="none" stroke="currentColor" stroke-width="1.4" stroke-linecap="round"/></svg></span>
    <div class="banner-text"><div><b class="banner-who"></b> is taking longer than expected to start</div><div class="banner-sub">Starting for <span class="banner-elapsed"></span>. Retry restarts it; Cancel deletes it.</div></div>
    <div class="banner-actions"><button type="button" class="btn btn-small" data-banner="retry">Retry</button><button type="button" class="btn btn-small btn-ghost" data-banner="cancel">Cancel</button><button type="button" class="icon-btn small" data-banner="dismiss" aria-label="Dismiss" title="Dismiss">✕</button></div>`;
  banner.addEventListener("click", (event) => {
    const what = event.target.closest("[data-banner]")?.dataset.banner;
    if (what === "retry") retry(id); else if (what === "cancel") cancel(id); else if (what === "dismiss") dismiss(id);
  });
  return banner;
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}

// The canvas core: viewport (pan/zoom), the card registry over the server-rendered DOM,
// selection, fragment refresh/morph, counts, toasts. Other parts (gestures, live, panel,
// surfaces, overlay) are installed on top by main.js and talk through `canvas.events`.
//
// Cards are `.ws-node` elements nested as the org is: a child's element sits inside its parent's
// `.ws-children`. Each carries its parent-relative position and size in data-x/-y/-w/-h (written
// by the server, kept current here); absolute positions are the sum up the ancestor chain.

import { api, fragment } from "./api.js";
import * as geo from "./geometry.js";
import { Idiomorph } from "../vendor/idiomorph-0.8.0.esm.js";

const VIEWPORT_SAVE_DELAY_MS = 1000;
const WHEEL_ZOOM_STEP = 0.0015;

export class Canvas {
  constructor(root) {
    this.root = root;
    this.world = root.querySelector("#world");
    this.cardsEl = root.querySelector("#cards");
    this.events = new EventTarget();
    this.view = {
      x: Number(root.dataset.viewportX) || 0,
      y: Number(root.dataset.viewportY) || 0,
      zoom: Number(root.dataset.viewportZoom) || 1,
    };
    this.selectedId = null;
    this.batch = new Set();
    this.dragging = false;      // set by gestures while a card moves; live defers re-syncs
    this.suppressClick = false; // set by gestures after a drag so the release is not a click
    this.userZoomedAt = 0;
    this._saveTimer = null;
  }

  // --- events ------------------------------------------------------------------------------
  emit(name, detail = {}) { this.events.dispatchEvent(new CustomEvent(name, { detail })); }
  on(name, handler) { this.events.addEventListener(name, (event) => handler(event.detail)); }

  // --- cards -------------------------------------------------------------------------------
  card(id) { return id ? this.cardsEl.querySelector(`.ws-node[data-workspace-id="${CSS.escape(id)}"]`) : null; }
  allCards() { return [...this.cardsEl.querySelectorAll(".ws-node")]; }
  idOf(el) { return el?.dataset.workspaceId ?? null; }
  parentCard(el) { return el.parentElement?.closest(".ws-node") ?? null; }
  childCards(el) { return [...(el.querySelector(":scope > .ws-children")?.children ?? [])].filter((c) => c.matches(".ws-node")); }
  descendantIds(el) { return new Set([...el.querySelectorAll(".ws-node")].map((c) => this.idOf(c))); }
  nameOf(el) { return el?.dataset.name ?? ""; }
  depthOf(el) { let depth = 0; for (let p = this.parentCard(el); p; p = this.parentCard(p)) depth += 1; return depth; }
  isHidden(el) { for (let p = this.parentCard(el); p; p = this.parentCard(p)) if (p.classList.contains("is-collapsed")) return true; return false; }
  parentMap() {
    const map = new Map();
    for (const el of this.allCards()) map.set(this.idOf(el), el.dataset.parentId || null);
    return map;
  }

  rel(el) { return { x: Number(el.dataset.x) || 0, y: Number(el.dataset.y) || 0 }; }
  size(el) { return { w: Number(el.dataset.w) || geo.LEAF_W, h: Number(el.dataset.h) || geo.LEAF_H }; }
  absPos(el) {
    let { x, y } = this.rel(el);
    for (let p = this.parentCard(el); p; p = this.parentCard(p)) { const r = this.rel(p); x += r.x; y += r.y; }
    return { x, y };
  }
  absBox(el) { return { ...this.absPos(el), ...this.size(el) }; }

  setRel(el, x, y) {
    el.dataset.x = round(x); el.dataset.y = round(y);
    el.style.left = `${round(x)}px`; el.style.top = `${round(y)}px`;
  }
  setSize(el, w, h) {
    el.dataset.w = round(w); el.dataset.h = round(h);
    el.style.width = `${round(w)}px`; el.style.height = `${round(h)}px`;
  }

  // Grow (never shrink) `el` and then its ancestors so every visible child fits (spec §1.3).
  growToFit(el) {
    for (let node = el; node; node = this.parentCard(node)) {
      const children = this.childCards(node);
      if (!children.length || node.classList.contains("is-collapsed")) continue;
      const need = geo.parentSize(children.map((c) => ({ ...this.rel(c), ...this.size(c) })));
      const have = this.size(node);
      if (need.w > have.w || need.h > have.h) this.setSize(node, Math.max(need.w, have.w), Math.max(need.h, have.h));
    }
  }

  // Fetch the server's rendering of one card (with its subtree) and morph it in place, or insert
  // it under its parent (root level when the parent is not on the page). Returns the element.
  async refreshCard(id) {
    const html = await fragment(`/canvas/cards/${encodeURIComponent(id)}/`);
    if (html === null) return null;
    const existing = this.card(id);
    let el;
    if (existing) {
      Idiomorph.morph(existing, html, { morphStyle: "outerHTML" });
      el = this.card(id);
    } else {
      const template = document.createElement("template");
      template.innerHTML = html.trim();
      el = template.content.firstElementChild;
      const parent = this.card(el.dataset.parentId);
      (parent ? parent.querySelector(":scope > .ws-children") : this.cardsEl).append(el);
      if (parent) { parent.classList.add("has-children"); this.growToFit(parent); }
      this.emit("card-added", { id, el });
    }
    this.afterChange();
    return el;
  }

  // Remove a card and its subtree from the page (the server already removed them).
  removeCard(id) {
    const el = this.card(id);
    if (!el) return;
    const ids = [id, ...this.descendantIds(el)];
    el.remove();
    if (ids.includes(this.selectedId)) this.deselect();
    ids.forEach((gone) => this.batch.delete(gone));
    this.emit("card-removed", { ids });
    this.afterChange();
  }

  // Re-render every card from the server and morph the page to it (focus and DOM identity kept).
  async resync() {
    if (this.dragging) return false;
    const html = await fragment("/canvas/cards/");
    if (html === null || this.dragging) return false;
    Idiomorph.morph(this.cardsEl, html, { morphStyle: "innerHTML" });
    if (this.selectedId && !this.card(this.selectedId)) this.deselect();
    this.afterChange();
    this.emit("cards-synced", {});
    return true;
  }

  // Called after any structural change: selection classes, counts, placed-here persistence.
  afterChange() {
    this.applySelection();
    this.updateCounts();
    this.persistPlacedHere();
    this.emit("cards-changed", {});
  }

  // Positions the server computed (rows without one, children stored outside their parent) are
  // saved with the same absolute PATCH a drag sends, once per card.
  persistPlacedHere() {
    for (const el of this.cardsEl.querySelectorAll(".ws-node[data-placed-here]")) {
      el.removeAttribute("data-placed-here");
      const { x, y } = this.absPos(el);
      api("PATCH", `/workspaces/${this.idOf(el)}`, { x: round(x), y: round(y) });
    }
  }

  // Update a card in place from an event or an API answer (hot path: O(1) per card).
  applyState(id, state) {
    const el = this.card(id);
    if (!el) return null;
    const statusChanged = state.status !== undefined && state.status !== el.dataset.status;
    if (statusChanged) {
      el.classList.remove(`status-${el.dataset.status}`);
      el.classList.add(`status-${state.status}`);
      el.dataset.status = state.status;
      const label = STATUS_LABELS[state.status] ?? state.status;
      el.querySelector(":scope > .ws-foot > .ws-status-label").textContent = state.status === "online" ? "" : label;
      el.setAttribute("aria-label", `${el.dataset.name} workspace — ${label}`);
    }
    if (state.active_tasks !== undefined) {
      const n = Number(state.active_tasks) || 0;
      el.dataset.activeTasks = n;
      const busy = el.querySelector(":scope > .ws-foot > .ws-busy");
      busy.hidden = n <= 0;
      busy.querySelector(".ws-busy-text").textContent = `${n} task${n === 1 ? "" : "s"}`;
    }
    if (state.current_task !== undefined) {
      const task = el.querySelector(":scope > .ws-task");
      task.hidden = !state.current_task;
      task.title = state.current_task || "";
      task.querySelector(".ws-task-text").textContent = state.current_task || "";
    }
    if (state.last_sample_error !== undefined) {
      const error = el.querySelector(":scope > .ws-error");
      error.textContent = state.last_sample_error || "";
      error.title = state.last_sample_error || "";
    }
    const error = el.querySelector(":scope > .ws-error");
    error.hidden = !error.textContent || !["degraded", "failed"].includes(el.dataset.status);
    if (statusChanged) this.updateCounts(); // O(cards): only when a count can change, not per task or beat
    this.emit("card-state", { id, el, state });
    return el;
  }

  updateCounts() {
    const cards = this.allCards();
    const tally = { total: cards.length };
    for (const el of cards) tally[el.dataset.status] = (tally[el.dataset.status] || 0) + 1;
    const counts = document.getElementById("counts");
    if (counts) {
      counts.innerHTML = "";
      const add = (cls, n, text) => {
        const span = document.createElement("span");
        span.className = `count ${cls}`;
        span.innerHTML = `${cls ? '<i class="dot"></i>' : ""}<b></b> ${text}`;
        span.querySelector("b").textContent = n;
        counts.append(span);
      };
      add("", tally.total, "workspaces");
      add("c-online", tally.online || 0, "online");
      if (tally.provisioning) add("c-provisioning", tally.provisioning, "starting");
      if (tally.failed) add("c-failed", tally.failed, "failed");
    }
    const status = document.getElementById("sr-status");
    if (status) status.textContent = tally.total ? `${tally.total} workspace${tally.total === 1 ? "" : "s"} on canvas` : "No workspaces on canvas";
    document.body.classList.toggle("is-empty", tally.total === 0);
    this.emit("counts", tally);
  }

  // --- selection ---------------------------------------------------------------------------
  select(id, { tab } = {}) {
    if (!this.card(id)) return;
    this.selectedId = id;
    this.applySelection();
    this.emit("select", { id, tab });
  }
  deselect() {
    if (this.selectedId === null) return;
    this.selectedId = null;
    this.applySelection();
    this.emit("deselect", {});
  }
  applySelection() {
    for (const el of this.cardsEl.querySelectorAll(".ws-node.is-selected, .ws-node.is-batch")) {
      el.classList.remove("is-selected", "is-batch");
      el.setAttribute("aria-pressed", "false");
    }
    const selected = this.card(this.selectedId);
    if (selected) { selected.classList.add("is-selected"); selected.setAttribute("aria-pressed", "true"); }
    for (const id of this.batch) this.card(id)?.classList.add("is-batch");
  }

  // --- viewport ----------------------------------------------------------------------------
  applyView() {
    this.world.style.transform = `translate(${this.view.x}px, ${this.view.y}px) scale(${this.view.zoom})`;
    this.root.style.backgroundPosition = `${this.view.x}px ${this.view.y}px`;
    this.root.style.backgroundSize = `${24 * this.view.zoom}px ${24 * this.view.zoom}px`;
    this.emit("viewport", { ...this.view });
  }
  setView(view, { save = true } = {}) {
    this.view = { x: view.x, y: view.y, zoom: geo.clampZoom(view.zoom) };
    this.applyView();
    if (save) this.saveViewSoon();
  }
  saveViewSoon() {
    clearTimeout(this._saveTimer);
    this._saveTimer = setTimeout(() => {
      const { x, y, zoom } = this.view;
      api("PUT", "/canvas/viewport", { x: round(x), y: round(y), zoom: Math.round(zoom * 1000) / 1000 });
    }, VIEWPORT_SAVE_DELAY_MS);
  }
  screenSize() { return { w: this.root.clientWidth, h: this.root.clientHeight }; }
  toWorld(clientX, clientY) {
    const rect = this.root.getBoundingClientRect();
    return geo.toWorld(this.view, { x: clientX - rect.left, y: clientY - rect.top });
  }
  visibleBoxes(els = this.allCards()) { return els.filter((el) => !this.isHidden(el)).map((el) => this.absBox(el)); }
  fit(els, options = {}) {
    const box = geo.bounds(this.visibleBoxes(els));
    if (box) this.setView(geo.fitView(box, this.screenSize(), { padding: 0.2, ...options }));
  }
  zoomBy(factor, point = { x: this.root.clientWidth / 2, y: this.root.clientHeight / 2 }) {
    this.setView(geo.zoomAt(this.view, point, factor));
  }
  panTo(el, { padding = 0.3 } = {}) {
    const box = this.absBox(el);
    const size = this.screenSize();
    const view = geo.fitView(box, size, { padding, maxZoom: this.view.zoom, minZoom: this.view.zoom });
    this.setView(view);
  }

  installViewport() {
    const initial = this.view;
    this.applyView();
    if (initial.x === 0 && initial.y === 0 && initial.zoom === 1) this.fit(undefined, { maxZoom: 1 });
    // Trackpads: two-finger scroll pans, pinch (ctrl+wheel) zooms at the pointer; mouse wheels
    // with ctrl zoom too. Plain wheel without deltaX on a mouse pans vertically like a page.
    this.root.addEventListener("wheel", (event) => {
      if (event.target.closest(".no-canvas-wheel")) return;
      event.preventDefault();
      const rect = this.root.getBoundingClientRect();
      if (event.ctrlKey || event.metaKey) {
        this.userZoomedAt = Date.now();
        this.zoomBy(Math.exp(-event.deltaY * WHEEL_ZOOM_STEP * (event.deltaMode === 1 ? 16 : 1) * 4),
          { x: event.clientX - rect.left, y: event.clientY - rect.top });
      } else {
        const scale = event.deltaMode === 1 ? 16 : 1;
        this.setView({ x: this.view.x - event.deltaX * scale, y: this.view.y - event.deltaY * scale, zoom: this.view.zoom });
      }
    }, { passive: false });
    // Drag on empty canvas pans.
    this.root.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || event.target.closest(".ws-node")) return;
      const start = { x: event.clientX, y: event.clientY, vx: this.view.x, vy: this.view.y };
      let moved = false;
      const move = (e) => {
        if (!moved && Math.hypot(e.clientX - start.x, e.clientY - start.y) < 3) return;
        moved = true;
        this.root.classList.add("is-panning");
        this.setView({ x: start.vx + e.clientX - start.x, y: start.vy + e.clientY - start.y, zoom: this.view.zoom });
      };
      const up = () => {
        window.removeEventListener("pointermove", move);
        window.removeEventListener("pointerup", up);
        this.root.classList.remove("is-panning");
        if (!moved) this.emit("canvas-click", {});
      };
      window.addEventListener("pointermove", move);
      window.addEventListener("pointerup", up);
    });
    document.addEventListener("click", (event) => {
      const action = event.target.closest("[data-action]")?.dataset.action;
      if (action === "zoom-in") this.zoomBy(1.2);
      else if (action === "zoom-out") this.zoomBy(1 / 1.2);
      else if (action === "zoom-fit") this.fit();
    });
    window.addEventListener("resize", () => this.applyView());
  }

  // --- selection by click ------------------------------------------------------------------
  installSelection() {
    this.cardsEl.addEventListener("click", (event) => {
      const el = event.target.closest(".ws-node");
      if (!el || event.target.closest("button, a, input, textarea, select")) return;
      if (this.suppressClick) { this.suppressClick = false; return; }
      if (event.detail > 1) return; // the second click of a double-click (gestures' expand/zoom)
      event.stopPropagation();
      const id = this.idOf(el);
      if (event.shiftKey) { this.toggleBatch(id); return; }
      if (this.selectedId === id) this.deselect();
      else this.select(id);
    });
    this.cardsEl.addEventListener("keydown", (event) => {
      const el = event.target.closest?.(".ws-node");
      if (!el || event.target !== el) return;
      if (event.key === "Enter" || event.key === " ") {
        if (event.shiftKey && event.key === " ") { event.preventDefault(); this.toggleBatch(this.idOf(el)); return; }
        if (event.shiftKey) return; // Shift+Enter: select parent (gestures' keyboard map)
        event.preventDefault();
        this.select(this.idOf(el));
      }
    });
    this.on("canvas-click", () => { this.batch.clear(); this.deselect(); this.applySelection(); this.emit("batch", { ids: [] }); });
  }
  toggleBatch(id) {
    if (this.batch.has(id)) this.batch.delete(id); else this.batch.add(id);
    this.applySelection();
    this.emit("batch", { ids: [...this.batch] });
  }

  // --- small shared UI ---------------------------------------------------------------------
  toast(message, kind = "info", ms = 4000) {
    const host = document.getElementById("toasts");
    const el = document.createElement("div");
    el.className = `toast is-${kind}`;
    if (kind === "error") el.setAttribute("role", "alert");
    el.textContent = message;
    host.append(el);
    setTimeout(() => el.remove(), ms);
  }

  installLegend() {
    const legend = document.getElementById("legend");
    if (!legend) return;
    const key = "molecule-legend-folded";
    const fold = (folded) => {
      legend.classList.toggle("is-folded", folded);
      const button = legend.querySelector('[data-action="legend-toggle"]');
      button.textContent = folded ? "▴" : "✕";
      button.setAttribute("aria-label", folded ? "Show legend" : "Hide legend");
      button.title = button.getAttribute("aria-label");
    };
    fold(localStorage.getItem(key) === "1");
    legend.querySelector('[data-action="legend-toggle"]').addEventListener("click", () => {
      const folded = !legend.classList.contains("is-folded");
      localStorage.setItem(key, folded ? "1" : "0");
      fold(folded);
    });
  }

  install() {
    this.installViewport();
    this.installSelection();
    this.installLegend();
    this.afterChange();
  }
}

export const STATUS_LABELS = {
  online: "Online", offline: "Offline", paused: "Paused", degraded: "Degraded", failed: "Failed",
  provisioning: "Starting", hibernated: "Hibernated", hibernating: "Hibernating", awaiting_agent: "Awaiting agent",
};

export function round(value) { return Math.round(value * 100) / 100; }

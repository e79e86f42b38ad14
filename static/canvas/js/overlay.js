// Pictures on the canvas: the A2A overlay (spec §1.4), the cards' load sparklines and the minimap
// (§1.1). All three are drawn from what is already on the page (card boxes, data attributes) plus
// one JSON read for the edges, and redrawn at most once per frame.

import { api } from "./api.js";
import { HEADER_BAND } from "./geometry.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const EDGES_KEY = "molecule-a2a-edges";
const EDGES_POLL_MS = 60000;
const EDGES_EVENT_DELAY_MS = 1000;  // a burst of calls is one re-read
const RECENT_S = 5 * 60;            // newer than this: violet and animated, else blue
const SPARK_SLOTS = 30;             // registry.redis_keys.LOAD_SAMPLES
const SPARK_W = 60, SPARK_H = 14;     // the viewBox of .ws-spark in _ws_card.html
const MINIMAP_W = 200, MINIMAP_H = 140, MINIMAP_PAD = 60;
const VIEW_SETTLE_MS = 250;         // the view counts as still this long after its last move
const STATUS_COLOURS = {
  online: "#34d399", offline: "#71717a", paused: "#818cf8", degraded: "#fbbf24", failed: "#f87171",
  provisioning: "#38bdf8", hibernated: "#818cf8", hibernating: "#818cf8", awaiting_agent: "#a78bfa",
};

function svg(name, attrs = {}) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  return el;
}

// --- A2A edges -------------------------------------------------------------------------------------

export function ago(seconds) {
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ago`;
}

export function edgeLabel(calls, ageSeconds) {
  return `${calls} call${calls === 1 ? "" : "s"} · ${ago(ageSeconds)}`;
}

// Where the ray from the centre of `box` toward `point` leaves the box.
export function borderPoint(box, point) {
  const cx = box.x + box.w / 2, cy = box.y + box.h / 2;
  const dx = point.x - cx, dy = point.y - cy;
  if (!dx && !dy) return { x: cx, y: cy };
  const t = Math.min(dx ? box.w / 2 / Math.abs(dx) : Infinity, dy ? box.h / 2 / Math.abs(dy) : Infinity);
  return { x: cx + dx * t, y: cy + dy * t };
}

// A quadratic curve from box `a` to box `b`, bent to its left so a→b and b→a stay apart;
// returns the path, its midpoint (for the label) and the end points.
export function edgeGeometry(a, b) {
  const ca = { x: a.x + a.w / 2, y: a.y + a.h / 2 }, cb = { x: b.x + b.w / 2, y: b.y + b.h / 2 };
  const p1 = borderPoint(a, cb), p2 = borderPoint(b, ca);
  const dx = p2.x - p1.x, dy = p2.y - p1.y;
  const length = Math.hypot(dx, dy) || 1;
  const bend = Math.min(60, length * 0.18);
  const c = { x: (p1.x + p2.x) / 2 - (dy / length) * bend, y: (p1.y + p2.y) / 2 + (dx / length) * bend };
  const mid = { x: 0.25 * p1.x + 0.5 * c.x + 0.25 * p2.x, y: 0.25 * p1.y + 0.5 * c.y + 0.25 * p2.y };
  const r = (n) => Math.round(n * 10) / 10;
  return { d: `M${r(p1.x)},${r(p1.y)} Q${r(c.x)},${r(c.y)} ${r(p2.x)},${r(p2.y)}`, mid, p1, p2 };
}

// An edge between a team and one of its members (either way) loops out of the team's side next
// to the member and back in: a line inside the team's card would run over its content. The
// member→team edge runs a little lower than team→member, so the pair stays apart.
export function nestedEdgeGeometry(team, member, fromTeam) {
  const side = member.x + member.w / 2 >= team.x + team.w / 2 ? 1 : -1;
  const shift = fromTeam ? 0 : 14;
  const reach = 92 + shift;
  const edgeX = side > 0 ? team.x + team.w : team.x;
  const out = { x: edgeX, y: team.y + 44 + shift };
  const inner = { x: side > 0 ? member.x + member.w : member.x, y: member.y + member.h / 2 + shift };
  const bulge = edgeX + side * reach;
  const [p1, p2] = fromTeam ? [out, inner] : [inner, out];
  const c1 = { x: bulge, y: p1.y }, c2 = { x: bulge, y: p2.y };
  const mid = { x: (p1.x + 3 * c1.x + 3 * c2.x + p2.x) / 8, y: (p1.y + 3 * c1.y + 3 * c2.y + p2.y) / 8 };
  const r = (n) => Math.round(n * 10) / 10;
  return { d: `M${r(p1.x)},${r(p1.y)} C${r(c1.x)},${r(c1.y)} ${r(c2.x)},${r(c2.y)} ${r(p2.x)},${r(p2.y)}`, mid, p1, p2 };
}

class Edges {
  constructor(canvas) {
    this.canvas = canvas;
    this.root = document.getElementById("edges");
    this.edges = [];
    this.fetchedAt = 0;
    this.enabled = localStorage.getItem(EDGES_KEY) !== "off";
    this.pending = null;
    this.frame = 0;
    this.measure = document.createElement("canvas").getContext("2d");
  }

  install() {
    if (!this.root) return;
    this.root.append(this.defs());
    this.layer = svg("g", { class: "a2a-layer" });
    this.root.append(this.layer);
    this.button = this.toggleButton();
    this.apply();
    setInterval(() => { if (this.enabled) this.load(); }, EDGES_POLL_MS);
    this.canvas.on("ws-event", ({ event, payload }) => {
      // Calls between workspaces only: a canvas chat (no source) is not an edge.
      if (event === "DELEGATION_SENT" || (event === "ACTIVITY_LOGGED" && payload?.source_id)) this.loadSoon();
    });
  }

  defs() {
    const defs = svg("defs");
    for (const kind of ["recent", "stale"]) {
      const marker = svg("marker", {
        id: `a2a-arrow-${kind}`, viewBox: "0 0 10 10", refX: "8.5", refY: "5", markerUnits: "userSpaceOnUse",
        markerWidth: "11", markerHeight: "11", orient: "auto-start-reverse",
      });
      marker.append(svg("path", { d: "M0,1 L10,5 L0,9 z", class: `a2a-arrow is-${kind}` }));
      defs.append(marker);
    }
    return defs;
  }

  toggleButton() {
    const slot = document.getElementById("toolbar-actions");
    const button = document.createElement("button");
    button.type = "button";
    button.id = "a2a-toggle";
    button.className = "icon-btn a2a-toggle";
    button.title = "A2A edges";
    button.setAttribute("aria-label", "A2A edges");
    button.innerHTML = '<svg viewBox="0 0 20 20" width="16" height="16" aria-hidden="true"><circle cx="4.5" cy="14.5" r="2.5"/>'
      + '<circle cx="15.5" cy="5.5" r="2.5"/><path d="M6.6 12.4 L12.6 7.4"/><path d="M9.6 6.9 L13.2 6.9 L13.2 10.4"/></svg>';
    button.addEventListener("click", () => {
      this.enabled = !this.enabled;
      localStorage.setItem(EDGES_KEY, this.enabled ? "on" : "off");
      this.apply();
    });
    slot?.append(button);
    return button;
  }

  apply() {
    this.button.setAttribute("aria-pressed", String(this.enabled));
    this.root.classList.toggle("is-off", !this.enabled);
    if (this.enabled) this.load(); else this.layer.replaceChildren();
  }

  loadSoon() {
    if (!this.enabled || this.pending) return;
    this.pending = setTimeout(() => { this.pending = null; this.load(); }, EDGES_EVENT_DELAY_MS);
  }

  async load() {
    // The fragment header makes an expired session answer 401 instead of the login page; the
    // next card fragment sends the operator to log in, the overlay just keeps what it has.
    const response = await api("GET", "/canvas/edges/", undefined, { headers: { "X-Molecule-Fragment": "1" } });
    if (!response.ok || !Array.isArray(response.data?.edges)) return;
    this.edges = response.data.edges;
    this.fetchedAt = Date.now();
    this.draw();
  }

  // The card an edge ends on: the card itself, or the outermost collapsed team hiding it.
  shown(id) {
    let el = this.canvas.card(id);
    if (!el) return null;
    for (let parent = this.canvas.parentCard(el); parent; parent = this.canvas.parentCard(parent)) {
      if (parent.classList.contains("is-collapsed")) el = parent;
    }
    return el;
  }

  // A team's edges leave from its header band, above its children, not from its centre.
  anchor(el) {
    const box = this.canvas.absBox(el);
    const open = el.classList.contains("has-children") && !el.classList.contains("is-collapsed");
    return open ? { ...box, h: Math.min(box.h, HEADER_BAND - 20) } : box;
  }

  drawSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  draw() {
    if (!this.enabled || !this.layer) return;
    const elapsed = (Date.now() - this.fetchedAt) / 1000;
    const drawn = new Set();
    const lines = [], labels = [];
    for (const edge of this.edges) {
      const from = this.shown(edge.source), to = this.shown(edge.target);
      if (!from || !to || from === to) continue;
      const key = `${this.canvas.idOf(from)}>${this.canvas.idOf(to)}`;
      if (drawn.has(key)) continue; // two hidden members of one collapsed team: the first (newest) edge
      drawn.add(key);
      const age = edge.age_seconds + elapsed;
      const kind = age < RECENT_S ? "recent" : "stale";
      const { d, mid } = from.contains(to) ? nestedEdgeGeometry(this.canvas.absBox(from), this.canvas.absBox(to), true)
        : to.contains(from) ? nestedEdgeGeometry(this.canvas.absBox(to), this.canvas.absBox(from), false)
          : edgeGeometry(this.anchor(from), this.anchor(to));
      const line = svg("path", { d, class: `a2a-edge is-${kind}`, "marker-end": `url(#a2a-arrow-${kind})` });
      line.dataset.source = edge.source;
      line.dataset.target = edge.target;
      lines.push(line);
      labels.push(this.label(edgeLabel(edge.calls, age), mid, kind, edge));
    }
    this.layer.replaceChildren(...lines, ...labels); // labels above every line
  }

  label(text, at, kind, edge) {
    this.measure.font = "600 11px ui-sans-serif, system-ui, sans-serif";
    const w = Math.ceil(this.measure.measureText(text).width) + 14, h = 19;
    const g = svg("g", { class: `a2a-label is-${kind}`, transform: `translate(${Math.round(at.x - w / 2)},${Math.round(at.y - h / 2)})` });
    g.dataset.source = edge.source;
    g.dataset.target = edge.target;
    g.append(svg("rect", { width: w, height: h, rx: 9.5 }));
    const t = svg("text", { x: w / 2, y: 13.2, "text-anchor": "middle" });
    t.textContent = text;
    g.append(t);
    return g;
  }
}

// --- sparklines ----------------------------------------------------------------------------------

// The samples spread over the width, the newest at the right; the peak (at least 1) at the top.
export function sparkPoints(values, w = SPARK_W, h = SPARK_H) {
  const max = Math.max(1, ...values);
  const step = w / Math.max(1, values.length - 1);
  return values.map((v, i) => [i * step, h - 1.5 - (v / max) * (h - 3)]);
}

function drawSpark(el) {
  const values = (el.dataset.load || "").split(",").filter((v) => v !== "").map(Number).filter(Number.isFinite);
  el.replaceChildren();
  el.toggleAttribute("hidden", values.length < 2); // an SVG element has no `hidden` property
  if (values.length < 2) return;
  const points = sparkPoints(values);
  const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const [x0] = points[0];
  el.append(svg("polygon", { class: "spark-area", points: `${x0.toFixed(1)},${SPARK_H} ${line} ${SPARK_W},${SPARK_H}` }));
  el.append(svg("polyline", { class: "spark-line", points: line }));
  const [lx, ly] = points[points.length - 1];
  el.append(svg("circle", { class: "spark-dot", cx: lx.toFixed(1), cy: ly.toFixed(1), r: 1.6 }));
  const now = values[values.length - 1];
  el.classList.toggle("is-busy", now > 0);
  const title = svg("title");
  title.textContent = `Active tasks over the last ${values.length} heartbeats: now ${now}, peak ${Math.max(...values)}`;
  el.append(title);
}

// While the socket is up this page hears every heartbeat, so its own series is the newest: a card
// fragment rendered a moment before the last beats (a morph) must not roll the line back. After a
// reconnect the server's series (which kept the beats the page missed) is taken again.
class Sparklines {
  constructor(canvas) {
    this.canvas = canvas;
    this.series = new Map(); // workspace id -> "n,n,…" as drawn
    this.wasLive = false;
  }

  install() {
    this.drawMissing();
    for (const name of ["cards-changed", "cards-synced", "card-added"]) this.canvas.on(name, () => this.drawMissing());
    this.canvas.on("ws-event", ({ event, workspace_id: id, payload }) => {
      if (event === "WORKSPACE_HEARTBEAT") this.sample(id, Number(payload?.active_tasks) || 0);
    });
    this.canvas.on("ws-status", ({ state }) => {
      if (state === "live" && this.wasLive) this.series.clear();
      if (state === "live") this.wasLive = true;
    });
    this.canvas.on("card-removed", ({ ids }) => ids.forEach((id) => this.series.delete(id)));
  }

  // A morph puts back the server's empty element: draw those (and only those) again.
  drawMissing() {
    for (const el of this.canvas.cardsEl.querySelectorAll(".ws-spark")) {
      if (el.firstChild) continue;
      const id = this.canvas.idOf(el.closest(".ws-node"));
      if (this.series.has(id)) el.dataset.load = this.series.get(id);
      else if (el.dataset.load) this.series.set(id, el.dataset.load);
      if (el.dataset.load) drawSpark(el);
    }
  }

  sample(id, tasks) {
    const el = this.canvas.card(id)?.querySelector(":scope > .ws-foot > .ws-spark");
    if (!el) return;
    const values = el.dataset.load ? el.dataset.load.split(",") : [];
    values.push(String(tasks));
    el.dataset.load = values.slice(-SPARK_SLOTS).join(",");
    this.series.set(id, el.dataset.load);
    drawSpark(el);
  }
}

// --- minimap -------------------------------------------------------------------------------------

class Minimap {
  constructor(canvas) {
    this.canvas = canvas;
    this.host = document.getElementById("minimap");
    this.el = this.host?.querySelector("canvas");
    this.boxes = null;
    this.frame = 0;
    this.frozen = null; // the map's transform while the pointer drags on it
  }

  install() {
    if (!this.el) return;
    const ratio = window.devicePixelRatio || 1;
    this.el.width = MINIMAP_W * ratio;
    this.el.height = MINIMAP_H * ratio;
    this.ctx = this.el.getContext("2d");
    this.ctx.scale(ratio, ratio);
    const stale = () => { this.boxes = null; this.soon(); };
    for (const name of ["cards-changed", "cards-synced", "card-added", "card-removed", "select", "deselect"]) {
      this.canvas.on(name, stale);
    }
    // A status event recolours one box; tasks and heartbeats change nothing drawn here.
    this.canvas.on("card-state", ({ id, state }) => {
      if (state.status === undefined) return;
      const box = this.boxes?.find((b) => b.id === id);
      if (box) box.status = state.status;
      this.soon();
    });
    this.canvas.on("viewport", () => this.soon());
    window.addEventListener("resize", () => this.soon());
    this.el.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      this.el.setPointerCapture(event.pointerId);
      this.frozen = this.transform;
      this.panTo(event);
      const move = (e) => this.panTo(e);
      const up = () => {
        this.el.removeEventListener("pointermove", move);
        this.el.removeEventListener("pointerup", up);
        this.el.removeEventListener("pointercancel", up);
        this.frozen = null;
        this.soon();
      };
      this.el.addEventListener("pointermove", move);
      this.el.addEventListener("pointerup", up);
      this.el.addEventListener("pointercancel", up);
    });
    this.soon(); // in the first frame, not in a layout forced while the page installs
  }

  invalidate() { this.boxes = null; }

  soon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  cardBoxes() {
    if (this.boxes) return this.boxes;
    this.boxes = [];
    for (const el of this.canvas.allCards()) {
      if (this.canvas.isHidden(el)) continue;
      this.boxes.push({
        ...this.canvas.absBox(el), id: this.canvas.idOf(el), parent: el.classList.contains("has-children"),
        status: el.dataset.status, selected: el.classList.contains("is-selected"),
      });
    }
    return this.boxes;
  }

  viewRect() {
    const { x, y, zoom } = this.canvas.view;
    const { w, h } = this.canvas.screenSize();
    return { x: -x / zoom, y: -y / zoom, w: w / zoom, h: h / zoom };
  }

  draw() {
    if (!this.ctx) return;
    const boxes = this.cardBoxes();
    const view = this.viewRect();
    this.host.hidden = boxes.length === 0;
    if (!boxes.length) return;
    let transform = this.frozen;
    if (!transform) {
      let x0 = view.x, y0 = view.y, x1 = view.x + view.w, y1 = view.y + view.h;
      for (const b of boxes) { x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y); x1 = Math.max(x1, b.x + b.w); y1 = Math.max(y1, b.y + b.h); }
      x0 -= MINIMAP_PAD; y0 -= MINIMAP_PAD; x1 += MINIMAP_PAD; y1 += MINIMAP_PAD;
      const scale = Math.min(MINIMAP_W / (x1 - x0), MINIMAP_H / (y1 - y0));
      transform = { scale, ox: (MINIMAP_W - (x1 - x0) * scale) / 2 - x0 * scale, oy: (MINIMAP_H - (y1 - y0) * scale) / 2 - y0 * scale };
    }
    this.transform = transform;
    const { scale, ox, oy } = transform;
    const ctx = this.ctx;
    ctx.clearRect(0, 0, MINIMAP_W, MINIMAP_H);
    const vx = ox + view.x * scale, vy = oy + view.y * scale;
    ctx.fillStyle = "rgba(244, 244, 245, 0.05)";
    ctx.fillRect(vx, vy, view.w * scale, view.h * scale);
    for (const b of boxes) {
      const x = ox + b.x * scale, y = oy + b.y * scale, w = Math.max(2, b.w * scale), h = Math.max(2, b.h * scale);
      if (b.parent) {
        ctx.fillStyle = "rgba(59, 130, 246, 0.14)";
        ctx.strokeStyle = "#3b82f6";
        ctx.lineWidth = 1;
        ctx.fillRect(x, y, w, h);
        ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
      } else {
        ctx.fillStyle = STATUS_COLOURS[b.status] ?? "#71717a";
        ctx.globalAlpha = 0.85;
        ctx.fillRect(x, y, w, h);
        ctx.globalAlpha = 1;
      }
      if (b.selected) {
        ctx.strokeStyle = "#f4f4f5";
        ctx.lineWidth = 1.5;
        ctx.strokeRect(x - 1, y - 1, w + 2, h + 2);
      }
    }
    ctx.strokeStyle = "rgba(244, 244, 245, 0.75)";
    ctx.lineWidth = 1;
    ctx.strokeRect(vx + 0.5, vy + 0.5, view.w * scale - 1, view.h * scale - 1);
  }

  // Centre the viewport on the world point under the pointer.
  panTo(event) {
    if (!this.transform) return;
    const rect = this.el.getBoundingClientRect();
    const { scale, ox, oy } = this.transform;
    const wx = (event.clientX - rect.left - ox) / scale, wy = (event.clientY - rect.top - oy) / scale;
    const { w, h } = this.canvas.screenSize();
    const zoom = this.canvas.view.zoom;
    this.canvas.setView({ x: w / 2 - wx * zoom, y: h / 2 - wy * zoom, zoom });
  }
}

// --- install -------------------------------------------------------------------------------------

export function install(canvas) {
  const edges = new Edges(canvas);
  const minimap = new Minimap(canvas);
  edges.install();
  new Sparklines(canvas).install();
  minimap.install();
  const redraw = () => { edges.draw(); minimap.invalidate(); minimap.soon(); };
  for (const name of ["cards-changed", "cards-synced", "card-added", "card-removed"]) canvas.on(name, () => edges.drawSoon());
  // Gestures move card elements directly while they drag (no event per move): follow them each
  // frame from the press until the drag is over.
  canvas.cardsEl.addEventListener("pointerdown", () => {
    let pressed = true;
    const release = () => { pressed = false; };
    window.addEventListener("pointerup", release, { once: true });
    window.addEventListener("pointercancel", release, { once: true });
    const follow = () => {
      if (canvas.dragging) redraw();
      if (pressed || canvas.dragging) requestAnimationFrame(follow);
      else redraw();
    };
    requestAnimationFrame(follow);
  });
  // While the view pans or zooms the cards' pulsing dots hold still (live.css): a hundred running
  // animations cost more frames than moving the whole org (docs/performance.md, "Canvas").
  let still = 0;
  canvas.on("viewport", () => {
    document.body.classList.add("is-view-moving");
    clearTimeout(still);
    still = setTimeout(() => document.body.classList.remove("is-view-moving"), VIEW_SETTLE_MS);
  });
  canvas.overlay = { edges, minimap };
}

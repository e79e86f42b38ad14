// The live part of the canvas (spec §5): one /ws client that keeps the server-rendered cards current.
//
// Hot events (status, task, heartbeat) are applied in place with canvas.applyState: O(1) per card.
// Structural ones (a new card, a card whose content or place changed, a removal that would orphan
// children) fetch the server's rendering: one card fragment each, or one full re-sync for a burst
// (an org import, a cascade). Nothing waits for a reload: the socket's open, a 10 s poll while it is
// down and a re-sync after 30 s of silence cover whatever the stream missed.
//
// Every frame is re-emitted as canvas.emit("ws-event", envelope) AFTER this module applied its
// synchronous part (applyState), so a listener reading a card sees its new state; fetches this
// module started for the frame may still be in flight. The connection's state goes out as
// canvas.emit("ws-status", {state: "live" | "connecting" | "offline"}); `canvas.live` is this module.

import { isTombstoned as tombstoned } from "./gestures.js";

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const POLL_MS = 10000;              // re-sync period while disconnected
const SILENCE_MS = 30000;           // re-sync when no frame came for this long (server pings are invisible to JS)
const HEALTH_TICK_MS = 5000;
const RESYNC_REUSE_MS = 1500;       // a re-sync finished this recently answers a new request
const STRUCTURE_DELAY_MS = 120;     // collects a burst of structural events into one pass
const BURST_RESYNC = 6;             // more cards than this in one pass: one full re-sync instead
const DRAG_RECHECK_MS = 150;
const ATTEMPTS_BEFORE_OFFLINE = 5;  // ≈ 30 s of failed reconnects before the pill says Offline

// Event → card status (spec §5 table; awaiting_agent/hibernating are this platform's extra states).
const STATUS_EVENTS = {
  WORKSPACE_ONLINE: "online", WORKSPACE_OFFLINE: "offline", WORKSPACE_PAUSED: "paused",
  WORKSPACE_DEGRADED: "degraded", WORKSPACE_PROVISION_FAILED: "failed", WORKSPACE_HIBERNATED: "hibernated",
  WORKSPACE_HIBERNATING: "hibernating", WORKSPACE_AWAITING_AGENT: "awaiting_agent",
};
const PILL = {
  live: ["is-live", "Live", "Live updates: connected"],
  connecting: ["is-connecting", "Reconnecting", "Live updates: reconnecting…"],
  offline: ["is-offline", "Offline", "Live updates: offline, retrying (the canvas re-syncs every 10 s)"],
};

export class Live {
  constructor(canvas) {
    this.canvas = canvas;
    this.pill = document.getElementById("ws-pill");
    this.socket = null;
    this.attempts = 0;
    this.everOpened = false;
    this.lastFrameAt = Date.now();
    this.reconnectTimer = null;
    this.pollTimer = null;
    // re-sync scheduling
    this.lastRun = null;            // {promise, startedAt, doneAt} of the latest re-sync
    this.nextRun = null;            // the one queued behind it
    this.closedAt = 0;
    // structural work
    this.queue = new Map();         // id -> {isNew, wide, reparent}
    this.queueTimer = null;
    this.removals = new Set();
    this.fetching = new Map();      // id -> promise of its fragment fetch
    this.pendingState = new Map();  // id -> state that arrived while its fragment was in flight
    this.gone = new Set();          // ids the platform removed: never drawn again on this page
    this.sinceResync = null;        // {states, fetched} applied while a full re-sync is in flight
  }

  install() {
    this.canvas.live = this;
    this.canvas.on("cards-synced", () => this.dropGone());
    this.connect();
    setInterval(() => this.checkHealth(), HEALTH_TICK_MS);
    window.addEventListener("online", () => { if (!this.socket) this.reconnectNow(); }); // none open or opening
    window.addEventListener("offline", () => { if (!this.isOpen()) this.setStatus("offline"); });
  }

  // --- connection ------------------------------------------------------------------------------
  isOpen() { return this.socket?.readyState === WebSocket.OPEN; }

  connect() {
    clearTimeout(this.reconnectTimer);
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      this.attempts = 0;
      this.lastFrameAt = Date.now();
      this.setStatus("live");
      this.stopPolling();
      if (this.everOpened) this.canvas.toast("Live updates restored", "success");
      this.everOpened = true;
      this.resync({ after: this.closedAt }); // whatever happened since the page was rendered or the socket dropped
    });
    socket.addEventListener("message", (message) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = Date.now();
      let envelope;
      try { envelope = JSON.parse(message.data); } catch { return; }
      if (envelope && typeof envelope.event === "string") this.handle(envelope);
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.closedAt = Date.now();
      this.setStatus(navigator.onLine === false || this.attempts >= ATTEMPTS_BEFORE_OFFLINE ? "offline" : "connecting");
      this.startPolling();
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
    this.attempts += 1;
    const delay = Math.min(BACKOFF_MAX_MS, base * (0.8 + Math.random() * 0.4)); // jitter: clients do not return in step
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() { clearTimeout(this.reconnectTimer); this.connect(); }

  setStatus(state) {
    if (state === this.status) return;
    this.status = state;
    this.canvas.emit("ws-status", { state });
    if (!this.pill) return;
    const [cls, text, title] = PILL[state];
    this.pill.className = `ws-pill ${cls}`;
    this.pill.textContent = text;
    this.pill.title = title;
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.resync(), POLL_MS);
  }

  stopPolling() { clearInterval(this.pollTimer); this.pollTimer = null; }

  checkHealth() {
    if (this.isOpen() && Date.now() - this.lastFrameAt > SILENCE_MS) {
      this.lastFrameAt = Date.now();
      this.resync();
    }
  }

  // --- re-sync ---------------------------------------------------------------------------------
  // De-duplicated: a re-sync that started at or after `after` (0: any) and is in flight or
  // finished less than RESYNC_REUSE_MS ago answers the request; otherwise one more runs, after
  // the one in flight. Callers that know of a change pass its time (`fresh: true` = now): a
  // rendering made before it cannot answer them.
  resync({ after = 0, fresh = false } = {}) {
    if (fresh) after = Date.now();
    const last = this.lastRun;
    if (last && last.startedAt >= after && (!last.doneAt || Date.now() - last.doneAt < RESYNC_REUSE_MS)) return last.promise;
    if (last && !last.doneAt) {
      this.nextRun ??= last.promise.then(() => { this.nextRun = null; return this.resync({ fresh: true }); });
      return this.nextRun;
    }
    const run = { startedAt: Infinity, doneAt: 0 }; // Infinity: not started yet, so newer than anything
    run.promise = this.whenNotDragging().then(async () => {
      run.startedAt = Date.now();
      const before = new Set(this.canvas.allCards().map((el) => this.canvas.idOf(el)));
      // What the stream applies while the full rendering is on its way is newer than it: put
      // it back over the morph (states), fetch those cards again (fragments).
      const since = this.sinceResync = { states: new Map(), fetched: new Set() };
      const ok = await this.canvas.resync();
      if (this.sinceResync === since) this.sinceResync = null;
      if (!ok) return false;
      for (const el of this.canvas.allCards()) if (!before.has(this.canvas.idOf(el))) spawn(el);
      for (const [id, state] of since.states) if (this.canvas.card(id)) this.canvas.applyState(id, state);
      for (const id of since.fetched) this.enqueue(id, { isNew: !this.canvas.card(id) });
      return true;
    }).finally(() => { run.doneAt = Date.now(); })
      // canvas.resync() refuses, or drops its answer, while a card is dragged: again after the drag.
      .then((ok) => (ok || !this.canvas.dragging ? ok : this.resync({ fresh: true })));
    this.lastRun = run;
    return run.promise;
  }

  whenNotDragging() {
    if (!this.canvas.dragging) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => (this.canvas.dragging ? setTimeout(check, DRAG_RECHECK_MS) : resolve());
      setTimeout(check, DRAG_RECHECK_MS);
    });
  }

  // Cards the platform removed or a gesture just deleted must not come back with a fetch that
  // was rendered before the removal.
  dropGone() {
    for (const el of this.canvas.allCards()) {
      const id = this.canvas.idOf(el);
      if ((this.gone.has(id) || tombstoned(id)) && this.canvas.card(id)) this.canvas.removeCard(id);
    }
  }

  // --- events ----------------------------------------------------------------------------------
  handle(envelope) {
    try {
      this.apply(envelope);
    } finally {
      this.canvas.emit("ws-event", envelope);
    }
  }

  apply({ event, workspace_id: id, payload = {} }) {
    payload = payload && typeof payload === "object" ? payload : {};
    if (!id) return;
    if (event === "WORKSPACE_PROVISIONING") {
      if (this.known(id)) this.state(id, { status: "provisioning", current_task: "" });
      else this.enqueue(id, { isNew: true });
    } else if (event in STATUS_EVENTS) {
      const state = { status: STATUS_EVENTS[event] };
      if (event === "WORKSPACE_PAUSED") state.current_task = "";
      if (event === "WORKSPACE_DEGRADED") {
        state.last_sample_error = payload.sample_error || "";
        const el = this.canvas.card(id);
        if (el && payload.error_rate !== undefined) el.dataset.errorRate = payload.error_rate;
      }
      if (event === "WORKSPACE_PROVISION_FAILED") state.last_sample_error = payload.error || payload.reason || "";
      if (!this.known(id)) this.enqueue(id, { isNew: true });
      this.state(id, state);
      // A registration carries the agent card: skills and runtime come with the card's fragment.
      if (event === "WORKSPACE_ONLINE" && payload.agent_card && this.known(id)) this.enqueue(id);
    } else if (event === "TASK_UPDATED") {
      this.state(id, { current_task: payload.current_task || "", active_tasks: payload.active_tasks ?? 0 });
    } else if (event === "WORKSPACE_HEARTBEAT") {
      const el = this.canvas.card(id);
      const n = Number(payload.active_tasks) || 0;
      if (el && Number(el.dataset.activeTasks) !== n) this.state(id, { active_tasks: n });
      else if (!el && !this.fetching.has(id) && !this.gone.has(id) && !tombstoned(id)) this.enqueue(id, { isNew: true });
    } else if (event === "AGENT_CARD_UPDATED") {
      this.enqueue(id);
    } else if (event === "WORKSPACE_UPDATED") {
      this.updated(id, payload);
    } else if (event === "WORKSPACE_REMOVED") {
      this.gone.add(id);
      this.removals.add(id);
      this.schedule();
    }
  }

  known(id) { return Boolean(this.canvas.card(id)) || this.fetching.has(id); }

  // Apply in place, or hold it for the fragment in flight (replayed over it: events carry
  // absolute values, so a newer state over an equal or older rendering is always right).
  state(id, state) {
    if (this.fetching.has(id)) {
      this.pendingState.set(id, { ...this.pendingState.get(id), ...state });
      return;
    }
    this.canvas.applyState(id, state);
    this.remember(id, state);
  }

  remember(id, state) {
    const since = this.sinceResync;
    if (since) since.states.set(id, { ...since.states.get(id), ...state });
  }

  // PATCH elsewhere (another browser, the admin, a script): what changed decides what to fetch.
  updated(id, payload) {
    const el = this.canvas.card(id);
    if (!el) { this.enqueue(id, { isNew: true }); return; }
    if ("parent_id" in payload && (payload.parent_id || "") !== (el.dataset.parentId || "")) {
      this.enqueue(id, { reparent: true });
      return;
    }
    // A move or a collapse resizes the parents around the card: their fragment has the new sizes.
    const wide = "x" in payload || "y" in payload || "collapsed" in payload || "parent_id" in payload;
    this.enqueue(id, { wide });
  }

  enqueue(id, { isNew = false, wide = false, reparent = false } = {}) {
    if (this.gone.has(id) || tombstoned(id)) return;
    const queued = this.queue.get(id) ?? {};
    this.queue.set(id, { isNew: queued.isNew || isNew, wide: queued.wide || wide, reparent: queued.reparent || reparent });
    this.schedule();
  }

  schedule() {
    if (this.queueTimer) return;
    this.queueTimer = setTimeout(() => this.flush(), STRUCTURE_DELAY_MS);
  }

  async flush() {
    await this.whenNotDragging();
    this.queueTimer = null;
    const queue = new Map(this.queue);
    const removals = [...this.removals];
    this.queue.clear();
    this.removals.clear();
    const removed = new Set(removals);
    // A removed card whose children stay (not removed with it) leaves them to be re-parented:
    // the server's rendering knows where they go.
    let full = queue.size > BURST_RESYNC || [...queue.values()].some((item) => item.reparent);
    for (const id of removals) {
      const el = this.canvas.card(id);
      if (!el) continue;
      if ([...this.canvas.descendantIds(el)].some((child) => !removed.has(child) && !tombstoned(child))) full = true;
    }
    // The teams that lose a member get their "N sub" badge and size from their fragment.
    const teams = new Set();
    for (const id of removals) {
      const el = this.canvas.card(id);
      if (!el || (full && el.querySelector(".ws-node"))) continue;
      const top = this.topOf(id);
      if (top !== id && !removed.has(top)) teams.add(top);
      this.canvas.removeCard(id);
    }
    if (full) {
      await this.resync({ fresh: true });
      return;
    }
    for (const team of teams) if (!queue.has(team)) queue.set(team, {});
    // One after the other, in arrival order: a team's parent is on the page before its children.
    for (const [id, item] of queue) if (!removed.has(id)) await this.fetchCard(id, item);
  }

  async fetchCard(id, { isNew = false, wide = false } = {}) {
    if (this.gone.has(id) || tombstoned(id)) return;
    const wasHere = Boolean(this.canvas.card(id));
    const el = await this.refresh(wide && wasHere ? this.topOf(id) : id);
    if (this.gone.has(id) || tombstoned(id)) { this.canvas.removeCard(id); return; }
    if (!el || wasHere || !isNew) return;
    const card = this.canvas.card(id);
    if (!card) return;
    this.dedupe(card);
    spawn(card);
    // A new child changes its ancestors' "N sub" badges and sizes: the team's fragment has them.
    if (this.canvas.parentCard(card)) await this.refresh(this.topOf(id));
  }

  // canvas.refreshCard(target), with every card of the target's subtree marked in flight: their
  // states arriving meanwhile are held and put back over the fragment, which may predate them.
  async refresh(target) {
    const present = this.canvas.card(target);
    const covered = [target, ...(present ? this.canvas.descendantIds(present) : [])];
    const fetch = this.canvas.refreshCard(target);
    for (const id of covered) this.fetching.set(id, fetch);
    let el = null;
    try {
      el = await fetch;
    } finally {
      for (const id of covered) if (this.fetching.get(id) === fetch) this.fetching.delete(id);
    }
    this.sinceResync?.fetched.add(target);
    for (const id of covered) {
      const state = this.pendingState.get(id);
      this.pendingState.delete(id);
      if (state && this.canvas.card(id)) { this.canvas.applyState(id, state); this.remember(id, state); }
    }
    return el;
  }

  // A child drawn at the root while its parent's fragment was on its way is inside that
  // fragment too: the copy outside `el` goes.
  dedupe(el) {
    for (const node of [el, ...el.querySelectorAll(".ws-node")]) {
      const id = this.canvas.idOf(node);
      for (const copy of this.canvas.cardsEl.querySelectorAll(`.ws-node[data-workspace-id="${CSS.escape(id)}"]`)) {
        if (copy !== node && !el.contains(copy)) copy.remove();
      }
    }
  }

  topOf(id) {
    let el = this.canvas.card(id);
    for (let parent = el && this.canvas.parentCard(el); parent; parent = this.canvas.parentCard(parent)) el = parent;
    return this.canvas.idOf(el) ?? id;
  }
}

function spawn(el) {
  el.classList.add("is-spawning");
  const done = (event) => {
    if (event.target !== el) return; // a child's animation bubbling up
    el.classList.remove("is-spawning");
    el.removeEventListener("animationend", done);
  };
  el.addEventListener("animationend", done);
}

export function install(canvas) {
  new Live(canvas).install();
}

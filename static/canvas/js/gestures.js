// Gestures of the canvas (canvas spec §1.5, §1.6, §2.3–§2.9, §2.11): drag to move, drag to nest
// and extract, collapse/expand, the card context menu, delete, keyboard shortcuts and ⌘K search.
//
// The page changes first and the platform API is told after (absolute x/y, as the database
// stores them); a refusal puts the page back and says why in a toast. Structural edits are DOM
// moves: a nested card's element goes into its new parent's `.ws-children`, as the server would
// render it, so a reload shows exactly what the operator sees now.

import { api } from "./api.js";
import * as geo from "./geometry.js";
import { round, STATUS_LABELS } from "./canvas.js";

const DRAG_THRESHOLD_PX = 4;
const ARROW_STEP = 10, ARROW_STEP_FAST = 50;
const ARROW_SAVE_DELAY_MS = 400;
const TOMBSTONE_MS = 10_000;
const SAVE_CONCURRENCY = 6;
const SNAP_MS = 180;
const IS_MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);

// Workspaces this page deleted, id → time (ms) until which a re-fetch must not bring them back
// (a GET /canvas/cards/ already in flight when the DELETE answered still lists them).
export const tombstones = new Map();

export function isTombstoned(id) {
  const until = tombstones.get(id);
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  tombstones.delete(id);
  return false;
}

export function install(canvas) {
  const ui = {
    menu: document.getElementById("ctx-menu"),
    badge: document.getElementById("drop-badge"),
    confirm: document.getElementById("gesture-confirm"),
    search: document.getElementById("search-dialog"),
  };
  const dialogs = confirmDialog(ui.confirm);
  const menu = contextMenu(canvas, ui.menu, dialogs);
  installDrag(canvas, ui, dialogs);
  installDoubleClick(canvas);
  const search = searchDialog(canvas, ui.search);
  installKeyboard(canvas, menu, search);
  addSearchButton(search);
  installBatchBar(canvas, document.getElementById("batch-bar"), dialogs);
}

// --- the card tree in the DOM ------------------------------------------------------------------

const childrenBox = (el) => el.querySelector(":scope > .ws-children");
const subtree = (el) => [el, ...el.querySelectorAll(".ws-node")];
const isInteractive = (target) => !!target.closest("button, a, input, textarea, select, label, [contenteditable]");

function ancestors(canvas, el) {
  const chain = [];
  for (let node = canvas.parentCard(el); node; node = canvas.parentCard(node)) chain.push(node);
  return chain;
}

// z-order is depth (children above their parent) as the server renders it; siblings stack in
// DOM order.
function restack(canvas, el) {
  for (const node of subtree(el)) {
    const depth = canvas.depthOf(node);
    node.dataset.depth = depth;
    node.style.zIndex = depth + 1;
  }
}

// "N sub" counts every descendant (spec §1.3); recount `el` and its ancestors after a move.
function recountTeam(canvas, el) {
  for (let node = el; node; node = canvas.parentCard(node)) {
    const n = node.querySelectorAll(".ws-node").length;
    node.classList.toggle("has-children", n > 0);
    let badge = node.querySelector(":scope > .ws-head > .ws-sub");
    if (!n) { badge?.remove(); continue; }
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "ws-sub";
      node.querySelector(":scope > .ws-head > .ws-tier").before(badge);
    }
    badge.textContent = `${n} sub`;
    badge.title = `${n} sub-workspace${n === 1 ? "" : "s"}`;
  }
}

// Where a card is in the tree, to put it back exactly there.
function spot(canvas, el) {
  return { el, parent: canvas.parentCard(el), container: el.parentElement, before: el.nextSibling, rel: canvas.rel(el) };
}

// Move `el` under `parent` (null: the root level) at the parent-relative `rel`.
function place(canvas, el, parent, rel, { container = null, before = null } = {}) {
  const oldParent = canvas.parentCard(el);
  const into = container ?? (parent ? childrenBox(parent) : canvas.cardsEl);
  if (el.parentElement !== into) {
    const hadFocus = el.contains(document.activeElement); // a DOM move drops focus
    into.insertBefore(el, before && before.parentElement === into ? before : null);
    if (hadFocus) el.focus({ preventScroll: true });
  }
  el.dataset.parentId = parent ? canvas.idOf(parent) : "";
  canvas.setRel(el, rel.x, rel.y);
  restack(canvas, el);
  if (oldParent && oldParent !== parent) recountTeam(canvas, oldParent);
  if (parent) recountTeam(canvas, parent);
}

function restore(canvas, at) { place(canvas, at.el, at.parent, at.rel, at); }

// The next free slot of `parent`'s 2-column child grid for a card the size of `el`.
function nextSlot(canvas, parent, el) {
  const children = canvas.childCards(parent).filter((c) => c !== el);
  const boxes = children.map((c) => ({ ...canvas.rel(c), ...canvas.size(c) }));
  const own = canvas.size(el);
  const sizes = [...boxes.map((b) => [b.w, b.h]), [own.w, own.h]];
  return geo.freeSlot(boxes, sizes, [own.w, own.h]);
}

function sizesOf(canvas, els) { return els.map((node) => ({ node, size: canvas.size(node) })); }
function resize(canvas, saved) { for (const { node, size } of saved) canvas.setSize(node, size.w, size.h); }

// While cards move and their positions are being saved, re-syncs wait (`canvas.dragging`, which
// the live part honours): a fragment rendered between two of the saves would show a team half
// moved. Returns the release.
let holds = 0;
function holdSync(canvas) {
  holds += 1;
  canvas.dragging = true;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holds -= 1;
    if (!holds) canvas.dragging = false;
  };
}

// Save the absolute position of every card in `els` (fire-and-forget, as the spec's drag save;
// a few at a time so a big team moved at once does not flood the platform).
async function savePositions(canvas, els) {
  const queue = [...els];
  const worker = async () => {
    for (let el = queue.shift(); el; el = queue.shift()) {
      const { x, y } = canvas.absPos(el);
      await api("PATCH", `/workspaces/${canvas.idOf(el)}`, { x: round(x), y: round(y) });
    }
  };
  await Promise.all(Array.from({ length: Math.min(SAVE_CONCURRENCY, queue.length) }, worker));
}

// The batch members that are not inside another member: what a group drag moves.
function selectionRoots(canvas, ids) {
  const els = [...ids].map((id) => canvas.card(id)).filter(Boolean);
  return els.filter((el) => !ancestors(canvas, el).some((a) => ids.has(canvas.idOf(a))));
}

function names(canvas, els, shown = 3) {
  const list = els.map((el) => canvas.nameOf(el));
  return list.length > shown ? `${list.slice(0, shown).join(", ")} and ${list.length - shown} more` : list.join(", ");
}

// --- confirm dialog (page-owned, so closing the menu cannot take it down) ------------------------

function confirmDialog(dialog) {
  const title = dialog.querySelector("#gesture-confirm-title");
  const message = dialog.querySelector("#gesture-confirm-message");
  const list = dialog.querySelector("[data-confirm-list]");
  const ok = dialog.querySelector("[data-confirm-ok]");
  const cancel = dialog.querySelector("[data-confirm-cancel]");
  let settle = null;
  dialog.addEventListener("close", () => {
    const answer = dialog.returnValue === "confirm";
    settle?.(answer);
    settle = null;
  });
  return {
    // Resolves true on confirm, false on Cancel or Esc; focus goes back to `returnFocus`.
    ask({ heading, text, confirm, danger = false, items = [], kind = "info", returnFocus = null }) {
      title.textContent = heading;
      message.textContent = text;
      list.replaceChildren(...items.map((item) => Object.assign(document.createElement("li"), { textContent: item })));
      list.hidden = !items.length;
      ok.textContent = confirm;
      ok.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
      dialog.dataset.kind = kind;
      dialog.returnValue = "";
      dialog.showModal();
      (danger ? cancel : ok).focus();
      return new Promise((resolve) => {
        settle = (answer) => {
          if (returnFocus?.isConnected) returnFocus.focus({ preventScroll: true });
          resolve(answer);
        };
      });
    },
  };
}

// --- drag to move, nest and extract (spec §2.3, §2.4) -----------------------------------------------

function installDrag(canvas, ui, dialogs) {
  let drag = null;
  let busy = false; // a drop waiting for its dialog or the API: no new drag until it settles

  canvas.cardsEl.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !event.isPrimary || busy || drag) return;
    const el = event.target.closest(".ws-node");
    if (!el || isInteractive(event.target) || el.closest(".is-dimmed")) return;
    drag = { el, pointerId: event.pointerId, start: { x: event.clientX, y: event.clientY }, moved: false };
  });

  window.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    if (!drag.moved) {
      if (Math.hypot(event.clientX - drag.start.x, event.clientY - drag.start.y) < DRAG_THRESHOLD_PX) return;
      begin(event);
    }
    follow(event);
  });

  window.addEventListener("pointerup", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const current = drag;
    drag = null;
    if (!current.moved) return; // a click: selection is the core's
    canvas.suppressClick = true;
    setTimeout(() => { canvas.suppressClick = false; }, 0); // in case the click lands elsewhere
    release(current, event.ctrlKey || event.metaKey);
  });

  window.addEventListener("pointercancel", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const current = drag;
    drag = null;
    if (current.moved) { end(current); current.members.forEach((m) => restore(canvas, m)); current.release(); }
  });

  function begin(event) {
    const { el } = drag;
    const group = canvas.batch.size > 1 && canvas.batch.has(canvas.idOf(el)) ? selectionRoots(canvas, canvas.batch) : [el];
    drag.moved = true;
    drag.zoom = canvas.view.zoom;
    drag.members = group.map((node) => spot(canvas, node));
    drag.excluded = new Set(group.flatMap((node) => subtree(node).map((n) => canvas.idOf(n))));
    drag.size = canvas.size(el);
    drag.startAbs = canvas.absPos(el);
    // Other cards do not move during a drag: their boxes are measured once.
    drag.candidates = canvas.allCards()
      .filter((node) => !drag.excluded.has(canvas.idOf(node)) && !canvas.isHidden(node) && !node.classList.contains("is-dimmed"))
      .map((node, index) => ({ id: canvas.idOf(node), el: node, box: canvas.absBox(node), z: index, depth: canvas.depthOf(node) }));
    drag.lifted = [...new Set(group.flatMap((node) => ancestors(canvas, node)))];
    drag.lifted.forEach((node) => node.classList.add("is-lifted"));
    group.forEach((node) => node.classList.add("is-dragging"));
    drag.release = holdSync(canvas);
    canvas.root.classList.add("is-dragging-card");
    event.preventDefault();
  }

  function follow(event) {
    const dx = (event.clientX - drag.start.x) / drag.zoom;
    const dy = (event.clientY - drag.start.y) / drag.zoom;
    for (const member of drag.members) canvas.setRel(member.el, member.rel.x + dx, member.rel.y + dy);
    const box = { x: drag.startAbs.x + dx, y: drag.startAbs.y + dy, ...drag.size };
    const parent = drag.members[0].parent;
    const hit = geo.dropTarget(drag.candidates, geo.centre(box), drag.excluded);
    const target = hit && hit.el !== parent && !drag.members.every((m) => m.parent === hit.el) ? hit.el : null;
    const detach = !target && !!parent && (geo.shouldDetach(box, canvas.absBox(parent)) || event.ctrlKey || event.metaKey);
    showTarget(target);
    drag.detach = detach;
    if (target) showBadge(`Drop into: ${canvas.nameOf(target)}`, target, "nest");
    else if (detach) showBadge(`Extract from: ${canvas.nameOf(parent)}`, parent, "extract");
    else hideBadge();
  }

  function showTarget(target) {
    if (drag.target === target) return;
    drag.target?.classList.remove("is-drop-target");
    drag.ghost?.remove();
    drag.ghost = null;
    drag.target = target;
    if (!target) return;
    target.classList.add("is-drop-target");
    if (!target.classList.contains("is-collapsed")) {
      const slot = nextSlot(canvas, target, drag.el);
      const ghost = document.createElement("div");
      ghost.className = "drop-ghost";
      ghost.setAttribute("aria-hidden", "true");
      Object.assign(ghost.style, { left: `${slot.x}px`, top: `${slot.y}px`, width: `${drag.size.w}px`, height: `${drag.size.h}px` });
      childrenBox(target).append(ghost);
      drag.ghost = ghost;
    }
  }

  function showBadge(text, over, kind) {
    const rect = over.getBoundingClientRect();
    ui.badge.textContent = text;
    ui.badge.dataset.kind = kind;
    ui.badge.style.left = `${rect.left + rect.width / 2}px`;
    ui.badge.style.top = `${Math.max(8, rect.top - 10)}px`;
    ui.badge.hidden = false;
  }
  function hideBadge() { ui.badge.hidden = true; }

  // Hints off, lift off; the target's highlight stays while its dialog asks (`keepTarget`).
  function end(state, { keepTarget = false } = {}) {
    hideBadge();
    state.ghost?.remove();
    if (!keepTarget) state.target?.classList.remove("is-drop-target");
    state.lifted.forEach((node) => node.classList.remove("is-lifted"));
    state.members.forEach((m) => m.el.classList.remove("is-dragging"));
    canvas.root.classList.remove("is-dragging-card");
  }

  async function release(state, modifier) {
    const parent = state.members[0].parent;
    end(state, { keepTarget: true });
    busy = true;
    try {
      if (state.target) await nest(state);
      else if (parent && (state.detach || modifier)) await extract(state);
      else await move(state);
    } finally {
      state.target?.classList.remove("is-drop-target");
      busy = false;
      state.release();
    }
  }

  // Plain move: a child stays inside its parent (it was released < 20 % outside), parents grow.
  async function move(state) {
    for (const { el, parent } of state.members) {
      if (!parent) continue;
      const inside = geo.clampInside({ ...canvas.rel(el), ...canvas.size(el) }, canvas.size(parent));
      canvas.setRel(el, inside.x, inside.y);
      canvas.growToFit(parent);
    }
    await savePositions(canvas, state.members.flatMap((m) => subtree(m.el)));
  }

  // Cancel puts the cards back where the drag started, and that position is what is saved.
  async function snapBack(state) {
    for (const member of state.members) {
      member.el.classList.add("is-snapping");
      restore(canvas, member);
      setTimeout(() => member.el.classList.remove("is-snapping"), SNAP_MS);
    }
    await savePositions(canvas, state.members.map((m) => m.el));
  }

  async function nest(state) {
    const { target } = state;
    const members = state.members.filter((m) => m.parent !== target);
    const already = state.members.filter((m) => m.parent === target); // a selection member already in it
    const a = members.length === 1 ? `"${canvas.nameOf(members[0].el)}"` : `${members.length} workspaces`;
    const b = canvas.nameOf(target);
    const yes = await dialogs.ask({
      heading: "Nest Workspace",
      text: members.length === 1
        ? `Move ${a} inside "${b}"? This changes the org hierarchy — ${canvas.nameOf(members[0].el)} will become a sub-workspace of ${b}.`
        : `Move ${a} inside "${b}"? This changes the org hierarchy — they will become sub-workspaces of ${b}.`,
      items: members.length > 1 ? members.map((m) => canvas.nameOf(m.el)) : [],
      confirm: "Nest", kind: "nest", returnFocus: state.el,
    });
    target.classList.remove("is-drop-target");
    const parentOf = canvas.parentMap();
    if (!yes || members.some((m) => geo.wouldCycle(canvas.idOf(m.el), canvas.idOf(target), parentOf))) {
      await snapBack(state);
      return;
    }
    const sizes = sizesOf(canvas, [target, ...ancestors(canvas, target)]);
    for (const member of members) place(canvas, member.el, target, nextSlot(canvas, target, member.el));
    canvas.growToFit(target);
    const failed = await reparent(canvas, members, canvas.idOf(target));
    if (already.length) await move({ members: already });
    if (failed.length) {
      if (failed.length === members.length) resize(canvas, sizes);
      failed.forEach((m) => restore(canvas, m));
      toastFailures(canvas, failed, members.length, "re-parent");
    }
    canvas.afterChange();
  }

  async function extract(state) {
    const members = state.members.filter((m) => m.parent);
    const first = members[0];
    const yes = await dialogs.ask({
      heading: "Extract Workspace",
      text: members.length === 1
        ? `Extract "${canvas.nameOf(first.el)}" from "${canvas.nameOf(first.parent)}"? This moves it to the root level.`
        : `Extract ${members.length} workspaces from their teams? This moves them to the root level.`,
      items: members.length > 1 ? members.map((m) => canvas.nameOf(m.el)) : [],
      confirm: "Extract", kind: "extract", returnFocus: state.el,
    });
    if (!yes) { await snapBack(state); return; }
    // Each keeps its place on screen, now at the root level.
    for (const member of members) place(canvas, member.el, null, canvas.absPos(member.el));
    const failed = await reparent(canvas, members, null);
    failed.forEach((m) => restore(canvas, m));
    if (failed.length) toastFailures(canvas, failed, members.length, "extract");
    const roots = state.members.filter((m) => !m.parent).map((m) => m.el);
    if (roots.length) await savePositions(canvas, roots.flatMap(subtree));
    canvas.afterChange();
  }
}

// One PATCH {parent_id, x, y} per moved card (in parallel); their descendants' absolute
// positions follow. Returns the members whose PATCH was refused.
async function reparent(canvas, members, parentId) {
  const results = await Promise.all(members.map(async (member) => {
    const { x, y } = canvas.absPos(member.el);
    const answer = await api("PATCH", `/workspaces/${canvas.idOf(member.el)}`, { parent_id: parentId, x: round(x), y: round(y) });
    return { member, answer };
  }));
  const failed = results.filter((r) => !r.answer.ok);
  failed.forEach((r) => { r.member.error = r.answer.error; });
  const moved = results.filter((r) => r.answer.ok).map((r) => r.member.el);
  await savePositions(canvas, moved.flatMap((el) => [...el.querySelectorAll(".ws-node")]));
  return failed.map((r) => r.member);
}

function toastFailures(canvas, failed, total, verb) {
  if (total === 1) canvas.toast(`Could not ${verb} "${canvas.nameOf(failed[0].el)}": ${failed[0].error}`, "error");
  else canvas.toast(`Could not ${verb} ${failed.length} of ${total} workspaces: ${names(canvas, failed.map((m) => m.el))}`, "error");
}

// --- collapse / expand, zoom to team (spec §1.6, §2.7) ---------------------------------------------

function showCollapsed(canvas, el, collapsed) {
  el.classList.toggle("is-collapsed", collapsed);
  el.dataset.collapsed = String(collapsed);
  if (collapsed) {
    canvas.setSize(el, geo.LEAF_W, geo.LEAF_H);
    const hidden = new Set(canvas.descendantIds(el));
    if (hidden.has(canvas.selectedId)) canvas.deselect();
  } else {
    const children = canvas.childCards(el);
    if (children.length) {
      const need = geo.parentSize(children.map((c) => ({ ...canvas.rel(c), ...canvas.size(c) })));
      canvas.setSize(el, need.w, need.h);
    }
    canvas.growToFit(el);
  }
  canvas.emit("cards-changed", {});
}

async function setCollapsed(canvas, el, collapsed) {
  const before = { collapsed: el.classList.contains("is-collapsed"), size: canvas.size(el) };
  if (before.collapsed === collapsed) return;
  showCollapsed(canvas, el, collapsed);
  const answer = await api("PATCH", `/workspaces/${canvas.idOf(el)}`, { collapsed });
  if (!answer.ok) {
    showCollapsed(canvas, el, before.collapsed);
    canvas.setSize(el, before.size.w, before.size.h);
    canvas.toast(`Could not ${collapsed ? "collapse" : "expand"} "${canvas.nameOf(el)}": ${answer.error}`, "error");
  }
}

function zoomToTeam(canvas, el) {
  canvas.fit([el, ...canvas.childCards(el)], { padding: 0.25, maxZoom: 1.25 });
}

function installDoubleClick(canvas) {
  canvas.cardsEl.addEventListener("dblclick", (event) => {
    const el = event.target.closest(".ws-node");
    if (!el || isInteractive(event.target)) return;
    event.stopPropagation();
    if (el.classList.contains("is-collapsed")) setCollapsed(canvas, el, false);
    else if (canvas.childCards(el).length) zoomToTeam(canvas, el);
  });
}

// --- context menu (spec §2.8) and its actions --------------------------------------------------------

const RESTARTABLE = new Set(["offline", "failed", "paused", "degraded"]);
const CHATTABLE = new Set(["online", "degraded"]);

function contextMenu(canvas, menu, dialogs) {
  let forEl = null;
  const items = () => [...menu.querySelectorAll('[role="menuitem"]')].filter((item) => !item.hidden);
  const enabled = () => items().filter((item) => item.getAttribute("aria-disabled") !== "true");
  const item = (name) => menu.querySelector(`[data-menu="${name}"]`);

  function configure(el) {
    const status = el.dataset.status;
    const isChild = !!canvas.parentCard(el);
    const isParent = canvas.childCards(el).length > 0;
    const collapsed = el.classList.contains("is-collapsed");
    const set = (name, { shown = true, disabled = false } = {}) => {
      const node = item(name);
      node.hidden = !shown;
      node.setAttribute("aria-disabled", String(disabled));
    };
    set("details");
    set("chat", { disabled: !CHATTABLE.has(status) });
    set("terminal", { disabled: !CHATTABLE.has(status) }); // spec §2.8: needs online, like Chat
    set("export");
    set("duplicate");
    set("extract", { shown: isChild });
    set("arrange", { shown: isParent });
    set("toggle-collapse", { shown: isParent });
    set("zoom-team", { shown: isParent });
    set("expand-team", { shown: !isParent });
    set("pause", { shown: status !== "paused", disabled: status !== "online" });
    set("resume", { shown: status === "paused" });
    set("restart", { disabled: !RESTARTABLE.has(status) });
    set("delete");
    const toggle = item("toggle-collapse");
    toggle.dataset.state = collapsed ? "collapsed" : "expanded";
    toggle.querySelector("[data-collapse-label]").textContent = collapsed ? "Expand Team" : "Collapse Team";
    menu.setAttribute("aria-label", `Actions for ${canvas.nameOf(el)}`);
    menu.querySelector("[data-ctx-name]").textContent = canvas.nameOf(el);
    menu.querySelector("[data-ctx-status]").textContent = STATUS_LABELS[status] ?? status;
    menu.className = `ctx-menu status-${status}`;
  }

  function open(el, x, y) {
    forEl = el;
    configure(el);
    menu.hidden = false;
    const { offsetWidth: w, offsetHeight: h } = menu;
    menu.style.left = `${Math.max(8, Math.min(x, window.innerWidth - w - 8))}px`;
    menu.style.top = `${Math.max(8, Math.min(y, window.innerHeight - h - 8))}px`;
    for (const node of items()) node.tabIndex = -1;
    const first = enabled()[0];
    if (first) { first.tabIndex = 0; first.focus({ preventScroll: true }); } else menu.focus({ preventScroll: true });
  }

  function openAtCard(el) {
    const rect = el.getBoundingClientRect();
    open(el, rect.left + Math.min(rect.width / 2, 140), rect.top + Math.min(rect.height / 2, 60));
  }

  function close({ refocus = true } = {}) {
    if (menu.hidden) return;
    menu.hidden = true;
    const el = forEl;
    forEl = null;
    if (refocus && el?.isConnected) el.focus({ preventScroll: true });
  }

  canvas.cardsEl.addEventListener("contextmenu", (event) => {
    const el = event.target.closest(".ws-node");
    if (!el || el.closest(".is-dimmed")) return;
    event.preventDefault();
    if (event.button === 2 || event.clientX || event.clientY) open(el, event.clientX, event.clientY);
    else openAtCard(el);
  });

  menu.addEventListener("keydown", (event) => {
    const list = enabled();
    const at = list.indexOf(document.activeElement);
    const go = (index) => {
      if (!list.length) return;
      const next = list[(index + list.length) % list.length];
      list.forEach((node) => { node.tabIndex = -1; });
      next.tabIndex = 0;
      next.focus({ preventScroll: true });
    };
    if (event.key === "ArrowDown") go(at + 1);
    else if (event.key === "ArrowUp") go(at < 0 ? list.length - 1 : at - 1);
    else if (event.key === "Home") go(0);
    else if (event.key === "End") go(list.length - 1);
    else if (event.key === "Escape" || event.key === "Tab") close();
    else return;
    event.preventDefault();
    event.stopPropagation();
  });

  menu.addEventListener("click", (event) => {
    const node = event.target.closest('[role="menuitem"]');
    if (!node || node.getAttribute("aria-disabled") === "true") return;
    const el = forEl;
    const action = node.dataset.menu;
    close();
    if (el?.isConnected) ACTIONS[action](canvas, el, dialogs);
  });

  // Outside click, a viewport move or the card going away close the menu.
  document.addEventListener("pointerdown", (event) => {
    if (!menu.hidden && !menu.contains(event.target)) close({ refocus: false });
  }, true);
  menu.addEventListener("contextmenu", (event) => event.preventDefault());
  canvas.on("viewport", () => close({ refocus: false }));
  canvas.on("card-removed", ({ ids }) => { if (forEl && ids.includes(canvas.idOf(forEl))) close({ refocus: false }); });
  window.addEventListener("blur", () => close({ refocus: false }));

  return { open, openAtCard, close, isOpen: () => !menu.hidden };
}

const ACTIONS = {
  details: (canvas, el) => canvas.select(canvas.idOf(el), { tab: "details" }),
  chat: (canvas, el) => canvas.select(canvas.idOf(el), { tab: "chat" }),
  terminal: (canvas, el) => canvas.select(canvas.idOf(el), { tab: "terminal" }),
  export: (canvas, el) => exportBundle(canvas, el),
  duplicate: (canvas, el) => duplicate(canvas, el),
  extract: (canvas, el) => extractFromTeam(canvas, el),
  arrange: (canvas, el) => arrangeChildren(canvas, el),
  "toggle-collapse": (canvas, el) => setCollapsed(canvas, el, !el.classList.contains("is-collapsed")),
  "zoom-team": (canvas, el) => zoomToTeam(canvas, el),
  "expand-team": (canvas, el) => expandToTeam(canvas, el),
  pause: (canvas, el) => lifecycle(canvas, el, "pause", "paused"),
  resume: (canvas, el) => lifecycle(canvas, el, "resume", "provisioning"),
  restart: (canvas, el) => lifecycle(canvas, el, "restart", "provisioning"),
  delete: (canvas, el, dialogs) => confirmDelete(canvas, el, dialogs),
};

function bundleFileName(name) {
  const kebab = name.normalize("NFKD").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `${kebab || "workspace"}.bundle.json`;
}

async function fetchBundle(canvas, el) {
  const answer = await api("GET", `/bundles/export/${canvas.idOf(el)}`);
  if (!answer.ok || !answer.data || typeof answer.data !== "object") {
    canvas.toast(`Export failed: ${answer.error || "no bundle"}`, "error");
    return null;
  }
  return answer.data;
}

async function exportBundle(canvas, el) {
  const bundle = await fetchBundle(canvas, el);
  if (!bundle) return;
  const url = URL.createObjectURL(new Blob([JSON.stringify(bundle, null, 2)], { type: "application/json" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: bundleFileName(canvas.nameOf(el)) });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  canvas.toast("Bundle exported", "success");
}

// A copy of the workspace (and its team) through its bundle; the new cards come by re-sync and
// the view goes to the copy (the server places it at the end of the root row).
async function duplicate(canvas, el) {
  const bundle = await fetchBundle(canvas, el);
  if (!bundle) return;
  const answer = await api("POST", "/bundles/import", bundle);
  if (!answer.ok) { canvas.toast(`Duplicate failed: ${answer.error}`, "error"); return; }
  canvas.toast(`Duplicated "${canvas.nameOf(el)}"`, "success");
  await canvas.resync();
  const copy = canvas.card(answer.data?.workspace_id);
  if (copy) canvas.panTo(copy);
}

// The menu's extract needs no confirm (spec §2.4); the card lands beside its old top-level team
// rather than on top of it.
async function extractFromTeam(canvas, el) {
  const done = holdSync(canvas);
  const at = spot(canvas, el);
  const chain = ancestors(canvas, el);
  const top = canvas.absBox(chain[chain.length - 1]);
  place(canvas, el, null, { x: top.x + top.w + 40, y: canvas.absPos(el).y });
  const failed = await reparent(canvas, [at], null);
  if (failed.length) { restore(canvas, at); toastFailures(canvas, failed, 1, "extract"); }
  else canvas.toast("Extracted from team", "success");
  done();
  canvas.afterChange();
}

// Re-lay every child into the 2-column grid, sorted by name (spec §1.5), and save them.
async function arrangeChildren(canvas, el) {
  const children = canvas.childCards(el).sort((a, b) => canvas.nameOf(a).localeCompare(canvas.nameOf(b)));
  const sizes = children.map((c) => { const s = canvas.size(c); return [s.w, s.h]; });
  const box = childrenBox(el);
  children.forEach((child, index) => {
    const slot = geo.gridSlot(index, sizes);
    canvas.setRel(child, slot.x, slot.y);
    box.append(child); // DOM order = grid order, for stacking and keyboard order
  });
  canvas.growToFit(el);
  canvas.emit("cards-changed", {});
  const done = holdSync(canvas);
  await savePositions(canvas, children.flatMap(subtree)).finally(done);
  canvas.toast("Children arranged", "success");
}

async function expandToTeam(canvas, el) {
  const answer = await api("POST", `/workspaces/${canvas.idOf(el)}/expand`);
  if (!answer.ok) { canvas.toast(`Expand to team failed: ${answer.error}`, "error"); return; }
  const n = answer.data?.children?.length ?? 0;
  canvas.toast(`Expanding "${canvas.nameOf(el)}" into a team of ${n}`, "success");
  await canvas.resync();
}

const VERBS = { pause: "Pause", resume: "Resume", restart: "Restart" };

async function lifecycle(canvas, el, verb, optimistic) {
  const id = canvas.idOf(el);
  const before = el.dataset.status;
  canvas.applyState(id, { status: optimistic });
  const answer = await api("POST", `/workspaces/${id}/${verb}`);
  if (answer.ok) return;
  if (canvas.card(id)?.dataset.status === optimistic) canvas.applyState(id, { status: before });
  canvas.toast(`${VERBS[verb]} failed: ${answer.error}`, "error");
}

// --- delete (spec §2.5) --------------------------------------------------------------------------------

async function confirmDelete(canvas, el, dialogs) {
  const name = canvas.nameOf(el);
  const team = [...el.querySelectorAll(".ws-node")];
  const yes = await dialogs.ask(team.length ? {
    heading: "Delete Workspace and Children",
    text: `Permanently delete "${name}" and its ${team.length} sub-workspace${team.length === 1 ? "" : "s"}? `
      + "All child workspaces and their data are deleted too: containers stopped, configuration removed. This action cannot be undone.",
    items: team.length > 6 ? [...team.slice(0, 5).map((c) => canvas.nameOf(c)), `and ${team.length - 5} more`] : team.map((c) => canvas.nameOf(c)),
    confirm: "Delete All", danger: true, kind: "danger", returnFocus: el,
  } : {
    heading: "Delete Workspace",
    text: `Permanently delete "${name}"? This will stop the container and remove all configuration. This action cannot be undone.`,
    confirm: "Delete", danger: true, kind: "danger", returnFocus: el,
  });
  if (yes) await deleteWorkspace(canvas, el);
}

async function deleteWorkspace(canvas, el) {
  const id = canvas.idOf(el);
  const name = canvas.nameOf(el);
  const ids = [id, ...canvas.descendantIds(el)];
  el.classList.add("is-dimmed");
  el.setAttribute("aria-busy", "true");
  const answer = await api("DELETE", `/workspaces/${id}?confirm=true`);
  if (!answer.ok) {
    const current = canvas.card(id);
    current?.classList.remove("is-dimmed");
    current?.removeAttribute("aria-busy");
    canvas.toast(`Delete failed: ${answer.error}`, "error");
    return;
  }
  tombstone(ids);
  const hadFocus = el.contains(document.activeElement);
  canvas.removeCard(id);
  if (hadFocus) canvas.root.focus({ preventScroll: true });
  canvas.toast(`Deleted "${name}"${ids.length > 1 ? ` and ${ids.length - 1} sub-workspace${ids.length === 2 ? "" : "s"}` : ""}`, "success");
}

// Deleted ids stay dead for a while: an in-flight re-sync or a late event must not resurrect them.
function tombstone(ids) {
  const until = Date.now() + TOMBSTONE_MS;
  ids.forEach((gone) => tombstones.set(gone, until));
  setTimeout(() => ids.forEach((gone) => { if (tombstones.get(gone) === until) tombstones.delete(gone); }), TOMBSTONE_MS);
}

// --- batch actions (spec §1.1 batch bar, §2.1): from two shift-selected cards ------------------------

const BATCH_ACTIONS = {
  restart: { label: "Restart", done: "Restarted", call: (id) => api("POST", `/workspaces/${id}/restart`), state: { status: "provisioning", current_task: "" } },
  pause: { label: "Pause", done: "Paused", call: (id) => api("POST", `/workspaces/${id}/pause`), state: { status: "paused", current_task: "" } },
  delete: { label: "Delete", done: "Deleted", call: (id) => api("DELETE", `/workspaces/${id}?confirm=true`), danger: true },
};

function installBatchBar(canvas, bar, dialogs) {
  const count = bar.querySelector("[data-batch-count]");
  const members = () => [...canvas.batch].map((id) => canvas.card(id)).filter(Boolean);
  const show = () => {
    const n = members().length;
    bar.hidden = n < 2;
    count.textContent = `${n} selected`;
  };
  const clear = () => { canvas.batch.clear(); canvas.applySelection(); canvas.emit("batch", { ids: [] }); };
  for (const name of ["batch", "cards-changed", "card-removed"]) canvas.on(name, show);
  bar.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-batch]");
    if (!button) return;
    if (button.dataset.batch === "clear") { clear(); return; }
    const action = BATCH_ACTIONS[button.dataset.batch];
    // Deleting a team deletes its members: act on the selection's roots only.
    const els = button.dataset.batch === "delete" ? selectionRoots(canvas, canvas.batch) : members();
    const n = els.length;
    const yes = await dialogs.ask({
      heading: `${action.label} ${n} workspace${n === 1 ? "" : "s"}`,
      text: action.danger
        ? "These workspaces and their sub-workspaces are deleted: containers stopped, configuration removed. This action cannot be undone."
        : `${action.label} every selected workspace?`,
      items: els.map((el) => canvas.nameOf(el)), confirm: action.label, danger: !!action.danger,
      kind: action.danger ? "danger" : "info", returnFocus: button,
    });
    if (!yes) return;
    const results = await Promise.all(els.map(async (el) => ({ el, id: canvas.idOf(el), answer: await action.call(canvas.idOf(el)) })));
    for (const { el, id, answer } of results) {
      if (!answer.ok) continue; // failures stay selected, so the operator can retry them
      canvas.batch.delete(id);
      if (action.danger) { tombstone([id, ...canvas.descendantIds(el)]); canvas.removeCard(id); } else canvas.applyState(id, action.state);
    }
    canvas.applySelection();
    canvas.emit("batch", { ids: [...canvas.batch] });
    const failed = results.filter((r) => !r.answer.ok).length;
    if (failed) canvas.toast(`${failed}/${n} ${action.label.toLowerCase()} failed`, "error");
    else canvas.toast(`${action.done} ${n} workspace${n === 1 ? "" : "s"}`, "success");
  });
}

// --- keyboard (spec §2.9) ---------------------------------------------------------------------------------

function isTyping(target) {
  return !!target && (target.isContentEditable || !!target.closest?.("input, textarea, select, [contenteditable]"));
}

function installKeyboard(canvas, menu, search) {
  const focusedCard = () => {
    const active = document.activeElement;
    return active?.matches?.(".ws-node") ? active : null;
  };
  const current = () => focusedCard() ?? canvas.card(canvas.selectedId);
  const onCanvas = (target) => target === document.body || canvas.root.contains(target);
  const choose = (el) => { canvas.select(canvas.idOf(el)); el.focus({ preventScroll: true }); };
  // Typing, the menu (it has its own keys), a dialog or a drawer keep their keys.
  const blocked = (event) => event.defaultPrevented || isTyping(event.target) || menu.isOpen()
    || !!document.querySelector("dialog[open]") || !!event.target.closest?.('[role="dialog"]');

  // Capture phase: Enter on a selected parent goes to its first child before the core's Enter
  // (select the focused card) runs.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.ctrlKey || event.metaKey || event.altKey || blocked(event)) return;
    if (!onCanvas(event.target)) return;
    const el = current();
    if (!el || canvas.idOf(el) !== canvas.selectedId || el.classList.contains("is-collapsed")) return;
    const first = canvas.childCards(el).sort((a, b) => canvas.rel(a).y - canvas.rel(b).y || canvas.rel(a).x - canvas.rel(b).x)[0];
    if (!first) return;
    event.preventDefault();
    event.stopPropagation();
    choose(first);
  }, true);

  const moved = new Set();
  let saveTimer = null;

  document.addEventListener("keydown", (event) => {
    if (blocked(event)) return;
    const mod = event.ctrlKey || event.metaKey;
    if (mod && (event.key === "k" || event.key === "K")) { event.preventDefault(); search.open(); return; }
    if (event.key === "Escape") {
      if (canvas.batch.size) { canvas.batch.clear(); canvas.applySelection(); canvas.emit("batch", { ids: [] }); }
      else canvas.deselect();
      return;
    }
    if (!onCanvas(event.target)) return;
    const focused = focusedCard();
    if (focused && (event.key === "ContextMenu" || (event.shiftKey && event.key === "F10"))) {
      event.preventDefault();
      menu.openAtCard(focused);
      return;
    }
    if (event.key === "Enter" && event.shiftKey && !mod) {
      const parent = current() && canvas.parentCard(current());
      if (parent) { event.preventDefault(); choose(parent); }
      return;
    }
    if (mod && (event.key === "]" || event.key === "[")) {
      const el = current();
      if (!el) return;
      event.preventDefault();
      const siblings = [...el.parentElement.children].filter((c) => c.matches(".ws-node"));
      const at = siblings.indexOf(el);
      if (event.key === "]" && at < siblings.length - 1) siblings[at + 1].after(el);
      if (event.key === "[" && at > 0) siblings[at - 1].before(el);
      if (focused) el.focus({ preventScroll: true });
      return;
    }
    if ((event.key === "z" || event.key === "Z") && !mod && !event.altKey) {
      const el = current();
      if (!el) return;
      event.preventDefault();
      if (canvas.childCards(el).length && !el.classList.contains("is-collapsed")) zoomToTeam(canvas, el);
      else canvas.fit([el], { padding: 0.4, maxZoom: 1.25 });
      return;
    }
    const arrow = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (arrow && focused && !mod && !event.altKey && !focused.closest(".is-dimmed")) {
      event.preventDefault();
      const step = event.shiftKey ? ARROW_STEP_FAST : ARROW_STEP;
      const { x, y } = canvas.rel(focused);
      canvas.setRel(focused, x + arrow[0] * step, y + arrow[1] * step);
      const parent = canvas.parentCard(focused);
      if (parent) canvas.growToFit(parent);
      moved.add(focused);
    }
  });

  // Arrow moves are saved once the keys rest.
  document.addEventListener("keyup", (event) => {
    if (!event.key.startsWith("Arrow") || !moved.size) return;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => {
      const els = [...moved].filter((el) => el.isConnected);
      moved.clear();
      const done = holdSync(canvas);
      savePositions(canvas, els.flatMap(subtree)).finally(done);
    }, ARROW_SAVE_DELAY_MS);
  });
}

// --- ⌘K search (spec §2.11) --------------------------------------------------------------------------------

function matchesQuery(query, fields) {
  const q = query.trim().toLowerCase();
  return !q || fields.some((field) => (field || "").toLowerCase().includes(q));
}

function searchDialog(canvas, dialog) {
  const input = dialog.querySelector("#search-input");
  const list = dialog.querySelector("#search-results");
  const empty = dialog.querySelector("[data-search-empty]");
  let results = [];
  let active = -1;
  let returnFocus = null;

  function option(el, index) {
    const status = el.dataset.status;
    const li = document.createElement("li");
    li.id = `search-option-${canvas.idOf(el)}`;
    li.className = `search-option status-${status}`;
    li.setAttribute("role", "option");
    li.dataset.index = index;
    const parent = canvas.parentCard(el);
    const parts = [
      ["search-dot", ""], ["search-name", canvas.nameOf(el)], ["search-role", el.dataset.role || ""],
      ["search-team", parent ? `in ${canvas.nameOf(parent)}` : ""], ["search-status", STATUS_LABELS[status] ?? status],
    ];
    for (const [cls, text] of parts) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      if (cls === "search-dot") span.setAttribute("aria-hidden", "true");
      li.append(span);
    }
    return li;
  }

  function render() {
    const query = input.value;
    results = canvas.allCards()
      .filter((el) => matchesQuery(query, [canvas.nameOf(el), el.dataset.role, el.dataset.status, STATUS_LABELS[el.dataset.status]]))
      .sort((a, b) => canvas.nameOf(a).localeCompare(canvas.nameOf(b)));
    list.replaceChildren(...results.map(option));
    empty.hidden = results.length > 0;
    empty.textContent = canvas.allCards().length ? `No workspace matches “${query.trim()}”` : "No workspaces on the canvas yet";
    highlight(results.length ? 0 : -1);
  }

  function highlight(index) {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    const li = list.children[index];
    if (li) { input.setAttribute("aria-activedescendant", li.id); li.scrollIntoView({ block: "nearest" }); }
    else input.removeAttribute("aria-activedescendant");
  }

  function choose(el) {
    returnFocus = null;
    dialog.close();
    const id = canvas.idOf(el);
    canvas.select(id, { tab: "details" });
    // A card inside a collapsed team is shown by its outermost collapsed ancestor.
    const hiddenBy = ancestors(canvas, el).filter((a) => a.classList.contains("is-collapsed")).pop();
    canvas.panTo(hiddenBy ?? el);
    (hiddenBy ?? el).focus({ preventScroll: true });
  }

  input.addEventListener("input", render);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!results.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + results.length) % results.length);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (results[active]) choose(results[active]);
    }
  });
  list.addEventListener("click", (event) => {
    const li = event.target.closest('[role="option"]');
    if (li) choose(results[Number(li.dataset.index)]);
  });
  list.addEventListener("pointermove", (event) => {
    const li = event.target.closest('[role="option"]');
    if (li && Number(li.dataset.index) !== active) highlight(Number(li.dataset.index));
  });
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); }); // the backdrop
  dialog.addEventListener("close", () => {
    if (returnFocus?.isConnected) returnFocus.focus({ preventScroll: true });
    returnFocus = null;
  });

  return {
    open() {
      if (dialog.open) return;
      returnFocus = document.activeElement;
      input.value = "";
      render();
      dialog.showModal();
      input.focus();
    },
  };
}

function addSearchButton(search) {
  const slot = document.getElementById("toolbar-actions");
  if (!slot) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "btn btn-ghost toolbar-search";
  button.title = "Search workspaces";
  button.setAttribute("aria-keyshortcuts", "Control+K Meta+K");
  button.innerHTML = '<svg viewBox="0 0 16 16" aria-hidden="true"><circle cx="7" cy="7" r="4.5"/><path d="m10.4 10.4 3.1 3.1"/></svg>'
    + `<span>Search</span><kbd aria-hidden="true">${IS_MAC ? "⌘K" : "Ctrl K"}</kbd>`;
  button.addEventListener("click", () => search.open());
  slot.prepend(button);
}

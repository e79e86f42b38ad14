// Pure geometry of the canvas (canvas spec §1.3, §1.5, §2.3, §2.4, §2.10): no DOM, no state.
// The constants match workspaces/canvas/layout.py, which lays out the server-rendered page.

export const LEAF_W = 240, LEAF_H = 130;
export const PARENT_MIN_W = 360, PARENT_MIN_H = 200;
export const SIDE_PAD = 16, HEADER_BAND = 130, GUTTER = 14, BOTTOM_PAD = 16, GRID_COLUMNS = 2;
export const ZOOM_MIN = 0.1, ZOOM_MAX = 2;
export const DETACH_FRACTION = 0.2;

export function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

export function contains(box, point) {
  return point.x >= box.x && point.x <= box.x + box.w && point.y >= box.y && point.y <= box.y + box.h;
}

export function centre(box) {
  return { x: box.x + box.w / 2, y: box.y + box.h / 2 };
}

// Parent-relative top-left of slot `index` of the 2-column child grid; `sizes` are the
// children's [w, h] in grid order (rows past the end are leaf-sized).
export function gridSlot(index, sizes) {
  const columnW = sizes.length ? Math.max(...sizes.map(([w]) => w)) : LEAF_W;
  let y = HEADER_BAND;
  for (let row = 0; row < Math.floor(index / GRID_COLUMNS); row += 1) {
    const inRow = sizes.slice(row * GRID_COLUMNS, (row + 1) * GRID_COLUMNS).map(([, h]) => h);
    y += (inRow.length ? Math.max(...inRow) : LEAF_H) + GUTTER;
  }
  return { x: SIDE_PAD + (index % GRID_COLUMNS) * (columnW + GUTTER), y };
}

// The first grid slot where a box of `size` overlaps none of the `taken` (relative) boxes.
export function freeSlot(taken, sizes, size) {
  for (let index = 0; ; index += 1) {
    const slot = gridSlot(index, sizes);
    const box = { x: slot.x, y: slot.y, w: size[0], h: size[1] };
    if (!taken.some((other) => overlaps(box, other))) return slot;
  }
}

// Smallest parent size ≥ the minimum that contains every (parent-relative) child box.
export function parentSize(children) {
  return {
    w: Math.max(PARENT_MIN_W, ...children.map((c) => c.x + c.w + SIDE_PAD)),
    h: Math.max(PARENT_MIN_H, ...children.map((c) => c.y + c.h + BOTTOM_PAD)),
  };
}

// Parent-relative top-left that puts `box` (parent-relative) inside a parent of `size`, clear of
// its padding: how a child released slightly outside its parent is brought back in (without the
// parent then growing around it). A box larger than the parent keeps to the top-left padding.
export function clampInside(box, size) {
  return {
    x: Math.max(SIDE_PAD, Math.min(box.x, size.w - SIDE_PAD - box.w)),
    y: Math.max(SIDE_PAD, Math.min(box.y, size.h - BOTTOM_PAD - box.h)),
  };
}

// Fraction of `child`'s area that lies outside `parent` (both absolute boxes), 0..1.
export function outsideFraction(child, parent) {
  const w = Math.max(0, Math.min(child.x + child.w, parent.x + parent.w) - Math.max(child.x, parent.x));
  const h = Math.max(0, Math.min(child.y + child.h, parent.y + parent.h) - Math.max(child.y, parent.y));
  const area = child.w * child.h;
  return area > 0 ? (area - w * h) / area : 0; // not 1 - inside/area: 20 % must be exactly 0.2
}

export function shouldDetach(child, parent) {
  return outsideFraction(child, parent) >= DETACH_FRACTION;
}

// The drop target under `point`: among `candidates` ({id, box, z, depth}) whose box contains the
// point and whose id is not in `excluded` (the dragged card and its descendants), the highest z,
// then the deepest, then the smallest area. null when none.
export function dropTarget(candidates, point, excluded) {
  let best = null;
  for (const candidate of candidates) {
    if (excluded.has(candidate.id) || !contains(candidate.box, point)) continue;
    if (!best) { best = candidate; continue; }
    const area = candidate.box.w * candidate.box.h, bestArea = best.box.w * best.box.h;
    if (candidate.z > best.z || (candidate.z === best.z && (candidate.depth > best.depth
        || (candidate.depth === best.depth && area < bestArea)))) best = candidate;
  }
  return best;
}

// Would making `parentId` the parent of `id` create a cycle? `parentOf` maps id → parent id.
export function wouldCycle(id, parentId, parentOf) {
  for (let node = parentId, hops = 0; node && hops < 10000; node = parentOf.get(node), hops += 1) {
    if (node === id) return true;
  }
  return false;
}

export function clampZoom(zoom) {
  return Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, zoom));
}

// Zoom by `factor` keeping the world point under the screen `point` fixed.
export function zoomAt(view, point, factor) {
  const zoom = clampZoom(view.zoom * factor);
  const scale = zoom / view.zoom;
  return { x: point.x - (point.x - view.x) * scale, y: point.y - (point.y - view.y) * scale, zoom };
}

// The bounding box of absolute boxes, or null for none.
export function bounds(boxes) {
  if (!boxes.length) return null;
  const x = Math.min(...boxes.map((b) => b.x)), y = Math.min(...boxes.map((b) => b.y));
  const right = Math.max(...boxes.map((b) => b.x + b.w)), bottom = Math.max(...boxes.map((b) => b.y + b.h));
  return { x, y, w: right - x, h: bottom - y };
}

// The viewport {x, y, zoom} that shows `box` centred in a screen of `size`, with `padding` as a
// fraction of the screen kept free, zoom clamped to [minZoom, maxZoom].
export function fitView(box, size, { padding = 0.1, minZoom = ZOOM_MIN, maxZoom = 1 } = {}) {
  if (!box) return { x: 0, y: 0, zoom: 1 };
  const usableW = size.w * (1 - padding), usableH = size.h * (1 - padding);
  const zoom = Math.min(maxZoom, Math.max(minZoom, Math.min(usableW / Math.max(box.w, 1), usableH / Math.max(box.h, 1))));
  return { x: size.w / 2 - (box.x + box.w / 2) * zoom, y: size.h / 2 - (box.y + box.h / 2) * zoom, zoom };
}

// Screen point → world point under the viewport.
export function toWorld(view, point) {
  return { x: (point.x - view.x) / view.zoom, y: (point.y - view.y) / view.zoom };
}

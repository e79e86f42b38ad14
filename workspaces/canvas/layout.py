"""Card geometry of the canvas (canvas spec §1.3, §1.5): pure functions, no database.

The database stores absolute canvas coordinates; a child card is drawn inside its parent's box,
so the page needs positions relative to the parent and a size for every parent that fits its
children. ``static/canvas/js/geometry.js`` holds the same rules for the browser (drag release,
child arrival); the constants must agree (``test_layout`` reads both).
"""

from __future__ import annotations

from dataclasses import dataclass

LEAF_W, LEAF_H = 240, 130
PARENT_MIN_W, PARENT_MIN_H = 360, 200
SIDE_PAD = 16
HEADER_BAND = 130  # room above the first row of children for the parent's own name/role/task
GUTTER = 14
BOTTOM_PAD = 16
GRID_COLUMNS = 2
# Roots with no position yet (x = y = 0) are placed in a row to the right of the placed ones.
ROOT_ORIGIN = (100, 100)
ROOT_GAP = 80


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: Box) -> bool:
        return self.x < other.x + other.w and other.x < self.x + self.w and self.y < other.y + other.h and other.y < self.y + self.h


def grid_slot(index: int, sizes: list[tuple[float, float]]) -> tuple[float, float]:
    """Parent-relative top-left of slot ``index`` in the 2-column grid of a parent's children.

    Column width is the widest child, a row's height its tallest child (``sizes`` are the
    children's (w, h) in grid order; rows past the end are leaf-sized).
    """
    column_w = max((w for w, _ in sizes), default=LEAF_W)
    rows_above = [
        max((h for _, h in sizes[row * GRID_COLUMNS:(row + 1) * GRID_COLUMNS]), default=LEAF_H)
        for row in range(index // GRID_COLUMNS)
    ]
    column = index % GRID_COLUMNS
    return SIDE_PAD + column * (column_w + GUTTER), HEADER_BAND + sum(h + GUTTER for h in rows_above)


def free_slot(taken: list[Box], sizes: list[tuple[float, float]], size: tuple[float, float]) -> tuple[float, float]:
    """The first grid slot where a box of ``size`` overlaps none of the ``taken`` boxes."""
    index = 0
    while True:
        x, y = grid_slot(index, sizes)
        candidate = Box(x, y, *size)
        if not any(candidate.overlaps(box) for box in taken):
            return x, y
        index += 1


def parent_size(children: list[Box]) -> tuple[float, float]:
    """The smallest size ≥ the parent minimum that contains every (parent-relative) child box."""
    width = max([PARENT_MIN_W] + [c.x + c.w + SIDE_PAD for c in children])
    height = max([PARENT_MIN_H] + [c.y + c.h + BOTTOM_PAD for c in children])
    return width, height


def row_layout(widths: list[float], start_x: float, gap: float = ROOT_GAP) -> list[float]:
    """Left edges for boxes of ``widths`` laid side by side from ``start_x``."""
    edges, x = [], start_x
    for width in widths:
        edges.append(x)
        x += width + gap
    return edges

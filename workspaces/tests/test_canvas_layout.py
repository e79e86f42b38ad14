"""Card geometry (workspaces/canvas/layout.py) and its agreement with the browser's geometry.js."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from workspaces.canvas import layout
from workspaces.canvas.layout import Box


def test_grid_slots_use_the_widest_child_for_columns_and_the_tallest_per_row_for_rows():
    sizes = [(240, 130), (300, 130), (240, 220), (240, 130), (240, 130)]
    assert layout.grid_slot(0, sizes) == (16, 130)
    assert layout.grid_slot(1, sizes) == (16 + 300 + 14, 130)
    assert layout.grid_slot(2, sizes) == (16, 130 + 130 + 14)
    # the second row's height is its tallest child (220), not the first row's
    assert layout.grid_slot(4, sizes) == (16, 130 + 130 + 14 + 220 + 14)


def test_grid_slot_of_an_empty_parent_is_leaf_sized():
    assert layout.grid_slot(3, []) == (16 + 240 + 14, 130 + 130 + 14)


def test_free_slot_skips_slots_a_kept_child_already_covers():
    taken = [Box(16, 130, 240, 130)]
    assert layout.free_slot(taken, [(240, 130)] * 2, (240, 130)) == (16 + 240 + 14, 130)
    assert layout.free_slot([], [(240, 130)], (240, 130)) == (16, 130)


def test_parent_size_has_a_minimum_and_grows_to_the_furthest_child():
    assert layout.parent_size([]) == (360, 200)
    assert layout.parent_size([Box(16, 130, 240, 130)]) == (360, 130 + 130 + 16)
    assert layout.parent_size([Box(400, 300, 240, 130)]) == (400 + 240 + 16, 300 + 130 + 16)


def test_boxes_that_only_touch_do_not_overlap():
    assert Box(0, 0, 10, 10).overlaps(Box(5, 5, 10, 10))
    assert not Box(0, 0, 10, 10).overlaps(Box(10, 0, 10, 10))
    assert not Box(0, 0, 10, 10).overlaps(Box(0, 10, 10, 10))


def test_row_layout_places_boxes_side_by_side_with_a_gap():
    assert layout.row_layout([240, 400, 240], 100) == [100, 100 + 240 + 80, 100 + 240 + 80 + 400 + 80]
    assert layout.row_layout([], 100) == []


def test_the_browser_uses_the_same_constants():
    source = (Path(settings.BASE_DIR) / "static" / "canvas" / "js" / "geometry.js").read_text()
    declared = dict(re.findall(r"\b([A-Z_]+) = (\d+(?:\.\d+)?)", source))
    for name in ("LEAF_W", "LEAF_H", "PARENT_MIN_W", "PARENT_MIN_H", "SIDE_PAD", "HEADER_BAND", "GUTTER",
                 "BOTTOM_PAD", "GRID_COLUMNS"):
        assert float(declared[name]) == getattr(layout, name), name

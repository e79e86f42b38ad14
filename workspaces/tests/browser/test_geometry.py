"""The canvas's pure geometry (static/canvas/js/geometry.js) run in Chromium, without the platform.

The module is served from the working tree under a made-up origin and its helpers are called
through ``page.evaluate``: hit-testing, the detach fraction, the child grid, parent sizes, the
cycle check and the viewport maths the gestures rely on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workspaces.canvas import layout
from workspaces.tests.browser.conftest import VIEWPORT

GEOMETRY_JS = Path(__file__).resolve().parents[3] / "static" / "canvas" / "js" / "geometry.js"
ORIGIN = "http://geometry.test"
PAGE = '<!doctype html><title>geometry</title><script type="module">import * as geo from "/geometry.js"; window.geo = geo; document.body.dataset.ready = "1";</script><body></body>'


@pytest.fixture
def browser_context_args():
    return {"viewport": VIEWPORT}


@pytest.fixture(autouse=True)
def empty_org():
    """No platform here: nothing to empty."""
    yield


@pytest.fixture
def geo(page):
    def serve(route):
        if route.request.url.endswith("/geometry.js"):
            route.fulfill(status=200, content_type="text/javascript", body=GEOMETRY_JS.read_text())
        else:
            route.fulfill(status=200, content_type="text/html", body=PAGE)

    page.route(f"{ORIGIN}/**", serve)
    page.goto(f"{ORIGIN}/")
    page.wait_for_selector("body[data-ready]", state="attached")

    def call(expression: str, *args):
        return page.evaluate(f"(args) => {expression}", list(args))

    return call


def box(x, y, w, h):
    return {"x": x, "y": y, "w": w, "h": h}


def test_the_constants_are_the_servers(geo):
    for name in ("LEAF_W", "LEAF_H", "PARENT_MIN_W", "PARENT_MIN_H", "SIDE_PAD", "HEADER_BAND", "GUTTER",
                 "BOTTOM_PAD", "GRID_COLUMNS"):
        assert geo(f"geo.{name}") == getattr(layout, name), name
    assert geo("[geo.ZOOM_MIN, geo.ZOOM_MAX, geo.DETACH_FRACTION]") == [0.1, 2, 0.2]


def test_the_drop_target_is_the_topmost_then_deepest_then_smallest_card_under_the_point(geo):
    pick = "geo.dropTarget(args[0], args[1], new Set(args[2]))?.id ?? null"
    big = {"id": "big", "box": box(0, 0, 500, 500), "z": 1, "depth": 0}
    small = {"id": "small", "box": box(100, 100, 200, 200), "z": 1, "depth": 0}
    deep = {"id": "deep", "box": box(100, 100, 300, 300), "z": 1, "depth": 2}
    top = {"id": "top", "box": box(50, 50, 400, 400), "z": 5, "depth": 0}
    point = {"x": 150, "y": 150}
    assert geo(pick, [big, small], point, []) == "small"            # same z and depth: smaller area
    assert geo(pick, [big, small, deep], point, []) == "deep"       # deeper beats smaller
    assert geo(pick, [big, small, deep, top], point, []) == "top"   # higher z beats all
    assert geo(pick, [big, small, deep, top], point, ["top", "deep"]) == "small"  # self/descendants excluded
    assert geo(pick, [big, small], {"x": 600, "y": 10}, []) is None
    assert geo(pick, [small], {"x": 300, "y": 300}, []) == "small"  # the edge counts as inside


def test_a_child_detaches_from_20_percent_outside_its_parent(geo):
    parent = box(0, 0, 400, 300)
    fraction = "geo.outsideFraction(args[0], args[1])"
    detach = "geo.shouldDetach(args[0], args[1])"
    inside = box(10, 10, 100, 100)
    assert geo(fraction, inside, parent) == 0
    just_under = box(319, 10, 100, 100)    # 19 % of it beyond the right edge
    at_boundary = box(320, 10, 100, 100)   # exactly 20 %
    assert geo(fraction, just_under, parent) == pytest.approx(0.19)
    assert geo(detach, just_under, parent) is False
    assert geo(fraction, at_boundary, parent) == pytest.approx(0.2)
    assert geo(detach, at_boundary, parent) is True
    assert geo(fraction, box(1000, 1000, 100, 100), parent) == 1
    corner = box(350, 250, 100, 100)       # half out on each axis: a quarter inside
    assert geo(fraction, corner, parent) == pytest.approx(0.75)


def test_a_child_released_slightly_outside_is_clamped_back_inside(geo):
    clamp = "geo.clampInside(args[0], args[1])"
    parent = {"w": 360, "h": 200}
    assert geo(clamp, box(150, 120, 240, 130), parent) == {"x": 360 - 16 - 240, "y": 200 - 16 - 130}
    assert geo(clamp, box(-30, -5, 240, 130), parent) == {"x": 16, "y": 16}
    assert geo(clamp, box(40, 30, 240, 130), parent) == {"x": 40, "y": 30}  # already inside
    assert geo(clamp, box(90, 20, 500, 300), parent) == {"x": 16, "y": 16}  # bigger than the parent
    # clamped, the parent needs no more room than it has
    inside = geo(clamp, box(150, 120, 240, 130), parent)
    assert geo("geo.parentSize([args[0]])", {**inside, "w": 240, "h": 130}) == {"w": 360, "h": 200}


def test_grid_slots_take_the_widest_child_for_columns_and_the_tallest_in_each_row(geo):
    sizes = [[240, 130], [300, 130], [240, 220], [240, 130], [240, 130]]
    slot = "geo.gridSlot(args[0], args[1])"
    assert geo(slot, 0, sizes) == {"x": 16, "y": 130}
    assert geo(slot, 1, sizes) == {"x": 16 + 300 + 14, "y": 130}
    assert geo(slot, 2, sizes) == {"x": 16, "y": 130 + 130 + 14}
    assert geo(slot, 4, sizes) == {"x": 16, "y": 130 + 130 + 14 + 220 + 14}
    assert geo(slot, 3, []) == {"x": 16 + 240 + 14, "y": 130 + 130 + 14}
    for index in range(5):  # the server's layout gives the same slots
        x, y = layout.grid_slot(index, [tuple(s) for s in sizes])
        assert geo(slot, index, sizes) == {"x": x, "y": y}


def test_the_free_slot_skips_slots_already_taken(geo):
    free = "geo.freeSlot(args[0], args[1], args[2])"
    leaf = [240, 130]
    assert geo(free, [], [leaf], leaf) == {"x": 16, "y": 130}
    assert geo(free, [box(16, 130, 240, 130)], [leaf, leaf], leaf) == {"x": 270, "y": 130}
    taken = [box(16, 130, 240, 130), box(270, 130, 240, 130)]
    assert geo(free, taken, [leaf] * 3, leaf) == {"x": 16, "y": 274}
    # a child dragged somewhere else in the parent frees its slot
    assert geo(free, [box(270, 130, 240, 130)], [leaf, leaf], leaf) == {"x": 16, "y": 130}
    # a box that only touches a taken one does not collide with it
    assert geo(free, [box(16, 260, 240, 130)], [leaf], leaf) == {"x": 16, "y": 130}


def test_a_parent_is_at_least_its_minimum_and_grows_to_its_furthest_child(geo):
    size = "geo.parentSize(args[0])"
    assert geo(size, []) == {"w": 360, "h": 200}
    assert geo(size, [box(16, 130, 240, 130)]) == {"w": 360, "h": 130 + 130 + 16}
    assert geo(size, [box(16, 130, 240, 130), box(270, 130, 240, 130)]) == {"w": 270 + 240 + 16, "h": 276}
    assert geo(size, [box(400, 300, 240, 130)]) == {"w": 400 + 240 + 16, "h": 300 + 130 + 16}


def test_a_card_cannot_become_the_child_of_itself_or_of_its_descendants(geo):
    # root → team → lead → member
    cycle = "geo.wouldCycle(args[0], args[1], new Map(args[2]))"
    tree = [["root", None], ["team", "root"], ["lead", "team"], ["member", "lead"], ["other", None]]
    assert geo(cycle, "root", "member", tree) is True
    assert geo(cycle, "team", "team", tree) is True
    assert geo(cycle, "team", "lead", tree) is True
    assert geo(cycle, "member", "root", tree) is False
    assert geo(cycle, "lead", "other", tree) is False
    assert geo(cycle, "other", None, tree) is False
    # corrupt data with a loop that does not involve the card ends too
    assert geo(cycle, "x", "a", [["a", "b"], ["b", "a"]]) is False


def test_zooming_keeps_the_world_point_under_the_pointer(geo):
    view = {"x": 120, "y": -40, "zoom": 0.8}
    pointer = {"x": 500, "y": 300}
    before = geo("geo.toWorld(args[0], args[1])", view, pointer)
    zoomed = geo("geo.zoomAt(args[0], args[1], args[2])", view, pointer, 1.5)
    assert zoomed["zoom"] == pytest.approx(1.2)
    after = geo("geo.toWorld(args[0], args[1])", zoomed, pointer)
    assert after["x"] == pytest.approx(before["x"]) and after["y"] == pytest.approx(before["y"])
    # clamped at the limits, still anchored
    assert geo("geo.zoomAt(args[0], args[1], args[2]).zoom", view, pointer, 10) == 2
    assert geo("geo.zoomAt(args[0], args[1], args[2]).zoom", view, pointer, 0.001) == 0.1


def test_fit_view_centres_the_box_with_padding_and_clamped_zoom(geo):
    screen = {"w": 1280, "h": 800}
    fit = "geo.fitView(args[0], args[1], args[2])"
    view = geo(fit, box(1000, 500, 1600, 400), screen, {"padding": 0.2})
    assert view["zoom"] == pytest.approx(1280 * 0.8 / 1600)
    centre = geo("geo.toWorld(args[0], args[1])", view, {"x": 640, "y": 400})
    assert centre["x"] == pytest.approx(1800) and centre["y"] == pytest.approx(700)
    # a small box is not blown up past maxZoom
    assert geo(fit, box(0, 0, 100, 100), screen, {"maxZoom": 1})["zoom"] == 1
    assert geo(fit, box(0, 0, 100_000, 100), screen, {})["zoom"] == 0.1
    assert geo("geo.bounds(args[0])", [box(10, 20, 100, 50), box(-30, 60, 20, 100)]) == box(-30, 20, 140, 140)
    assert geo("geo.bounds([])") is None


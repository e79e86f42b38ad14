"""Scale of the canvas (issue 12 item 9): a 200-workspace org, 4 levels deep, on the whole platform.

Starts the platform as ``make run`` does (``molecule_site.launcher`` under a temporary
MOLECULE_HOME: web + worker + beat, embedded PostgreSQL and Redis), seeds the org straight into
its database (``--seed``, a child process with the platform's environment: rows, the positions
the server lays out, recent load samples in Redis), and measures:

- server: ``GET /`` and ``GET /canvas/cards/`` for the logged-in operator over HTTP, next to the
  floor of the same run — ``GET /accounts/login/``, a small page through the same middleware and
  template engine — interleaved so both see the same machine; plus the SQL queries each render
  makes (counted in the seeding process with Django's test client);
- browser (Debian's Chromium through Playwright): load to ready (``body[data-canvas-ready]``),
  frames per second while the wheel pans the whole org (zoomed to fit, every card drawn), and the
  time to apply 100 ``WORKSPACE_HEARTBEAT``/``TASK_UPDATED`` frames — dispatched in the page to
  the live part's handler, and sent for real as 100 heartbeats through the platform until the
  page shows the last one.

    .venv/bin/python bench/canvas_render.py [--workspaces 200] [--repeat 15] [--json out.json]

Exit status 0 when the server renders the page in under a second (the goal), 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ADMIN = "bench-admin-token"
OPERATOR = ("operator", "bench-canvas-password-1")
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
PLATFORM_ENV = {
    "ADMIN_TOKEN": ADMIN,
    "RATE_LIMIT": "100000000",
    "LIVENESS_TTL_SECONDS": "3600",  # nothing goes offline while the bench runs
    "MOLECULE_PROVISIONER": "none",
    "MOLECULE_ADMIN_USER": OPERATOR[0],
    "MOLECULE_ADMIN_PASSWORD": OPERATOR[1],
}
GOAL_SECONDS = 1.0
FANOUT = (2, 4, 4)  # roots, then children per node at depths 1 and 2; the rest are depth-3 leaves
SKILLS = ["Web search", "Summarise", "Code review", "Write tests", "Plan", "Deploy", "Triage", "Report"]


# --- the seeding child process (Django set up against the platform's database) ----------------------

def seed(count: int) -> dict:
    """Runs in a child process with the platform's environment; Django is set up here, not in the
    orchestrator (which only starts and drives processes), hence the imports below."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from molecule_site.redis_client import get_redis
    from registry.redis_keys import LOAD_SAMPLES, LOAD_TTL_SECONDS, load_key
    from workspaces.canvas.cards import card_forest
    from workspaces.models import CanvasLayout, Workspace

    rng = random.Random(12)
    rows: list[Workspace] = []

    def add(name, parent, depth):
        roll = rng.random()
        status = "online" if roll < 0.85 else "degraded" if roll < 0.9 else "provisioning" if roll < 0.95 else "offline"
        busy = rng.random() < 0.3
        workspace = Workspace(
            name=name, role=f"Depth {depth} role with a sentence long enough to wrap onto a second line",
            parent=parent, tier=rng.randint(1, 4), runtime=rng.choice(["echo", "langgraph", "external"]), status=status,
            active_tasks=rng.randint(1, 3) if busy else 0, current_task="Working through the backlog" if busy else "",
            last_sample_error="timeout calling the model" if status == "degraded" else "",
            agent_card={"name": name, "skills": [{"id": s.lower(), "name": s} for s in rng.sample(SKILLS, 3)]},
        )
        rows.append(workspace)
        return workspace

    roots = [add(f"Org {i + 1}", None, 0) for i in range(FANOUT[0])]
    level = roots
    for depth, per in enumerate(FANOUT[1:], start=1):
        level = [add(f"{parent.name}.{j + 1}", parent, depth) for parent in level for j in range(per)]
    leaves_needed = count - len(rows)
    for n in range(leaves_needed):
        parent = level[n % len(level)]
        add(f"{parent.name}.{n // len(level) + 1}", parent, 3)
    Workspace.objects.bulk_create(rows)
    CanvasLayout.objects.bulk_create(
        [CanvasLayout(workspace=roots[i], x=100 + i * 2600, y=100) for i in range(len(roots))]
        + [CanvasLayout(workspace=w, x=0, y=0) for w in rows[len(roots):]]
    )
    # Store the positions the server lays out, as an import does: the page has nothing to save.
    layouts = {layout.workspace_id: layout for layout in CanvasLayout.objects.all()}
    for root in card_forest():
        for card in root.walk():
            layouts[card.workspace.id].x, layouts[card.workspace.id].y = card.abs_x, card.abs_y
    CanvasLayout.objects.bulk_update(list(layouts.values()), ["x", "y"])
    now = int(time.time())
    pipe = get_redis().pipeline(transaction=False)
    for workspace in rows:
        key = load_key(workspace.id)
        pipe.rpush(key, *[f"{now - 30 * i}:{rng.randint(0, 3)}" for i in range(LOAD_SAMPLES)])
        pipe.expire(key, LOAD_TTL_SECONDS)
    pipe.execute()

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=OPERATOR[0]))
    queries = {}
    leaf = rows[-1]
    for path in ("/", "/canvas/cards/", f"/canvas/cards/{leaf.id}/", "/canvas/edges/"):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, HTTP_X_MOLECULE_FRAGMENT="1")
        assert response.status_code == 200, (path, response.status_code)
        queries[path.replace(str(leaf.id), "<id>")] = len(captured)
    depth = max(len(w.name.split(".")) for w in rows)
    return {"workspaces": len(rows), "depth": depth, "queries": queries,
            "ids": [str(w.id) for w in rows], "leaf": str(leaf.id)}


# --- the orchestrator --------------------------------------------------------------------------

def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 1),
            "p90_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000, 1),
            "min_ms": round(ordered[0] * 1000, 1), "n": len(ordered)}


def login(client) -> None:
    page = client.get("/accounts/login/")
    token = client.cookies.get("csrftoken")
    assert page.status_code == 200 and token, "no login form"
    answer = client.post("/accounts/login/", data={"username": OPERATOR[0], "password": OPERATOR[1],
                                                   "csrfmiddlewaretoken": token, "next": "/"},
                         headers={"Referer": f"{client.base_url}/accounts/login/"})
    assert answer.status_code == 302 and "sessionid" in client.cookies, f"login failed: {answer.status_code}"


def measure_server(client, anonymous, repeat: int, leaf: str) -> dict:
    """The floor is the login form for a visitor (a logged-in operator is sent on to /). ``card``
    is the fragment the live part fetches for one changed card."""
    paths = {"page": (client, "/"), "cards": (client, "/canvas/cards/"), "card": (client, f"/canvas/cards/{leaf}/"),
             "floor": (anonymous, "/accounts/login/")}
    for http, path in paths.values():  # warm: templates compiled, pools filled, in both web processes
        for _ in range(4):
            http.get(path)
    timings = {name: [] for name in paths}
    sizes = {}
    for _ in range(repeat):
        for name, (http, path) in paths.items():
            started = time.perf_counter()
            response = http.get(path, headers={"X-Molecule-Fragment": "1"} if name in ("cards", "card") else {})
            timings[name].append(time.perf_counter() - started)
            assert response.status_code == 200, (path, response.status_code)
            sizes[name] = len(response.content)
    result = {name: {**summary(samples), "bytes": sizes[name]} for name, samples in timings.items()}
    for name in ("page", "cards", "card"):
        result[name]["ratio_to_floor"] = round(result[name]["median_ms"] / result["floor"]["median_ms"], 1)
    return result


READY_PROBE = """
(() => {
  const seen = () => {
    if (document.body && document.body.dataset.canvasReady && !window.__readyAt) window.__readyAt = performance.now();
  };
  new MutationObserver(seen).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-canvas-ready"] });
})();
"""

PAN = """async ({ seconds }) => {
  // Frames drawn while the wheel pans (events sent by Playwright, as a trackpad would).
  const times = [];
  let running = true;
  const tick = (t) => { times.push(t); if (running) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.__stopPan = () => { running = false; return times; };
}"""

EVENTS = """async ({ ids }) => {
  const live = window.moleculeCanvas.live;
  const frames = [];
  for (let i = 0; i < 100; i += 1) {
    const id = ids[i % ids.length];
    frames.push(i % 2
      ? { event: "TASK_UPDATED", workspace_id: id, timestamp: new Date().toISOString(), payload: { current_task: `Task ${i}`, active_tasks: 1 + (i % 3) } }
      : { event: "WORKSPACE_HEARTBEAT", workspace_id: id, timestamp: new Date().toISOString(), payload: { active_tasks: 2 + (i % 4), uptime_seconds: i } });
  }
  const started = performance.now();
  for (const frame of frames) live.handle(frame);
  const handled = performance.now();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return { handle_ms: handled - started, to_next_frame_ms: performance.now() - started };
}"""


def measure_browser(url: str, cookies: list[dict], ids: list[str], admin_client) -> dict:
    result = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])
        context = browser.new_context(base_url=url, viewport=VIEWPORT)
        context.add_cookies(cookies)
        context.add_init_script(READY_PROBE)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        loads = []
        for _ in range(4):
            page.goto("/")
            try:
                page.wait_for_selector("body[data-canvas-ready]", state="attached", timeout=60_000)
            except PlaywrightTimeout:
                raise SystemExit(f"the canvas never got ready; page errors: {errors}") from None
            page.wait_for_selector("#ws-pill.is-live", timeout=30_000)
            timing = page.evaluate("""() => ({ ready: window.__readyAt,
                dcl: performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
                cards: document.querySelectorAll(".ws-node").length })""")
            loads.append(timing)
        loads = loads[1:]  # the first load fills the browser's cache of the static files
        result["cards_on_page"] = loads[-1]["cards"]
        result["load_to_ready_ms"] = round(statistics.median(t["ready"] for t in loads), 1)
        result["dom_content_loaded_ms"] = round(statistics.median(t["dcl"] for t in loads), 1)

        page.click('[data-action="zoom-fit"]')
        page.wait_for_timeout(500)
        page.mouse.move(640, 420)
        pans = []
        for direction in (1, -1, 1):
            page.evaluate(PAN, {"seconds": 2})
            started = time.monotonic()
            while time.monotonic() - started < 2:
                page.mouse.wheel(12 * direction, 6 * direction)
            times = page.evaluate("() => window.__stopPan()")
            gaps = [b - a for a, b in itertools.pairwise(times)]
            pans.append({"fps": round((len(times) - 1) / ((times[-1] - times[0]) / 1000), 1),
                         "longest_frame_ms": round(max(gaps), 1), "frames": len(times)})
        result["pan"] = {"fps_median": statistics.median(p["fps"] for p in pans),
                         "longest_frame_ms": max(p["longest_frame_ms"] for p in pans), "runs": pans}

        synthetic = [page.evaluate(EVENTS, {"ids": random.Random(n).sample(ids, 40)}) for n in range(5)]
        result["events_100_synthetic"] = {
            "handle_ms_median": round(statistics.median(s["handle_ms"] for s in synthetic), 2),
            "to_next_frame_ms_median": round(statistics.median(s["to_next_frame_ms"] for s in synthetic), 1),
        }

        # 100 real heartbeats through the platform, the last one naming a task the page must show.
        targets = random.Random(7).sample(ids, 50)
        marker = f"bench marker {time.time():.0f}"
        started = time.monotonic()
        for n in range(100):
            last = n == 99
            body = {"workspace_id": targets[n % 50], "active_tasks": 1 + n % 3,
                    "current_task": marker if last else f"Beat {n}"}
            response = admin_client.post("/registry/heartbeat", json=body)
            assert response.status_code == 200, response.text
        sent = time.monotonic()
        page.wait_for_function(
            "([id, text]) => document.querySelector(`.ws-node[data-workspace-id='${id}'] .ws-task-text`)?.textContent === text",
            arg=[targets[99 % 50], marker], timeout=30_000)
        shown = time.monotonic()
        result["events_100_real"] = {"send_ms": round((sent - started) * 1000), "send_to_shown_ms": round((shown - started) * 1000),
                                     "after_last_sent_ms": round((shown - sent) * 1000)}
        result["page_errors"] = errors
        browser.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per path")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.seed:
        print(json.dumps(seed(args.seed)))
        return 0

    from django.conf import settings

    from load import embedded_urls, wait_for_health
    from molecule_site.tests.launch import Launch, free_port

    settings.configure(BASE_DIR=ROOT)  # all Launch reads; this process never sets Django up
    data = {"command": shlex.join([sys.executable, *sys.argv]),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="molecule-canvas-bench-") as work, ExitStack() as stack:
        home = Path(work) / "home"
        print("starting the platform…", flush=True)
        launch = Launch(home, free_port(), **PLATFORM_ENV)
        stack.callback(launch.stop)
        launch.wait_for("celery@", "beat: Starting", timeout=180)
        wait_for_health(launch)
        urls = embedded_urls(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOLECULE_")}
        env.update(PLATFORM_ENV, MOLECULE_HOME=str(home), DJANGO_SETTINGS_MODULE="molecule_site.settings", **urls)
        print(f"seeding {args.workspaces} workspaces…", flush=True)
        out = subprocess.run([sys.executable, __file__, "--seed", str(args.workspaces)], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=False)
        if out.returncode:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 2
        seeded = json.loads(out.stdout.strip().splitlines()[-1])
        data["org"] = {"workspaces": seeded["workspaces"], "levels": seeded["depth"], "queries": seeded["queries"]}
        with httpx.Client(base_url=launch.url, timeout=60) as client, httpx.Client(base_url=launch.url, timeout=60) as anonymous, \
                httpx.Client(base_url=launch.url, timeout=60, headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
            login(client)
            print("measuring the server…", flush=True)
            data["server"] = measure_server(client, anonymous, args.repeat, seeded["leaf"])
            print("measuring in Chromium…", flush=True)
            cookies = [{"name": c.name, "value": c.value, "url": launch.url} for c in client.cookies.jar]
            data["browser"] = measure_browser(launch.url, cookies, seeded["ids"], admin)
    print(report(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0 if data["server"]["page"]["median_ms"] < GOAL_SECONDS * 1000 else 1


def report(data: dict) -> str:
    org, server, browser = data["org"], data["server"], data["browser"]
    lines = [
        f"org: {org['workspaces']} workspaces, {org['levels']} levels; SQL queries per render: "
        + ", ".join(f"{path} {n}" for path, n in org["queries"].items()),
        "server (HTTP, logged-in operator), median / p90:",
    ]
    for name, label in (("page", "GET /"), ("cards", "GET /canvas/cards/"), ("card", "GET /canvas/cards/<id>/"),
                        ("floor", "floor GET /accounts/login/")):
        row = server[name]
        ratio = f", {row['ratio_to_floor']}× the floor" if "ratio_to_floor" in row else ""
        lines.append(f"  {label:28} {row['median_ms']:7.1f} / {row['p90_ms']:7.1f} ms, {row['bytes'] / 1024:.1f} KiB{ratio}")
    pan = browser["pan"]
    synthetic, real = browser["events_100_synthetic"], browser["events_100_real"]
    lines += [
        (f"browser: {browser['cards_on_page']} cards; load to ready {browser['load_to_ready_ms']} ms "
         f"(DOMContentLoaded {browser['dom_content_loaded_ms']} ms)"),
        f"  wheel pan, zoomed to fit: {pan['fps_median']} fps median, longest frame {pan['longest_frame_ms']} ms",
        (f"  100 events dispatched in the page: handled in {synthetic['handle_ms_median']} ms, "
         f"next frame after {synthetic['to_next_frame_ms_median']} ms"),
        (f"  100 real heartbeats: sent in {real['send_ms']} ms, the last shown "
         f"{real['after_last_sent_ms']} ms after it was sent"),
    ]
    if browser["page_errors"]:
        lines.append(f"  PAGE ERRORS: {browser['page_errors']}")
    verdict = "met" if server["page"]["median_ms"] < GOAL_SECONDS * 1000 else "NOT MET"
    lines.append(f"goal: GET / under {GOAL_SECONDS:g} s server-side: {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

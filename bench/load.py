"""Load benchmark of the whole platform, every figure next to a raw-ASGI floor run in the same invocation.

Starts the platform as ``make run`` does (``molecule_site.launcher``: web + Celery worker + beat,
embedded PostgreSQL 16 and Redis under a temporary MOLECULE_HOME), drives it with ``wrk`` (a C
load generator: a Python client would compete for the same 2 cores), and measures:

- heartbeat: ``POST /registry/heartbeat`` over N workspaces at 16 and 64 connections, platform
  vs ``bench/floor.py`` (the same SQL and Redis work behind a raw ASGI app, uvicorn, 2 workers),
  with non-2xx/5xx counts and PostgreSQL client connections sampled every 0.25 s;
- health: ``GET /health`` at 32 connections, platform vs the floor's bare ASGI health;
- a2a: ``message/send`` to an echo agent (``bench/echo_agent.py``) directly and through
  ``POST /workspaces/:id/a2a`` at 1 and 8 connections, reported as the latency the proxy adds;
  with ``--compare-tracing``, this phase alone once per tracing mode (``TRACING_MODES``: off —
  the floor —, the platform's spans only, and the default where the agent exports its own spans
  to the platform's OTLP receiver too), each on a platform started afresh, reported as ratios to
  the floor with the spans each mode stored;
- ws: event fan-out to M ``/ws`` clients (``bench/ws_clients.py``, a process of its own).

    .venv/bin/python bench/load.py [--seconds N] [--workspaces 200] [--ws-clients 1000]
                                   [--only heartbeat,a2a,health,ws] [--json out.json]
    .venv/bin/python bench/load.py --compare-tracing [--seconds N] [--json out.json]

Each run starts once the machine is idle (or says that it was not). Everything listens on and
talks to 127.0.0.1 only, every run is bounded in time, and every process started here is stopped
at the end, on Ctrl-C and on errors too. Exit status: 0, 1 if a phase could not be measured, 2
without wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from molecule_site.tests.launch import Launch, free_port  # noqa: E402 - needs sys.path above

ADMIN = "bench-admin-token"
# ADMIN_TOKEN turns dev mode's fail-open auth and its limiter bypass off, so the rate limiter runs
# (its Redis counter is part of every request) with a limit no run reaches. MOLECULE_ENV=development
# lets the A2A proxy call the loopback echo agent. A long liveness TTL keeps every workspace online
# between runs, so no sweep flips 200 workspaces offline (and fans 200 events out) mid-measurement.
PLATFORM_ENV = {
    "MOLECULE_ENV": "development",
    "ADMIN_TOKEN": ADMIN,
    "RATE_LIMIT": "100000000",
    "LIVENESS_TTL_SECONDS": "3600",
}
PHASES = ("heartbeat", "health", "a2a", "ws")
HEARTBEAT_RUNS = ((16, 15), (64, 20))  # (connections, default seconds)
HEALTH_CONNECTIONS, HEALTH_SECONDS = 32, 8
A2A_CONNECTIONS, A2A_SECONDS = (1, 8), 6
WS_EVENTS = 5
SAMPLE_SECONDS = 0.25
# --compare-tracing: the a2a phase on a platform started afresh for each mode, in this order; the
# first is the floor. (name, the platform's environment, whether the echo agent traces itself.)
TRACING_MODES = (
    ("off", {"OTEL_SDK_DISABLED": "true"}, False),    # no span anywhere
    ("proxy", {"OTEL_SDK_DISABLED": "false"}, False),  # the platform's a2a.proxy spans only
    ("on", {"OTEL_SDK_DISABLED": "false"}, True),      # the default: those, and the agent's to the receiver
)
TRACING_DESCRIPTIONS = {
    "off": "OTEL_SDK_DISABLED=true, no span anywhere (the floor)",
    "proxy": "the platform's a2a.proxy spans, through its BatchSpanProcessor into trace_spans; the agent untraced",
    "on": "the default: those, and the echo agent's a2a.task + chat spans (as a runtime's) to POST /otlp/v1/traces",
}
SPAN_SETTLE_SECONDS, SPAN_SETTLE_MAX_SECONDS = 6.0, 40.0  # longer than the SDK's 5 s batch delay
AFTER_SECONDS = 5.0
QUIET_CPU_PERCENT, QUIET_MAX_SECONDS = 10.0, 10.0
WRK_TIMEOUT = "30s"  # wrk's default 2 s would drop the slow tail from the percentiles
FLOOR_APP_NAME = "bench-floor"
SAMPLER_APP_NAME = "bench-sampler"
A2A_BODY = json.dumps({
    "jsonrpc": "2.0", "id": "1", "method": "message/send",
    "params": {"message": {"role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "hello"}]}},
})
# The platform's documented connection bound, when its settings have one: the web processes'
# WEB_CONCURRENCY × (DB_POOL_MAX + DB_ASYNC_POOL_MAX), and the whole platform's figure from
# molecule_site.capacity (web, worker and the rest), which is what the embedded server is sized for.
BOUND_SETTINGS = ("WEB_CONCURRENCY", "DB_POOL_MAX", "DB_ASYNC_POOL_MAX")
SETTINGS_PROBE = """
import json, sys, django
django.setup()
from django.conf import settings
values = {name: getattr(settings, name, None) for name in sys.argv[1:]}
try:
    from molecule_site import capacity
    values["platform_bound"] = capacity.budget().connection_bound
except (ImportError, AttributeError):
    values["platform_bound"] = None
print(json.dumps(values))
"""


class PhaseError(RuntimeError):
    """A measurement that could not be made; reported, and the other phases still run."""


class _ClientProcess:
    """One ``bench/ws_clients.py`` process and its line protocol (stdin commands, stdout JSON)."""

    def __init__(self, stack: ExitStack, url: str, count: int):
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "ws_clients.py"), url, str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        stack.callback(stop_process, self.process)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def answer(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return json.loads(self.lines.get(timeout=0.5))
            except queue.Empty:
                if self.process.poll() is not None:
                    raise PhaseError(f"the ws clients exited with code {self.process.returncode}") from None
        raise PhaseError(f"the ws clients were silent for {timeout:.0f} s")

    def command(self, text: str) -> None:
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()


# --- processes ------------------------------------------------------------------------------------

def start_server(stack: ExitStack, name: str, command: list[str], env: dict, log_dir: Path) -> subprocess.Popen:
    """A child in its own session (Ctrl-C reaches only us; we stop it), output to ``<name>.log``."""
    log = open(log_dir / f"{name}.log", "w")
    stack.callback(log.close)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stack.callback(stop_process, process)
    return process


def stop_process(process: subprocess.Popen, grace: float = 15) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: uvicorn's workers go with it
        process.wait()


def wait_for_log(process: subprocess.Popen, log: Path, pattern: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text().count(pattern) < count:
        if process.poll() is not None:
            raise PhaseError(f"{log.stem} exited with code {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise PhaseError(f"{log.stem} not ready after {timeout:.0f} s:\n{tail(log)}")
        time.sleep(0.1)


def wait_for_health(launch: Launch, timeout: float = 120) -> None:
    """Whatever web server the launcher runs, it is up once ``/health`` answers."""
    deadline = time.monotonic() + timeout
    while True:
        if launch.process.poll() is not None:
            raise RuntimeError(f"the platform exited early:\n{launch.output[-3000:]}")
        try:
            if httpx.get(f"{launch.url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the platform did not answer /health within {timeout:.0f} s:\n{launch.output[-3000:]}")
        time.sleep(0.5)


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text().splitlines()[-lines:])


def embedded_urls(home: Path) -> dict[str, str]:
    """DATABASE_URL / REDIS_URL of the servers the launcher started (``embedded start`` reuses them)."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith("MOLECULE_")}
    env["MOLECULE_HOME"] = str(home)
    out = subprocess.run([sys.executable, "-m", "molecule_site.embedded", "start"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    urls = dict(line.split("=", 1) for line in out.splitlines() if line.startswith(("DATABASE_URL=", "REDIS_URL=")))
    if set(urls) != {"DATABASE_URL", "REDIS_URL"}:
        raise RuntimeError(f"could not read the embedded servers' URLs from:\n{out}")
    return urls


def platform_env(home: Path, urls: dict[str, str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the launched platform has (as ``Launch`` builds it), with its servers' URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLECULE_")}
    env.update(PLATFORM_ENV, **(overrides or {}), MOLECULE_HOME=str(home), DJANGO_SETTINGS_MODULE="molecule_site.settings",
               **urls)
    return env


def documented_bound(env: dict[str, str]) -> dict:
    """BOUND_SETTINGS as the platform's settings have them, and the bounds they give (None: n/a)."""
    out = subprocess.run([sys.executable, "-c", SETTINGS_PROBE, *BOUND_SETTINGS], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    values = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {}
    web, pool, async_pool = (values.get(name) for name in BOUND_SETTINGS)
    values["web_bound"] = web * (pool + (async_pool or 0)) if web and pool else None
    return values


# --- PostgreSQL connection sampler -------------------------------------------------------------------

class ConnectionSampler:
    """Counts client backends on the platform's database every 0.25 s, the floor's apart."""

    QUERY = f"""
        SELECT count(*) FILTER (WHERE application_name <> '{FLOOR_APP_NAME}'),
               count(*) FILTER (WHERE application_name = '{FLOOR_APP_NAME}')
        FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
    """

    def __init__(self, database_url: str):
        # Connected once, up front: a platform out of connections must not starve the sampler.
        self.conn = psycopg.connect(database_url, autocommit=True, application_name=SAMPLER_APP_NAME)
        self.max_connections = int(self.conn.execute("SHOW max_connections").fetchone()[0])
        self.samples: list[tuple[float, int, int]] = []
        self.error: str | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(SAMPLE_SECONDS):
            try:
                platform, floor = self.conn.execute(self.QUERY).fetchone()
            except psycopg.Error as exc:  # the server went away (the platform stopped): no more samples
                self.error = str(exc).strip()
                return
            self.samples.append((time.monotonic(), platform, floor))

    def window(self, start: float, end: float, after: float, floor: bool) -> dict:
        column = 2 if floor else 1
        during = [s[column] for s in self.samples if start <= s[0] <= end]
        later = [s[column] for s in self.samples if s[0] <= after]
        return {
            "max_during": max(during, default=None),
            "after_5s": later[-1] if later else None,
            "series": [[round(s[0] - start, 2), s[column]] for s in self.samples if start <= s[0] <= after],
        }

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.conn.close()


# --- an idle machine before each run ------------------------------------------------------------------

class IdleWatch:
    """Before each run, waits (at most QUIET_MAX_SECONDS) until the machine is idle, so what an earlier
    run left behind is not billed to the next one. A machine still busy then is reported with the run:
    how much of it was the platform's own processes (launcher tree, its PostgreSQL and Redis), and the
    busiest processes."""

    INTERVAL = 0.5

    def __init__(self, launch: Launch, home: Path, redis_url: str):
        self.launch = launch
        self.markers = (f"-D {(home / 'postgres').resolve()}", redis_url.split("//", 1)[1].split("/", 1)[0])

    def _platform_pids(self) -> set[int]:
        launcher = psutil.Process(self.launch.process.pid)
        found = [launcher, *launcher.children(recursive=True)]
        for process in psutil.process_iter(["cmdline"]):
            if any(marker in " ".join(process.info["cmdline"] or ()) for marker in self.markers):
                found += [process, *process.children()]  # the postmaster's children are its backends
        return {process.pid for process in found}

    @staticmethod
    def _cpu_seconds() -> dict[int, tuple[float, str]]:
        seen = {}
        for process in psutil.process_iter(["cpu_times", "name", "cmdline"]):
            times, cmdline = process.info["cpu_times"], process.info["cmdline"] or [process.info["name"] or "?"]
            if times is not None:
                name = " ".join(" ".join([Path(cmdline[0]).name, *cmdline[1:]]).split())  # PostgreSQL pads its titles
                seen[process.pid] = (times.user + times.system, name[:60])
        return seen

    def wait(self) -> dict:
        started = time.monotonic()
        while True:
            platform_pids, before = self._platform_pids(), self._cpu_seconds()
            total = psutil.cpu_percent(interval=self.INTERVAL)
            after = self._cpu_seconds()
            share = 100 / self.INTERVAL / (os.cpu_count() or 1)  # CPU seconds in the interval -> % of the machine
            used = {pid: (after[pid][0] - before[pid][0]) * share for pid in after.keys() & before.keys()}
            if total <= QUIET_CPU_PERCENT or time.monotonic() - started >= QUIET_MAX_SECONDS:
                busiest = sorted(used, key=used.get, reverse=True)[:3]
                return {"waited_s": round(time.monotonic() - started, 1), "cpu_percent": total,
                        "busy": total > QUIET_CPU_PERCENT,
                        "platform_cpu_percent": round(sum(used[pid] for pid in used.keys() & platform_pids), 1),
                        "busiest": [[after[pid][1], round(used[pid], 1)] for pid in busiest]}


class CpuMeter:
    """CPU seconds spent during a run by the platform's processes, in groups (its web processes,
    PostgreSQL, Redis, the Celery worker and beat, the launcher), and by the processes given (the
    echo agent): on 2 cores shared with other jobs, CPU per call is steadier than throughput."""

    GROUPS = (("web", "molecule_site.serve"), ("postgres", "postgres"), ("redis", "redis-server"),
              ("celery", "celery"))

    def __init__(self, idle: IdleWatch, others: dict[str, subprocess.Popen]):
        self.idle, self.others = idle, others

    def _group(self, cmdline: str) -> str:
        return next((group for group, marker in self.GROUPS if marker in cmdline), "launcher")

    def snapshot(self) -> dict[int, tuple[str, float]]:
        seen = {}
        pids = {pid: None for pid in self.idle._platform_pids()}
        for name, process in self.others.items():
            parent = psutil.Process(process.pid)
            pids.update({child.pid: name for child in [parent, *parent.children(recursive=True)]})
        for pid, group in pids.items():
            try:
                process = psutil.Process(pid)
                times = process.cpu_times()
                seen[pid] = (group or self._group(" ".join(process.cmdline())), times.user + times.system)
            except psutil.Error:  # gone meanwhile
                continue
        return seen

    @staticmethod
    def per_call(before: dict, after: dict, calls: int) -> dict[str, float]:
        """CPU ms per call by group; a process that started during the run counts whole."""
        spent: dict[str, float] = {}
        for pid, (group, seconds) in after.items():
            spent[group] = spent.get(group, 0.0) + seconds - (before[pid][1] if pid in before else 0.0)
        return {group: round(seconds * 1000 / calls, 3) for group, seconds in sorted(spent.items())} if calls else {}


# --- wrk ------------------------------------------------------------------------------------------

def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal of ASCII text is a valid Lua string literal


def write_script(path: Path, body: str) -> Path:
    path.write_text(body + "\n" + (BENCH / "wrk_stats.lua").read_text())
    return path


def heartbeat_script(path: Path, workspaces: list[tuple[str, str]]) -> Path:
    """Each request is the next workspace's beat, with its own token; threads start at random places."""
    rows = ",\n".join(f"  {{{lua_string(wid)}, {lua_string(token)}}}" for wid, token in workspaces)
    return write_script(path, f"""
local beats = {{
{rows}
}}
local requests = {{}}
local n = 0

function init(args)
   for i, beat in ipairs(beats) do
      requests[i] = wrk.format("POST", "/registry/heartbeat",
         {{["Authorization"] = "Bearer " .. beat[2], ["Content-Type"] = "application/json"}},
         '{{"workspace_id":"' .. beat[1] .. '","error_rate":0,"active_tasks":0,"uptime_seconds":60,"current_task":""}}')
   end
   n = math.random(#requests)
end

function request()
   n = n % #requests + 1
   return requests[n]
end
""")


def post_script(path: Path, body: str, headers: dict[str, str] | None = None) -> Path:
    extra = "".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}\n" for k, v in (headers or {}).items())
    return write_script(path, f"""
wrk.method = "POST"
wrk.body = {lua_string(body)}
wrk.headers["Content-Type"] = "application/json"
{extra}""")


def timed_wrk(url: str, script: Path, connections: int, seconds: int) -> tuple[dict, tuple[float, float]]:
    """One wrk run (one thread: it leaves more of the 2 cores to the server), figures in ms, and
    the monotonic instants it started and ended."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT, "--latency",
               "-s", str(script), url]
    start = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    end = time.monotonic()
    match = re.search(r"^WRK_JSON (.*)$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or match is None:
        raise PhaseError(f"wrk failed ({out.returncode}): {out.stdout}{out.stderr}")
    raw = json.loads(match.group(1))
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    elapsed = raw["duration_us"] / 1e6
    latency = {k: v / 1000 for k, v in raw["latency_us"].items()}
    return {
        "url": url, "connections": connections, "seconds": round(elapsed, 2),
        "requests": raw["requests"], "rps": round(raw["requests"] / elapsed, 1),
        **{f"{k}_ms": round(v, 2) for k, v in latency.items()},
        "statuses": statuses,
        "non_2xx": sum(n for status, n in statuses.items() if not 200 <= status < 300),
        "5xx": sum(n for status, n in statuses.items() if status >= 500),
        "socket_errors": {k: v for k, v in raw["errors"].items() if k != "status"},
        "error_bodies": raw["error_bodies"],
        "wrk_output": out.stdout.replace(match.group(0), "").strip(),
    }, (start, end)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def compare(platform: dict, floor: dict) -> dict:
    """platform / floor for throughput and latency."""
    return {key: ratio(platform.get(key), floor.get(key)) for key in ("rps", "p50_ms", "p99_ms")}


# --- platform API ---------------------------------------------------------------------------------

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
SETUP_ATTEMPTS = 10


async def setup_post(api: httpx.AsyncClient, path: str, expected: int, **kwargs) -> dict:
    """A setup request (not a measurement): a 503 "busy" is retried after its ``retry_after``."""
    for _ in range(SETUP_ATTEMPTS):
        response = await api.post(path, **kwargs)
        if response.status_code != 503:
            break
        try:
            await asyncio.sleep(float(response.json().get("retry_after", 1)))
        except ValueError:  # not the platform's JSON 503
            await asyncio.sleep(1)
    if response.status_code != expected:
        raise PhaseError(f"setup: POST {path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


async def create_external(api: httpx.AsyncClient, name: str, url: str) -> tuple[str, str]:
    """An external workspace registered at ``url``: (id, its token)."""
    created = await setup_post(api, "/workspaces", 201, headers=ADMIN_HEADERS, json={"name": name, "external": True})
    workspace_id, token = created["id"], created["connection"]["auth_token"]
    await setup_post(api, "/registry/register", 200, headers={"Authorization": f"Bearer {token}"},
                     json={"id": workspace_id, "url": url, "agent_card": {"name": name}})
    return workspace_id, token


async def create_workspaces(base: str, count: int) -> list[tuple[str, str]]:
    gate = asyncio.Semaphore(4)  # setup, not a measurement: a few at a time

    async def one(n: int):
        async with gate:
            return await create_external(api, f"bench-{n}", "http://localhost:9/a2a")

    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        return await asyncio.gather(*(one(n) for n in range(count)))


# --- phases ---------------------------------------------------------------------------------------

class Bench:
    """The phases, in an order that keeps them apart: the platform's runs, then the floor's (started
    only now, so its connections never count against the platform's), then a2a and ws."""

    def __init__(self, args, stack: ExitStack, work: Path, launch: Launch, env: dict, sampler: ConnectionSampler,
                 idle: IdleWatch, traced_agent: bool = False, count_spans: bool = False):
        self.args, self.stack, self.work, self.launch, self.env = args, stack, work, launch, env
        self.sampler, self.idle = sampler, idle
        self.traced_agent, self.count_spans = traced_agent, count_spans
        self.results: dict = {}
        self.errors: dict[str, str] = {}

    def seconds(self, default: int) -> int:
        return self.args.seconds or default

    def check_platform(self) -> None:
        """A platform that stopped under load is a finding: say so with what its launcher said."""
        code = self.launch.process.poll()
        if code is not None:
            said = [line.rstrip() for line in self.launch.lines if line.startswith("launcher:")]
            self.results["platform_stopped"] = {"exit_code": code, "launcher_lines": said,
                                                "log_tail": [line.rstrip() for line in self.launch.lines[-40:]]}
            raise PhaseError(f"the platform stopped (launcher exit code {code}): {' / '.join(said)}")

    def wrk(self, url: str, script: Path, connections: int, seconds: int,
            cpu: CpuMeter | None = None) -> tuple[dict, tuple[float, float]]:
        """Every run: on a live platform, on an idle machine (or saying it was not); with ``cpu``,
        the CPU its processes spent per request."""
        self.check_platform()
        idle = self.idle.wait()
        before = cpu.snapshot() if cpu else None
        result, window = timed_wrk(url, script, connections, seconds)
        if cpu:
            result["cpu_ms_per_call"] = CpuMeter.per_call(before, cpu.snapshot(), result["requests"])
        self.check_platform()  # a run the platform died in measures nothing
        result["idle_before"] = idle
        return result, window

    def heartbeat_run(self, base: str, connections: int, seconds: int, floor: bool) -> dict:
        script = self.work / "heartbeat.lua"
        first_line = len(self.launch.lines)
        result, (start, end) = self.wrk(f"{base}/registry/heartbeat", script, connections, seconds)
        time.sleep(AFTER_SECONDS)
        result["pg_connections"] = self.sampler.window(start, end, end + AFTER_SECONDS, floor=floor)
        # The platform's 500s carry no reason; its log says whether PostgreSQL ran out of connections.
        result["log_too_many_clients"] = sum("too many clients" in line for line in self.launch.lines[first_line:])
        return result

    def platform_side(self) -> None:
        if "heartbeat" in self.args.only:
            print(f"creating {self.args.workspaces} external workspaces…", flush=True)
            workspaces = asyncio.run(create_workspaces(self.launch.url, self.args.workspaces))
            heartbeat_script(self.work / "heartbeat.lua", workspaces)
            self.results["heartbeat"] = {"workspaces": len(workspaces), "runs": {}}
            for connections, default in HEARTBEAT_RUNS:
                print(f"heartbeat: platform, {connections} connections…", flush=True)
                run = self.heartbeat_run(self.launch.url, connections, self.seconds(default), floor=False)
                self.results["heartbeat"]["runs"][str(connections)] = {"platform": run}
        if "health" in self.args.only:
            print(f"health: platform, {HEALTH_CONNECTIONS} connections…", flush=True)
            script = write_script(self.work / "health.lua", "")
            run, _ = self.wrk(f"{self.launch.url}/health", script, HEALTH_CONNECTIONS, self.seconds(HEALTH_SECONDS))
            self.results["health"] = {"connections": HEALTH_CONNECTIONS, "platform": run}

    def floor_side(self) -> None:
        with ExitStack() as stack:
            port = free_port()
            process = start_server(stack, "floor", [
                sys.executable, "-m", "uvicorn", "floor:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
                "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--log-level", "warning", "--lifespan", "on",
            ], self.env, self.work)
            wait_for_log(process, self.work / "floor.log", "floor worker", 2, timeout=90)
            base = f"http://127.0.0.1:{port}"
            # Only what the platform side measured gets its floor counterpart.
            for connections, default in HEARTBEAT_RUNS:
                pair = self.results.get("heartbeat", {}).get("runs", {}).get(str(connections))
                if pair is not None:
                    print(f"heartbeat: floor, {connections} connections…", flush=True)
                    run = self.heartbeat_run(base, connections, self.seconds(default), floor=True)
                    pair.update(floor=run, ratio=compare(pair["platform"], run))
            if "health" in self.results:
                print(f"health: floor, {HEALTH_CONNECTIONS} connections…", flush=True)
                run, _ = self.wrk(f"{base}/health", self.work / "health.lua", HEALTH_CONNECTIONS,
                                  self.seconds(HEALTH_SECONDS))
                self.results["health"].update(floor=run, ratio=compare(self.results["health"]["platform"], run))

    def a2a(self) -> None:
        with ExitStack() as stack:
            port = free_port()
            agent_url = f"http://localhost:{port}"
            workspace_id, token = asyncio.run(self._echo_workspace(agent_url))
            env = dict(self.env)
            if self.traced_agent:  # the agent exports its spans to the platform's receiver, as a runtime does
                env.update(ECHO_PLATFORM_URL=self.launch.url, ECHO_WORKSPACE_TOKEN=token, ECHO_WORKSPACE_ID=workspace_id)
            process = start_server(stack, "echo", [
                sys.executable, "-m", "uvicorn", "echo_agent:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
                "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--log-level", "info",
            ], env, self.work)
            wait_for_log(process, self.work / "echo.log", "Uvicorn running", 1, timeout=60)
            if self.traced_agent and "tracing to the platform" not in (self.work / "echo.log").read_text():
                raise PhaseError(f"the echo agent did not set its tracing up:\n{tail(self.work / 'echo.log')}")
            direct = f"http://127.0.0.1:{port}/"
            through = f"{self.launch.url}/workspaces/{workspace_id}/a2a"
            # The canvas caller (no X-Workspace-ID) is an operator: the admin token outside dev mode.
            headers = {"Content-Type": "application/json", **ADMIN_HEADERS}
            check = httpx.post(through, content=A2A_BODY, headers=headers, timeout=30)
            if check.status_code != 200 or '"echo"' not in check.text:
                raise PhaseError(f"the proxy did not relay the echo agent: {check.status_code} {check.text[:300]}")
            script = post_script(self.work / "a2a.lua", A2A_BODY, ADMIN_HEADERS)
            cpu = CpuMeter(self.idle, {"agent": process}) if self.count_spans else None
            runs = {}
            calls = {"direct": 0, "through": 1}  # the check above went through too
            for connections in A2A_CONNECTIONS:
                pair = {}
                for name, url in (("direct", direct), ("through", through)):
                    print(f"a2a: {name}, {connections} connection(s)…", flush=True)
                    pair[name], _ = self.wrk(url, script, connections, self.seconds(A2A_SECONDS), cpu)
                    calls[name] += pair[name]["requests"]
                pair["added_ms"] = {
                    key: round(pair["through"][f"{key}_ms"] - pair["direct"][f"{key}_ms"], 2) for key in ("p50", "p99")
                }
                runs[str(connections)] = pair
            self.results["a2a"] = {"workspace_id": workspace_id, "runs": runs, "calls": calls}
            if self.count_spans:
                self.results["a2a"]["spans"] = self.stored_spans()

    def stored_spans(self) -> dict:
        """Spans in ``trace_spans`` by (service, name), once every batch exporter has had its turn:
        polled until the count held still for longer than the SDK's 5 s batch delay."""
        print("a2a: waiting for the exporters' last batches…", flush=True)
        query = "SELECT service_name, name, count(*) FROM trace_spans GROUP BY 1, 2 ORDER BY 1, 2"
        deadline = time.monotonic() + SPAN_SETTLE_MAX_SECONDS
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True, application_name=SAMPLER_APP_NAME) as conn:
            counts, still_since = None, time.monotonic()
            while time.monotonic() < deadline:
                now = {f"{service} {name}": n for service, name, n in conn.execute(query).fetchall()}
                if now != counts:
                    counts, still_since = now, time.monotonic()
                elif time.monotonic() - still_since >= SPAN_SETTLE_SECONDS:
                    return {"by_name": counts, "settled": True}
                time.sleep(0.5)
        return {"by_name": counts, "settled": False}

    async def _echo_workspace(self, agent_url: str) -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=self.launch.url, timeout=60) as api:
            return await create_external(api, "bench-echo", agent_url)

    def ws(self) -> None:
        count, processes = self.args.ws_clients, max(1, self.args.ws_processes)
        print(f"ws: connecting {count} clients from {processes} processes…", flush=True)
        url = f"ws://127.0.0.1:{self.launch.port}/ws"
        groups = [_ClientProcess(self.stack, url, count // processes + (n < count % processes)) for n in range(processes)]

        def everyone(text: str | None, timeout: float) -> list[dict]:
            for group in groups:
                if text is not None:
                    group.command(text)
            return [group.answer(timeout) for group in groups]

        answers = everyone(None, timeout=180)
        connected = {
            "connected": sum(a["connected"] for a in answers), "failed": sum(a["failed"] for a in answers),
            "errors": {k: v for a in answers for k, v in a["errors"].items()},
            "connect_seconds": max(a["connect_seconds"] for a in answers), "processes": processes,
        }
        result = {"clients": count, **connected, "events": []}
        self.results["ws"] = result
        if not connected["connected"]:
            raise PhaseError(f"no /ws client could connect: {connected['errors']}")
        with httpx.Client(base_url=self.launch.url, timeout=60) as api:
            for n in range(WS_EVENTS):
                idle = self.idle.wait()
                name = f"bench-ws-{n}"
                t0 = time.monotonic()
                created = api.post("/workspaces", headers=ADMIN_HEADERS, json={"name": name, "external": True})
                trigger_ms = (time.monotonic() - t0) * 1000
                # A failed trigger emits nothing; it is reported as such and the next event still runs.
                got = everyone(f"collect {name} {t0} {30 if created.status_code == 201 else 1}", timeout=60)
                latencies = sorted(ms for a in got for ms in a["latencies_ms"])
                since_emit = sorted(ms for a in got for ms in a["since_emit_ms"])
                result["events"].append({
                    "name": name, "idle_before": idle, "trigger_status": created.status_code,
                    "trigger_response_ms": round(trigger_ms, 2), "received": len(latencies),
                    "open": sum(a["open"] for a in got),
                    **percentiles(since_emit), "since_emit_ms": since_emit,
                    "since_trigger": percentiles(latencies), "latencies_ms": latencies,
                })
        closed = everyone("close", timeout=60)
        result.update({
            "open_at_close": sum(c["open_at_close"] for c in closed), "dropped": sum(c["dropped"] for c in closed),
            "drop_close_codes": {k: v for c in closed for k, v in c["drop_close_codes"].items()},
        })
        pooled = sorted(ms for event in result["events"] for ms in event["since_emit_ms"])
        result["all_events"] = {"received": len(pooled), "expected": connected["connected"] * WS_EVENTS,
                                **percentiles(pooled)}
        for group in groups:
            group.process.wait(timeout=30)

    def run(self) -> None:
        steps = [("platform", self.platform_side)]
        if {"heartbeat", "health"} & set(self.args.only):
            steps.append(("floor", self.floor_side))
        steps += [(phase, getattr(self, phase)) for phase in ("a2a", "ws") if phase in self.args.only]
        for name, step in steps:
            try:
                self.check_platform()
                step()
            except (PhaseError, httpx.HTTPError, subprocess.SubprocessError) as exc:
                self.errors[name] = str(exc)
                print(f"!! {name}: {exc}", flush=True)


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731 - values are sorted
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": values[-1]}


# --- report ---------------------------------------------------------------------------------------

def fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None else f"{value:{spec}}"


def busy(idle: dict) -> str:
    busiest = ", ".join(f"{name} {percent:.0f}%" for name, percent in idle["busiest"])
    return (f"MACHINE BUSY before this run: {idle['cpu_percent']:.0f}% CPU after {idle['waited_s']:.0f} s of waiting, "
            f"the platform's own processes {idle['platform_cpu_percent']:.0f}%; the figures are skewed\n"
            f"{'':13}busiest: {busiest}")


def report(data: dict) -> str:
    out = [f"$ {data['command']}",
           f"started {data['started_at']}, {data['cpus']} cores shared by the platform and the load generator; "
           f"{data['cpu_percent_before_start']:.0f}% CPU in use by other processes before the start"]
    env = " ".join(f"{k}={v}" for k, v in data["config"]["platform_env"].items())
    out.append(f"platform: molecule_site.launcher (web + worker + beat), {env}")
    out.append(f"          launcher says: {data['platform_web'] or 'nothing about its web processes'}")
    out.append("floor:    bench/floor.py, raw ASGI, uvicorn --workers 2 (uvloop, httptools), psycopg pool 8/process")
    out.append(f"load:     wrk -t1 --timeout {WRK_TIMEOUT}; ratios are platform/floor")
    pg = data["postgres"]
    bound = pg["documented_bound"]
    out.append(f"PostgreSQL max_connections {pg['max_connections']}; documented connection bound: web "
               f"WEB_CONCURRENCY × (DB_POOL_MAX + DB_ASYNC_POOL_MAX) = {fmt(bound.get('WEB_CONCURRENCY'), '')} × "
               f"({fmt(bound.get('DB_POOL_MAX'), '')} + {fmt(bound.get('DB_ASYNC_POOL_MAX'), '')}) = "
               f"{fmt(bound.get('web_bound'), '')}, whole platform {fmt(bound.get('platform_bound'), '')}")

    def row(label: str, run: dict, pg_conns: bool) -> str:
        text = (f"  {label:<10} {fmt(run['rps'], '9.1f')} {fmt(run['p50_ms'], '9.1f')} {fmt(run['p99_ms'], '9.1f')} "
                f"{run['non_2xx']:8d} {run['5xx']:6d} {sum(run['socket_errors'].values()):7d}")
        if pg_conns:
            conns = run["pg_connections"]
            text += f"   {fmt(conns['max_during'], '')}/{fmt(conns['after_5s'], '')}"
        if run["idle_before"]["busy"]:
            text += f"\n{'':13}{busy(run['idle_before'])}"
        if run.get("log_too_many_clients"):
            text += f"\n{'':13}platform log: {run['log_too_many_clients']} lines with \"too many clients\""
        for body in run["error_bodies"]:
            text += f"\n{'':13}error answer: {' '.join(body.split())[:110]}"
        return text

    def ratio_row(r: dict) -> str:
        return f"  {'ratio':<10} {fmt(r['rps'], '8.3f')}x {fmt(r['p50_ms'], '8.2f')}x {fmt(r['p99_ms'], '8.2f')}x"

    header = f"  {'':<10} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'non-2xx':>8} {'5xx':>6} {'sock.err':>7}"
    if "heartbeat" in data:
        hb = data["heartbeat"]
        out += ["", f"POST /registry/heartbeat ({hb['workspaces']} workspaces, one token each)",
                header + "   pg conns max/+5s"]
        for connections, pair in hb["runs"].items():
            out.append(f" {connections} connections, {pair['platform']['seconds']:g} s")
            out.append(row("platform", pair["platform"], True))
            if "floor" in pair:
                out.append(row("floor", pair["floor"], True))
                out.append(ratio_row(pair["ratio"]))
    if "health" in data:
        health = data["health"]
        out += ["", f"GET /health ({health['connections']} connections; floor = bare ASGI)", header]
        out.append(row("platform", health["platform"], False))
        if "floor" in health:
            out.append(row("floor", health["floor"], False))
            out.append(ratio_row(health["ratio"]))
    if "a2a" in data:
        out += ["", "A2A message/send to the echo agent: direct vs POST /workspaces/:id/a2a (canvas caller)", header]
        for connections, pair in data["a2a"]["runs"].items():
            out.append(f" {connections} connection(s), {pair['direct']['seconds']:g} s each")
            out.append(row("direct", pair["direct"], False))
            out.append(row("through", pair["through"], False))
            added = pair["added_ms"]
            out.append(f"  added by the proxy: p50 {added['p50']:.2f} ms, p99 {added['p99']:.2f} ms")
    if "tracing" in data:
        out += tracing_report(data["tracing"], row, header)
    if "ws" in data:
        ws = data["ws"]
        out += ["", f"/ws fan-out: {ws['connected']}/{ws['clients']} clients ({ws.get('processes', 1)} processes) "
                f"connected in {ws['connect_seconds']:.1f} s"
                + (f" ({ws['failed']} failed: {ws['errors']})" if ws["failed"] else ""),
                "  per event, from the moment the platform recorded it (the frame's timestamp) to its arrival in each"
                " client; in brackets, from just before the POST /workspaces that causes it"]
        for event in ws.get("events", []):
            status = event["trigger_status"]
            failed = "" if status == 201 else f"   TRIGGER FAILED: POST /workspaces answered {status}"
            trigger = event["since_trigger"]
            out.append(f"  {event['name']}: {event['received']}/{event['open']} got it   p50 {fmt(event['p50_ms'])} ms"
                       f"   p99 {fmt(event['p99_ms'])} ms   max {fmt(event['max_ms'])} ms   (p99 {fmt(trigger['p99_ms'])} ms"
                       f" after the trigger, which answered in {event['trigger_response_ms']:.1f} ms){failed}")
            if event["idle_before"]["busy"]:
                out.append(f"{'':13}{busy(event['idle_before'])}")
        if "all_events" in ws:
            every = ws["all_events"]
            out.append(f"  all events: {every['received']}/{every['expected']} deliveries   "
                       f"p50 {fmt(every['p50_ms'])} ms   p99 {fmt(every['p99_ms'])} ms   max {fmt(every['max_ms'])} ms")
            codes = f", close codes {ws['drop_close_codes']}" if ws["dropped"] else ""
            out.append(f"  stayed connected: {ws['open_at_close']}/{ws['connected']} "
                       f"(dropped before the end: {ws['dropped']}{codes})")
    if pg.get("sampler_error"):
        out += ["", f"PostgreSQL connection sampling stopped early: {pg['sampler_error']}"]
    for phase, message in data["errors"].items():
        out += ["", f"NOT MEASURED: {phase}: {message}"]
    return "\n".join(out)


def tracing_report(tracing: dict, row, header: str) -> list[str]:
    modes = tracing["modes"]
    floor = TRACING_MODES[0][0]
    out = ["", "A2A message/send with tracing off and on, a platform of its own for each mode:"]
    out += [f"  {mode:<6} {TRACING_DESCRIPTIONS[mode]}" for mode, _, _ in TRACING_MODES]
    out.append(header)
    connections = next((list(section["a2a"]["runs"]) for section in modes.values() if "a2a" in section), [])
    for count in connections:
        runs = {mode: section["a2a"]["runs"][count] for mode, section in modes.items()
                if count in section.get("a2a", {}).get("runs", {})}
        out.append(f" {count} connection(s), {next(iter(runs.values()))['direct']['seconds']:g} s each")
        for name, label in (("direct", "direct"), ("through", "proxy")):
            out += [row(f"{mode} {label}", pair[name], False) for mode, pair in runs.items()]
        for name, label in (("direct", "direct"), ("through", "proxy")):
            for mode, pair in runs.items():
                if pair[name].get("cpu_ms_per_call"):
                    spent = pair[name]["cpu_ms_per_call"]
                    out.append(f"  {mode + ' ' + label:<12} CPU ms per call: total {sum(spent.values()):.3f} = "
                               + ", ".join(f"{group} {ms:.3f}" for group, ms in spent.items()))
        for mode, pair in runs.items():
            added, ratios = pair["added_ms"], tracing["ratio"].get(mode, {}).get(count)
            text = f"  {mode:<6} added by the proxy p50 {added['p50']:6.2f} ms, p99 {added['p99']:6.2f} ms"
            if ratios and mode != floor:
                through, direct = ratios["through"], ratios["direct"]
                text += (f";  {mode}/{floor} through: req/s {fmt(through['rps'], '.3f')}x, p50 {fmt(through['p50_ms'], '.2f')}x,"
                         f" p99 {fmt(through['p99_ms'], '.2f')}x; direct req/s {fmt(direct['rps'], '.3f')}x")
            out.append(text)
    out.append(" spans stored during each mode's runs (trace_spans, counted once the exporters went quiet):")
    for mode, section in modes.items():
        a2a = section.get("a2a")
        if not a2a or "spans" not in a2a:
            continue
        spans, calls = a2a["spans"], a2a["calls"]
        counts = ", ".join(f"{name} {n}" for name, n in spans["by_name"].items()) or "none"
        late = "" if spans["settled"] else f" (STILL GROWING after {SPAN_SETTLE_MAX_SECONDS:g} s)"
        out.append(f"  {mode:<6} {counts}{late}; calls through the proxy {calls['through']}, "
                   f"to the agent {calls['through'] + calls['direct']}")
    return out


# --- main -----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, help="length of every wrk run (default: 15/20 s heartbeat, "
                        f"{HEALTH_SECONDS:g} s health, {A2A_SECONDS:g} s a2a)")
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--ws-clients", type=int, default=1000)
    parser.add_argument("--ws-processes", type=int, default=2, help="processes the /ws clients are spread over "
                        "(one Python process reading 1,000 sockets is itself the slowest part of the fan-out)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(PHASES)} (default: all of them)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--web-server", choices=("uvicorn", "daphne"), help="the platform's WEB_SERVER (default: its own)")
    parser.add_argument("--compare-tracing", action="store_true",
                        help="the a2a phase once per tracing mode, each on a platform of its own: "
                        "OTEL_SDK_DISABLED=true (the floor), the platform's a2a.proxy spans only, and the default "
                        "(those and the echo agent's spans to POST /otlp/v1/traces); reports each against the floor "
                        "and the spans stored")
    args = parser.parse_args()
    if args.compare_tracing and args.only not in (None, "a2a"):
        parser.error("--compare-tracing measures the a2a phase only: leave --only out or give --only a2a")
    args.only = args.only or ("a2a" if args.compare_tracing else ",".join(PHASES))
    if args.web_server:
        PLATFORM_ENV["WEB_SERVER"] = args.web_server
    args.only = [phase.strip() for phase in args.only.split(",") if phase.strip()]
    if unknown := set(args.only) - set(PHASES):
        parser.error(f"unknown phase(s) in --only: {', '.join(sorted(unknown))}")
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    # The platform's web processes inherit this limit and must hold every /ws client.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds the ExitStack like Ctrl-C

    from django.conf import settings

    settings.configure(BASE_DIR=ROOT)  # all Launch reads; the orchestrator never sets Django up
    data = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_percent_before_start": psutil.cpu_percent(interval=1),
        "config": {"platform_env": PLATFORM_ENV, "workspaces": args.workspaces, "ws_clients": args.ws_clients,
                   "only": args.only, "seconds": args.seconds, "compare_tracing": args.compare_tracing},
    }
    started = time.monotonic()
    try:
        measure(args, data)
    except KeyboardInterrupt:
        print("\ninterrupted: every process started here has been stopped", file=sys.stderr)
        return 130
    data["wall_seconds"] = round(time.monotonic() - started, 1)
    text = report(data) + f"\n\nwall time {data['wall_seconds']:.0f} s"
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if data["errors"] else 0


def measure(args, data: dict) -> None:
    """Start the platform, run the phases, stop everything; with ``--compare-tracing``, once per
    tracing mode (a fresh platform each time), the a2a phase only, then traced/untraced."""
    if not args.compare_tracing:
        measure_platform(args, data, {})
        return
    data["tracing"] = {"modes": {}}
    data["errors"] = {}
    for mode, overrides, traced_agent in TRACING_MODES:
        print(f"== tracing {mode}: {TRACING_DESCRIPTIONS[mode]}", flush=True)
        section: dict = {"platform_env": overrides, "traced_agent": traced_agent}
        measure_platform(args, section, overrides, traced_agent=traced_agent, count_spans=True)
        data["tracing"]["modes"][mode] = section
        data["errors"].update({f"{mode} {phase}": message for phase, message in section["errors"].items()})
        for key in ("platform_web", "postgres"):
            data.setdefault(key, section[key])
    data["tracing"]["ratio"] = tracing_ratios(data["tracing"]["modes"])


def tracing_ratios(modes: dict) -> dict:
    """{mode: {connections: {direct, through: mode / the floor mode}}} for every run both measured."""
    floor_runs = modes.get(TRACING_MODES[0][0], {}).get("a2a", {}).get("runs", {})
    return {
        mode: {connections: {name: compare(pair[name], floor_runs[connections][name]) for name in ("direct", "through")}
               for connections, pair in section.get("a2a", {}).get("runs", {}).items() if connections in floor_runs}
        for mode, section in modes.items()
    }


def measure_platform(args, data: dict, env_overrides: dict, traced_agent: bool = False,
                     count_spans: bool = False) -> None:
    """One platform: started, measured, stopped (the ExitStack, also on errors and Ctrl-C)."""
    with tempfile.TemporaryDirectory(prefix="molecule-load-") as work_dir, ExitStack() as stack:
        work = Path(work_dir)
        home = work / "home"
        print("starting the platform…", flush=True)
        launch = Launch(home, free_port(), **PLATFORM_ENV, **env_overrides)
        stack.callback(launch.stop)
        launch.wait_for("celery@", "beat: Starting", timeout=180)
        wait_for_health(launch)
        # The launcher's banner line about its web processes, when it prints one.
        data["platform_web"] = next((line.strip() for line in launch.lines if line.lstrip().startswith("web:")), None)
        urls = embedded_urls(home)
        env = platform_env(home, urls, env_overrides)
        sampler = ConnectionSampler(urls["DATABASE_URL"])
        stack.callback(sampler.close)
        data["postgres"] = {"max_connections": sampler.max_connections, "documented_bound": documented_bound(env)}
        bench = Bench(args, stack, work, launch, env, sampler, IdleWatch(launch, home, urls["REDIS_URL"]),
                      traced_agent=traced_agent, count_spans=count_spans)
        bench.run()
        data.update(bench.results, errors=bench.errors)
        data["postgres"]["sampler_error"] = sampler.error


if __name__ == "__main__":
    sys.exit(main())

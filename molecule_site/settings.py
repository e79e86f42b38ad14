"""The platform's only settings module: every value comes from the environment.

Environments differ only in their variables (README lists each). Bad values stop startup with
a message naming the variable (``molecule_site.env``). With ``DATABASE_URL``/``REDIS_URL`` unset,
embedded PostgreSQL and Redis under ``MOLECULE_HOME`` supply them (``molecule_site.embedded``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url

from molecule_site import capacity, embedded, local_keys, modes
from molecule_site.env import EnvError, env_bool, env_choice, env_int, env_list, env_prices, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Mode (molecule_site.modes) -----------------------------------------------------------------------
# Dev mode (MOLECULE_ENV=dev|development, no ADMIN_TOKEN) keeps the original's permissive rules;
# every other value, unset or a typo included, is secure. Production also refuses to start
# without its keys.
MOLECULE_ENV = modes.molecule_env()
IS_PRODUCTION = modes.is_production(MOLECULE_ENV)
ADMIN_TOKEN = env_str("ADMIN_TOKEN")
DEV_MODE = modes.is_dev_mode(MOLECULE_ENV, ADMIN_TOKEN)

MOLECULE_HOME = Path(env_str("MOLECULE_HOME", "./.molecule")).resolve()

# --- Services ---------------------------------------------------------------------------------------
_EMBEDDED_STARTED = embedded.ensure_environment(MOLECULE_HOME)  # no-op for URLs that are set
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql"), secret=True)
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss"), secret=True)

# --- Database connections: bounded per process (docs/performance.md "Connection budget") -------------
# The ORM uses Django's psycopg pool (persistent per-thread connections leak under ASGI, where
# every request runs in a thread of its own); the async hot paths use a second, async pool
# (molecule_site.adb). A process never holds more than DB_POOL_MAX + DB_ASYNC_POOL_MAX
# connections, and waits at most DB_POOL_TIMEOUT_SECONDS for one before answering 503.
# "web" for the web processes the launcher starts: they keep an async connection pool per event
# loop (molecule_site.adb); other processes (worker, beat, commands, tests) have short-lived loops.
PROCESS_ROLE = env_choice("MOLECULE_PROCESS_ROLE", "other", ("web", "other"))
BUDGET = capacity.budget()
WEB_CONCURRENCY = BUDGET.web_processes
WORKER_CONCURRENCY = BUDGET.worker_processes
DB_POOL_MIN = BUDGET.pool_min
DB_POOL_MAX = BUDGET.pool_max
DB_ASYNC_POOL_MAX = BUDGET.async_pool_max
DB_POOL_TIMEOUT_SECONDS = BUDGET.pool_timeout_seconds
DB_POOL_MAX_IDLE_SECONDS = BUDGET.pool_max_idle_seconds
DB_CONNECTION_BOUND = BUDGET.connection_bound

DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": DB_POOL_MIN,
    "max_size": DB_POOL_MAX,
    "timeout": DB_POOL_TIMEOUT_SECONDS,
    "max_idle": DB_POOL_MAX_IDLE_SECONDS,
    "name": "molecule-orm",
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
# Events fan out through Redis pub/sub: one PUBLISH per event whatever the number of clients, one
# subscription per web process, then in-process queues (bounded: a client that cannot keep up is
# disconnected, activity.consumers). Socket reads carry no timeout (pub/sub reads block by design;
# redis-py 8 otherwise times out idle reads after 5 s), liveness comes from health checks.
WS_CLIENT_QUEUE_SIZE = env_int("WS_CLIENT_QUEUE_SIZE", 256, minimum=1)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "molecule_site.channel_layer.BoundedPubSubChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 5, "health_check_interval": 15,
                       "socket_keepalive": True, "retry_on_timeout": True}],
            "capacity": WS_CLIENT_QUEUE_SIZE,
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Task modules outside the apps' tasks.py files, so the worker registers them too.
CELERY_IMPORTS = ["registry.a2a_drain", "registry.delegation", "workspaces.provisioning"]

# --- Platform ----------------------------------------------------------------------------------------
HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8080, minimum=1, maximum=65535)
PLATFORM_URL = env_url("PLATFORM_URL", f"http://localhost:{PORT}", schemes=("http", "https"))
CONFIGS_DIR = Path(env_str("CONFIGS_DIR", str(BASE_DIR / "workspace-configs-templates"))).resolve()
ORG_TEMPLATES_DIR = Path(env_str("ORG_TEMPLATES_DIR", str(BASE_DIR / "org-templates"))).resolve()
PLUGINS_DIR = Path(env_str("PLUGINS_DIR", str(BASE_DIR / "plugins"))).resolve()
# github:// plugin sources: where tarballs come from, and how long a fetch may take
PLUGIN_GITHUB_URL = env_url("PLUGIN_GITHUB_URL", "https://codeload.github.com", schemes=("http", "https"))
PLUGIN_INSTALL_TIMEOUT_SECONDS = env_int("PLUGIN_INSTALL_TIMEOUT_SECONDS", 30, minimum=1)
PLUGIN_ALLOW_UNPINNED = env_bool("PLUGIN_ALLOW_UNPINNED", False)
WORKSPACE_DIR = env_str("WORKSPACE_DIR")
AWARENESS_URL = env_url("AWARENESS_URL", schemes=("http", "https"))
ACTIVITY_RETENTION_DAYS = env_int("ACTIVITY_RETENTION_DAYS", 7, minimum=1)

# What model tokens cost, in USD cents per million (input, output) tokens: the A2A proxy meters
# each reply's `usage` into workspace_token_usage and monthly_spend with it (metering/prices.py
# matches the longest listed prefix, else "default"). MODEL_PRICES_JSON overrides or adds entries:
# {"my-model": [30, 60]}.
MODEL_PRICES = {
    "default": (100, 400),
    "gpt-4o-mini": (15, 60), "gpt-4o": (250, 1000), "gpt-4.1-mini": (40, 160), "gpt-4.1": (200, 800),
    "gpt-5-mini": (25, 200), "gpt-5": (125, 1000), "o3": (200, 800),
    "claude-3-5-haiku": (80, 400), "claude-haiku-4": (100, 500), "claude-sonnet-4": (300, 1500),
    "claude-opus-4": (1500, 7500), "gemini-2.5-flash": (30, 250), "gemini-2.5-pro": (125, 1000),
    "echo": (0, 0),
}
MODEL_PRICES.update(env_prices("MODEL_PRICES_JSON"))
# /metrics keeps a workspace_id label for at most this many workspaces; the rest are summed as "other".
METRICS_MAX_WORKSPACES = env_int("METRICS_MAX_WORKSPACES", 500, minimum=1)
ACTIVITY_CLEANUP_INTERVAL_HOURS = env_int("ACTIVITY_CLEANUP_INTERVAL_HOURS", 6, minimum=1)
# Traces (the `traces` app): spans agents export to POST /otlp/v1/traces and the platform's own
# (a2a.proxy, a2a.delegate) are kept TRACE_RETENTION_DAYS; an OTLP body over TRACE_MAX_BODY_BYTES is a 413.
TRACE_RETENTION_DAYS = env_int("TRACE_RETENTION_DAYS", 7, minimum=1)
TRACE_CLEANUP_INTERVAL_HOURS = env_int("TRACE_CLEANUP_INTERVAL_HOURS", 1, minimum=1)
TRACE_MAX_BODY_BYTES = env_int("TRACE_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024)
# Where traces can be browsed beyond the platform (a Langfuse, a Jaeger…): GET /workspaces/:id/traces
# answers it as external_url. TRACES_EXTERNAL_URL wins over LANGFUSE_HOST.
LANGFUSE_HOST = env_url("LANGFUSE_HOST", schemes=("http", "https"))
TRACES_EXTERNAL_URL = env_url("TRACES_EXTERNAL_URL", schemes=("http", "https")) or LANGFUSE_HOST
# The platform's own spans (traces.otel): OTEL_SDK_DISABLED=true turns them off; with
# OTEL_EXPORTER_OTLP_ENDPOINT they are also exported to <endpoint>/v1/traces.
OTEL_SDK_DISABLED = env_bool("OTEL_SDK_DISABLED", False)
OTEL_EXPORTER_OTLP_ENDPOINT = env_url("OTEL_EXPORTER_OTLP_ENDPOINT", schemes=("http", "https"))
CORS_ORIGINS = env_list("CORS_ORIGINS", ["http://localhost:3000", "http://localhost:3001"])
# django-cors-headers, configured as the original's CORS (spec §1 item 2).
CORS_ALLOWED_ORIGINS = CORS_ORIGINS
CORS_ALLOW_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CORS_ALLOW_HEADERS = ["Origin", "Content-Type", "X-Workspace-ID", "Authorization"]
CORS_ALLOW_CREDENTIALS = True
RATE_LIMIT = env_int("RATE_LIMIT", 600, minimum=1)
# Which backend runs workspace runtimes: docker = a container per workspace (see the Docker block
# below); local = `molecule-runtime` subprocesses on this machine; none = nothing runs them
# (external workspaces only); auto = docker when a daemon answers, else local when
# `molecule-runtime` is installed, else none.
MOLECULE_PROVISIONER = env_choice("MOLECULE_PROVISIONER", "auto", ("auto", "docker", "none", "local"))
# Production keeps agents off the platform's machine: `local` stops startup and `auto` picks
# `none` there, unless this allows local runtimes anyway.
MOLECULE_ALLOW_LOCAL_PROVISIONER = env_bool("MOLECULE_ALLOW_LOCAL_PROVISIONER", False)
if IS_PRODUCTION and MOLECULE_PROVISIONER == "local" and not MOLECULE_ALLOW_LOCAL_PROVISIONER:
    raise EnvError(
        f"MOLECULE_PROVISIONER=local is refused with MOLECULE_ENV={MOLECULE_ENV}: agents would run on the "
        "platform's own machine; set MOLECULE_ALLOW_LOCAL_PROVISIONER=1 to allow it"
    )
# The `molecule-runtime` the local backend starts; unset: the one next to this interpreter, else on PATH.
LOCAL_RUNTIME_EXECUTABLE = env_str("LOCAL_RUNTIME_EXECUTABLE")
# Runtimes whose packages cannot share this interpreter's environment (crewai, hermes, google-adk)
# have one each here, `<dir>/<runtime>/bin/molecule-runtime` (`make runtime-envs` installs them);
# the local backend runs such a runtime from its own environment.
LOCAL_RUNTIME_ENVS_DIR = env_str("LOCAL_RUNTIME_ENVS_DIR", str(BASE_DIR / ".molecule" / "runtime-envs"))
# The npm CLIs some runtimes drive (claude-code, openclaw, cli/codex), put first on a local
# runtime's PATH when the folder exists (`make npm-tools` installs them there).
LOCAL_RUNTIME_TOOLS_DIR = env_str("LOCAL_RUNTIME_TOOLS_DIR", str(BASE_DIR / ".molecule" / "npm" / "node_modules" / ".bin"))
# A platform running as root runs each local runtime as a uid (and group) of its own from this
# range, ids with no passwd or group entry (workspaces.provisioners.runtime_users); the runtime
# executable and MOLECULE_HOME must then be reachable by unprivileged users.
LOCAL_RUNTIME_UID_BASE = env_int("LOCAL_RUNTIME_UID_BASE", 1_900_000_000, minimum=1000, maximum=2**32 - 2)
LOCAL_RUNTIME_UID_COUNT = env_int("LOCAL_RUNTIME_UID_COUNT", 65_536, minimum=1,
                                  maximum=2**32 - 1 - LOCAL_RUNTIME_UID_BASE)
EXTERNAL_PLATFORM_URL = env_url("EXTERNAL_PLATFORM_URL", schemes=("http", "https"))
# GET /admin/workspaces/:id/test-token: dev mode only, unless this turns it on (then it needs ADMIN_TOKEN).
MOLECULE_ENABLE_TEST_TOKENS = env_bool("MOLECULE_ENABLE_TEST_TOKENS", False)

# --- Docker provisioner (§16) -------------------------------------------------------------------------
# The engine is the SDK's usual one (DOCKER_HOST, else the local socket); every call is bounded.
DOCKER_TIMEOUT_SECONDS = env_int("DOCKER_TIMEOUT_SECONDS", 30, minimum=1)
# A whole start (stale container out, create, configs in, start) gives up after this (spec: 3 min).
DOCKER_PROVISION_TIMEOUT_SECONDS = env_int("DOCKER_PROVISION_TIMEOUT_SECONDS", 180, minimum=10)
# Images are built here by `manage.py build_workspace_images`, one per runtime: <prefix><runtime>:<tag>.
# Never pulled. A runtime without an image of its own runs in the default runtime's image.
WORKSPACE_IMAGE_PREFIX = env_str("WORKSPACE_IMAGE_PREFIX", "molecule/workspace-")
WORKSPACE_IMAGE_TAG = env_str("WORKSPACE_IMAGE_TAG", "latest")
WORKSPACE_DEFAULT_RUNTIME = env_str("WORKSPACE_DEFAULT_RUNTIME", "langgraph")
WORKSPACE_NETWORK = env_str("WORKSPACE_NETWORK", "molecule-monorepo-net")
# The platform runs in a container attached to WORKSPACE_NETWORK: the proxy then reaches runtimes
# by container name rather than through their ports published on the host's loopback.
MOLECULE_IN_DOCKER = env_bool("MOLECULE_IN_DOCKER", False)
# Which platform's containers are whose when several share one engine (a label on each): only our
# own are swept, restarted or reaped. Platforms sharing a database must share this value.
MOLECULE_PLATFORM_INSTANCE = env_str("MOLECULE_PLATFORM_INSTANCE") or hashlib.sha256(
    str(MOLECULE_HOME).encode()).hexdigest()[:16]
# T3's privileged + host-PID and T4's host network + Docker socket hand the host to the agent
# (docs/security.md): each needs its own explicit switch; without it the tier keeps its limits only.
MOLECULE_ALLOW_PRIVILEGED_TIERS = env_bool("MOLECULE_ALLOW_PRIVILEGED_TIERS", False)
MOLECULE_ALLOW_T4 = env_bool("MOLECULE_ALLOW_T4", False)
# Per-tier limits (spec §16): memory in MiB, CPU in shares (1024 = one CPU, applied as NanoCPUs);
# 0 = no cap. T1 has none by default; unknown tiers get T2's.
TIER_LIMITS = {
    tier: (env_int(f"TIER{tier}_MEMORY_MB", memory, minimum=0), env_int(f"TIER{tier}_CPU_SHARES", shares, minimum=0))
    for tier, memory, shares in ((1, 0, 0), (2, 512, 1024), (3, 2048, 2048), (4, 4096, 4096))
}
# --- end of the Docker provisioner block -----------------------------------------------------------------

# --- Registry, liveness and sweeps (spec §7, DESIGN flow 3) -----------------------------------------
# A workspace that misses its deadline (last register/heartbeat + TTL) goes offline; runtimes
# heartbeat every 30 s, so the default tolerates one missed beat.
LIVENESS_TTL_SECONDS = env_int("LIVENESS_TTL_SECONDS", 60, minimum=1)
LIVENESS_SWEEP_SECONDS = env_int("LIVENESS_SWEEP_SECONDS", 5, minimum=1)
# Unset: 30 min for the hermes runtime, 10 min for the others (spec §7.4).
PROVISION_TIMEOUT_SECONDS = env_int("PROVISION_TIMEOUT_SECONDS", 0, minimum=0) or None
PROVISION_SWEEP_SECONDS = env_int("PROVISION_SWEEP_SECONDS", 30, minimum=1)
STALE_TOKEN_SWEEP_SECONDS = env_int("STALE_TOKEN_SWEEP_SECONDS", 60, minimum=1)
CONTAINER_SWEEP_SECONDS = env_int("CONTAINER_SWEEP_SECONDS", 15, minimum=1)
# The idle monitor (spec §7.4: every 2 min): workspaces past their hibernation deadline hibernate.
HIBERNATION_SWEEP_SECONDS = env_int("HIBERNATION_SWEEP_SECONDS", 120, minimum=1)
# After an automatic restart the platform briefs the agent (spec §6.2): how long it waits for the
# runtime to come online first, polling every half second.
RESTART_CONTEXT_WAIT_SECONDS = env_int("RESTART_CONTEXT_WAIT_SECONDS", 30, minimum=0)
# How often beat fires the due cron schedules (spec §19: the original polls every 30 s).
SCHEDULE_SWEEP_SECONDS = env_int("SCHEDULE_SWEEP_SECONDS", 30, minimum=1)
# SaaS mode lets registered URLs and A2A targets sit on private (RFC-1918) networks.
MOLECULE_DEPLOY_MODE = (env_str("MOLECULE_DEPLOY_MODE", "") or "").lower()
MOLECULE_ORG_ID = env_str("MOLECULE_ORG_ID")
SAAS_MODE = MOLECULE_DEPLOY_MODE == "saas" or (not MOLECULE_DEPLOY_MODE and bool(MOLECULE_ORG_ID))
# MOLECULE_ENV=dev lets the A2A proxy reach loopback and private addresses, whatever ADMIN_TOKEN says.
A2A_ALLOW_PRIVATE_TARGETS = MOLECULE_ENV in {"dev", "development"}
A2A_IDLE_TIMEOUT_SECONDS = env_int("A2A_IDLE_TIMEOUT_SECONDS", 300, minimum=1)
A2A_MAX_SECONDS = env_int("A2A_MAX_SECONDS", 1800, minimum=1)
DELEGATION_RETRY_DELAY_SECONDS = env_int("DELEGATION_RETRY_DELAY_SECONDS", 8, minimum=0)

# --- Keys --------------------------------------------------------------------------------------------
# AES-256-GCM key for secrets (spec §2.8), Django's secret key and ADMIN_TOKEN. Production must be
# given all three; otherwise each missing one is generated once under MOLECULE_HOME (0600) —
# except ADMIN_TOKEN in dev mode, whose open admin routes are the point of dev mode.
SECRETS_ENCRYPTION_KEY = env_str("SECRETS_ENCRYPTION_KEY")
SECRET_KEY = env_str("DJANGO_SECRET_KEY")

if IS_PRODUCTION:
    _missing = [name for name, value in (
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("SECRETS_ENCRYPTION_KEY", SECRETS_ENCRYPTION_KEY),
        ("DJANGO_SECRET_KEY", SECRET_KEY),
    ) if not value]
    if _missing:
        raise EnvError(f"MOLECULE_ENV={MOLECULE_ENV} refuses to start without: {', '.join(_missing)}")
else:
    SECRETS_ENCRYPTION_KEY = SECRETS_ENCRYPTION_KEY or local_keys.secrets_encryption_key(MOLECULE_HOME)
    SECRET_KEY = SECRET_KEY or local_keys.django_secret_key(MOLECULE_HOME)
    if not DEV_MODE and not ADMIN_TOKEN:
        ADMIN_TOKEN = local_keys.admin_token(MOLECULE_HOME)[0]

# Fails startup on a key that is neither base64 of 32 bytes nor 32 raw characters.
from secrets_app.crypto import parse_key  # noqa: E402

SECRETS_KEY_BYTES = parse_key(SECRETS_ENCRYPTION_KEY, variable="SECRETS_ENCRYPTION_KEY")

# --- Django ------------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)


def _own_host_names() -> list[str]:
    """Loopback, the host we bind and the hosts of our public URLs: whom the Host header may name.

    Refusing other names closes DNS rebinding (a web page whose name resolves to 127.0.0.1
    reading this API); dev mode keeps the original's any-host.
    """
    names = ["localhost", "127.0.0.1", "[::1]", "host.docker.internal"]
    hosts = [HOST] + [urlparse(url).hostname for url in (PLATFORM_URL, EXTERNAL_PLATFORM_URL) if url]
    for host in hosts:
        if host and host not in {"0.0.0.0", "::"}:
            names.append(f"[{host}]" if ":" in host else host)
    return list(dict.fromkeys(names))


ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"] if DEV_MODE else _own_host_names())
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PLATFORM_URL.rstrip("/")])
SESSION_COOKIE_SECURE = IS_PRODUCTION
# The canvas (/) and its fragments need a logged-in staff user; Django's login page serves it.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
CSRF_COOKIE_SECURE = IS_PRODUCTION

INSTALLED_APPS = [
    "daphne",
    "molecule_site.admin_config.MoleculeAdminConfig",  # django.contrib.admin with the fleet dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "corsheaders",
    "channels",
    "django_prometheus",
    "drf_spectacular",  # the generated OpenAPI description at /api/schema/ (molecule_site/openapi.py)
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc assets served from our static files, no CDN
    "molecule_site",
    "workspaces",
    "registry",
    "secrets_app",
    "memory",
    "activity",
    "metering",
    "traces",
    "instructions",
    "checkpoints",
    "schedules",
    "plugins_app",
]

# Order follows the original's chain (spec §1). CORS is outermost so every answer, 429s included,
# carries CORS headers; the metrics middleware wraps the limiter so 429s are counted.
# SecurityHeadersMiddleware owns X-Frame-Options and overrides SecurityMiddleware's defaults.
# CrossSiteRequestMiddleware (beyond the original) refuses state changes from untrusted pages;
# it runs before any view parses a body, and its 403s carry the security headers.
# Every entry runs natively on the event loop (molecule_site.async_middleware says why): one
# sync-only middleware would put every request, the hot paths included, through threads.
# django-prometheus' request middlewares are left out: ~15 metric updates per request for series
# RequestMetricsMiddleware already keeps (requests by route and status, a latency histogram).
MIDDLEWARE = [
    "molecule_site.middleware.ReleaseDatabaseConnectionsMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "molecule_site.metrics.RequestMetricsMiddleware",
    "molecule_site.middleware.RateLimitMiddleware",
    "molecule_site.middleware.SecurityHeadersMiddleware",
    "molecule_site.middleware.CrossSiteRequestMiddleware",
    "molecule_site.async_middleware.SecurityMiddleware",
    "molecule_site.async_middleware.WhiteNoiseMiddleware",
    "molecule_site.async_middleware.SessionMiddleware",
    "molecule_site.async_middleware.CommonMiddleware",
    "molecule_site.async_middleware.CsrfViewMiddleware",
    "molecule_site.async_middleware.AuthenticationMiddleware",
    "molecule_site.async_middleware.MessageMiddleware",
]

ROOT_URLCONF = "molecule_site.urls"
ASGI_APPLICATION = "molecule_site.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Outside a built image there is no collectstatic step: serve straight from the finders
# (and whitenoise's warning about the missing STATIC_ROOT is expected there).
WHITENOISE_USE_FINDERS = not STATIC_ROOT.exists()
if WHITENOISE_USE_FINDERS:
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")

# Bodies over this size are refused before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1024)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["molecule_site.wire.CompactJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["molecule_site.wire.AnyContentTypeJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["registry.auth.SessionUser"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "EXCEPTION_HANDLER": "molecule_site.wire.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "molecule_site.openapi.MoleculeAutoSchema",
}

# The OpenAPI description (/api/schema/, /api/docs/, /api/redoc/): generated from the URL map by
# drf-spectacular with molecule_site.openapi's hooks; public in every mode (docs/security.md).
SPECTACULAR_SETTINGS = {
    "TITLE": "Molecule platform API",
    "DESCRIPTION": "The control plane's HTTP API: the wire contract of the original platform "
                   "(compact JSON, `{\"error\": \"...\"}` bodies, no trailing slashes) plus Molecule's additions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/",
    "PREPROCESSING_HOOKS": ["molecule_site.openapi.keep_api_endpoints"],
    "POSTPROCESSING_HOOKS": ["molecule_site.openapi.add_plain_routes"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "filters": {"routine_beat": {"()": "molecule_site.logs.DropMessages",
                                 "prefixes": ["Scheduler: Sending due task"]}},
    # INFO is for state changes: the sweeps run every few seconds, and Celery would otherwise log
    # each task's receipt, success and dispatch (failures still log at ERROR).
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "celery.beat": {"filters": ["routine_beat"]},
    },
}

"""Which mode the platform runs in, read from ``MOLECULE_ENV`` (and ``ADMIN_TOKEN``).

- **dev** (``MOLECULE_ENV=dev|development`` and no ``ADMIN_TOKEN``): the original platform's
  permissive behaviours (spec §2.6 and the fail-open paths of §2.3) — for a developer's own
  machine only; the launcher prints a banner saying so.
- **production** (``prod|production``): secure, and refuses to start without its keys.
- **anything else, unset included**: secure like production, with keys generated locally
  (``molecule_site.local_keys``). A typo in ``MOLECULE_ENV`` never opens anything.
"""

from __future__ import annotations

import os

DEV_ENVS = frozenset({"dev", "development"})
PRODUCTION_ENVS = frozenset({"prod", "production"})

DEV_MODE_BANNER = (
    "\n"
    "  !! DEV MODE (MOLECULE_ENV={env}): UNSAFE — admin routes are open to anyone who can reach this\n"
    "  !! port, workspaces can register themselves, test tokens are handed out and anonymous A2A\n"
    "  !! calls are served. Never expose this instance; unset MOLECULE_ENV or set ADMIN_TOKEN.\n"
)


def molecule_env() -> str:
    return (os.environ.get("MOLECULE_ENV") or "").strip().lower()


def is_production(env: str) -> bool:
    return env in PRODUCTION_ENVS


def is_dev_mode(env: str, admin_token: str | None) -> bool:
    """Dev mode exactly as the original defines it: a dev env name and no ADMIN_TOKEN."""
    return env in DEV_ENVS and not admin_token

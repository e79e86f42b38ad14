"""Adapter registry (spec/runtime.md §3.2).

`get_adapter(runtime)` returns the `Adapter` class for a runtime name. `ADAPTER_MODULE`, when
set, overrides the lookup (the template-image convention: `ENV ADAPTER_MODULE=adapter`).
Built-in adapters are packages under `molecule_runtime.adapters.<name>` with the same file set
(`__init__.py` exporting `Adapter`, `adapter.py`, `executor.py`) and their own tests.
"""

from __future__ import annotations

import importlib
import os

# runtime name -> module exporting `Adapter`. The LLM adapters import their SDKs lazily (one
# extra each, `molecule-runtime[<runtime>]`), so listing them costs nothing.
BUILTIN_ADAPTERS: dict[str, str] = {
    "echo": "molecule_runtime.adapters.echo",
    "openai": "molecule_runtime.adapters.openai",
    "langgraph": "molecule_runtime.adapters.langgraph",
    "deepagents": "molecule_runtime.adapters.deepagents",
    "claude-code": "molecule_runtime.adapters.claude_code",
    "crewai": "molecule_runtime.adapters.crewai",
    "autogen": "molecule_runtime.adapters.autogen",
    "openclaw": "molecule_runtime.adapters.openclaw",
    "hermes": "molecule_runtime.adapters.hermes",
    "google-adk": "molecule_runtime.adapters.google_adk",
    "cli": "molecule_runtime.adapters.cli",
}
# the seed's default runtime (config.yaml without `runtime:`; spec §1.1)
DEFAULT_RUNTIME = "langgraph"


class AdapterNotFound(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def adapter_module_for(runtime: str, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    override = (env.get("ADAPTER_MODULE") or "").strip()
    if override:
        return override
    key = (runtime or "").strip().replace("_", "-") or DEFAULT_RUNTIME
    module = BUILTIN_ADAPTERS.get(key) or BUILTIN_ADAPTERS.get(key.replace("-", "_"))
    if module is None:
        raise AdapterNotFound(
            f"no adapter installed for runtime '{runtime}' (available: {', '.join(sorted(BUILTIN_ADAPTERS))}; "
            "or set ADAPTER_MODULE)"
        )
    return module


def get_adapter(runtime: str, env: dict[str, str] | None = None) -> type:
    """Import the adapter module for `runtime` (or ADAPTER_MODULE) and return its `Adapter`.

    Raises AdapterNotFound, ImportError (propagated from the module) or AttributeError.
    """
    module_name = adapter_module_for(runtime, env)
    module = importlib.import_module(module_name)
    try:
        return module.Adapter
    except AttributeError:
        raise AttributeError(f"adapter module '{module_name}' has no 'Adapter' attribute") from None


def list_adapters() -> list[dict]:
    out = []
    for name, module_name in sorted(BUILTIN_ADAPTERS.items()):
        cls = importlib.import_module(module_name).Adapter
        out.append({"name": cls.name(), "display_name": cls.display_name(),
                    "description": cls.description(), "config_schema": cls().get_config_schema()})
    return out

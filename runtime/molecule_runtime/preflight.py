"""Preflight checks (spec/runtime.md §2.5): a report with failures and warnings.

`ok` means no failures. The CLI prints `render_preflight_report(report)` and exits non-zero
when there is a failure, so the message names exactly what is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import AdapterNotFound, get_adapter
from .config import WorkspaceConfig


@dataclass
class PreflightIssue:
    title: str
    detail: str
    fix: str = ""


@dataclass
class PreflightReport:
    failures: list[PreflightIssue] = field(default_factory=list)
    warnings: list[PreflightIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _check_adapter(config: WorkspaceConfig, env, report: PreflightReport, smoke_mode: bool = False) -> None:
    source = f"ADAPTER_MODULE={env['ADAPTER_MODULE']}" if env.get("ADAPTER_MODULE") else f"runtime '{config.runtime}'"
    try:
        adapter_cls = get_adapter(config.runtime, env)
    except AdapterNotFound as exc:
        report.failures.append(PreflightIssue("No adapter installed", str(exc),
                                              "Set `runtime:` to an installed adapter or set ADAPTER_MODULE"))
        return
    except AttributeError as exc:
        report.failures.append(PreflightIssue("Adapter module has no Adapter", str(exc),
                                              "Export `Adapter = <BaseAdapter subclass>` from the module"))
        return
    except Exception as exc:
        report.failures.append(PreflightIssue("Adapter import failed", f"{source}: {exc!r}",
                                              "Install the adapter's dependencies or fix ADAPTER_MODULE"))
        return
    try:
        name = adapter_cls.name()
    except Exception as exc:
        report.failures.append(PreflightIssue("Adapter name() failed", f"{source}: {exc!r}"))
        return
    if not isinstance(name, str) or not name:
        report.failures.append(PreflightIssue("Adapter name() is invalid", f"{source}: got {name!r}"))
        return
    if name != config.runtime:
        report.warnings.append(PreflightIssue(
            "Runtime drift", f"config runtime '{config.runtime}' but the adapter is '{name}' (the adapter wins)"))
    checks = getattr(adapter_cls, "preflight_checks", None)
    if checks is None:
        return
    try:
        issues = adapter_cls().preflight_checks(config, env)
    except Exception as exc:
        report.failures.append(PreflightIssue("Adapter preflight failed", f"{source}: {exc!r}"))
        return
    for check in issues or []:
        issue = PreflightIssue(check.title, check.detail, check.fix)
        (report.warnings if smoke_mode and check.demote_in_smoke else report.failures).append(issue)


def run_preflight(config: WorkspaceConfig, config_path: str | Path | None = None, *,
                  env: dict[str, str] | None = None, smoke_mode: bool = False) -> PreflightReport:
    env = os.environ if env is None else env
    config_dir = Path(config_path) if config_path is not None else config.config_path
    if config_dir.suffix in (".yaml", ".yml"):
        config_dir = config_dir.parent
    report = PreflightReport()

    _check_adapter(config, env, report, smoke_mode)

    port = config.a2a.port
    if not (1 <= port <= 65535):
        report.failures.append(PreflightIssue("Invalid a2a.port", f"a2a.port is {port}; it must be 1..65535",
                                              "Set a2a.port in config.yaml to a valid TCP port"))

    rc = config.runtime_config
    missing = [name for name in rc.required_env if not env.get(name)]
    for name in missing:
        issue = PreflightIssue("Missing required env var", f"{name} is not set (runtime_config.required_env)",
                               f"Set {name} via the secrets API")
        (report.warnings if smoke_mode else report.failures).append(issue)

    if rc.auth_token_file:
        token_file = Path(rc.auth_token_file)
        if not token_file.is_absolute():
            token_file = config_dir / token_file
        env_ok = bool(rc.auth_token_env and env.get(rc.auth_token_env))
        required_ok = bool(rc.required_env) and not missing
        if not token_file.exists() and not env_ok and not required_ok:
            report.failures.append(PreflightIssue(
                "Missing auth token", f"runtime_config.auth_token_file {token_file} does not exist and no token env var is set",
                f"Create {token_file} or set {rc.auth_token_env or 'the auth token env var'}"))

    for rel in config.effective_prompt_files:
        if not (config_dir / rel).is_file():
            report.warnings.append(PreflightIssue("Missing prompt file", f"{rel} not found in {config_dir}"))

    for skill in config.skills:
        if not (config_dir / "skills" / skill / "SKILL.md").is_file():
            report.warnings.append(PreflightIssue("Missing skill", f"skills/{skill}/SKILL.md not found"))
    return report


def render_preflight_report(report: PreflightReport) -> str:
    """Nothing when clean; otherwise `Preflight checks:` then [FAIL] and [WARN] lines."""
    if not report.failures and not report.warnings:
        return ""
    lines = ["Preflight checks:"]
    for issue in report.failures:
        lines.append(f"[FAIL] {issue.title}: {issue.detail}")
        if issue.fix:
            lines.append(f"  Fix: {issue.fix}")
    for issue in report.warnings:
        lines.append(f"[WARN] {issue.title}: {issue.detail}")
    return "\n".join(lines)

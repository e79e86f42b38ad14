"""Schemathesis against the live platform, from its own ``/api/schema/`` (``-m fuzz``).

The whole platform (web + worker + beat, secure mode, the admin token set) runs on a fresh
database; every operation of the schema gets a bounded number of generated requests, as three
principals: a workspace's own bearer on its own workspace, the admin on that workspace, and the
admin with generated path values. Every answer must be no server error, conform to the schema
(status, content type, body, headers; an operation that declares auth refuses a request
without it) and keep the wire conventions: compact JSON, errors as ``{"error": "..."}``, gin's
plain-text 404.

Two more phases: **negative** data (schemathesis breaks the schema on purpose: wrong types,
missing fields, values out of range), which must be refused with a 4xx; and **stateful**
sequences along the links schemathesis infers (create → use → delete), where a resource just
created can be read back and one just deleted is gone.

``FUZZ_EXAMPLES`` (default 15) is the number of examples per operation and principal (and of
negative examples per operation); ``FUZZ_STATEFUL_SCENARIOS`` (default 40) the number of
stateful scenarios, each at most 8 steps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections import defaultdict

import httpx
import pytest
from django.conf import settings
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import initialize
from hypothesis import settings as hypothesis_settings

from molecule_site.tests.launch import platform_on_fresh_database

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.generation.stateful.state_machine import StepInput  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

ADMIN = "fuzz-admin-token-0123456789abcdef0123456789abcdef"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
STATEFUL_SCENARIOS = int(os.environ.get("FUZZ_STATEFUL_SCENARIOS", "40"))
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, ignored_auth]


def declared_server_errors(operation) -> set[int]:
    """The 5XX the schema names for this operation by status (an agent unreachable behind the
    proxy, no provisioner to restart with): answers by design. ``default`` does not count, and
    500 never does."""
    return {int(code) for code in operation.definition.raw["responses"] if code.isdigit() and 501 <= int(code) < 600}


def special_error_body(operation, status: int) -> bool:
    """Whether the schema gives this status a body of its own rather than ``{"error": …}``
    (e.g. ``GET /workspaces/:id/state``'s 404 ``{"workspace_id":…,"deleted":true}``, spec §5.6)."""
    declared = operation.definition.raw["responses"].get(str(status))
    return declared is not None and "$ref" not in declared  # Error and NotFound are references


def wire_problem(response, operation, allowed_server_errors: set[int]) -> str | None:
    """What in ``response`` breaks spec §0 or is a server error (None: nothing)."""
    status = response.status_code
    content_type = (response.headers.get("content-type") or [""])[0]
    body = response.content or b""
    if status >= 500 and status not in allowed_server_errors:
        return f"server error {status}: {body[:300]!r}"
    if content_type.startswith("application/json") and body:
        try:
            data = json.loads(body)
        except ValueError:
            return f"invalid JSON: {body[:200]!r}"
        compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        if compact != body:
            return f"JSON is not compact: {body[:200]!r}"
        if status >= 400 and not special_error_body(operation, status) and not (isinstance(data, dict) and isinstance(data.get("error"), str)):
            return f"{status} error body is not {{\"error\": …}}: {body[:200]!r}"
    elif status == 404 and content_type.startswith("text/plain") and body != b"404 page not found":
        return f"plain 404 that is not gin's: {body[:200]!r}"
    elif status >= 400 and not content_type.startswith(("application/json", "text/plain")):
        return f"{status} answered as {content_type!r}: {body[:200]!r}"
    return None


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    # writes of the template routes land in copies, never in the checkout
    for name, source in (("configs", settings.CONFIGS_DIR), ("org-templates", settings.ORG_TEMPLATES_DIR)):
        shutil.copytree(source, home / name)
    (home / "plugins").mkdir()
    with platform_on_fresh_database(
        home, redis_db=15, ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="none", RATE_LIMIT="1000000",
        CONFIGS_DIR=str(home / "configs"), ORG_TEMPLATES_DIR=str(home / "org-templates"),
        PLUGINS_DIR=str(home / "plugins"),
    ) as launch:
        yield launch


@pytest.fixture(scope="module")
def target(platform):
    """An external workspace and its own token (the bearer of the workspace principal)."""
    created = httpx.post(f"{platform.url}/workspaces", headers={"Authorization": f"Bearer {ADMIN}"},
                         json={"name": "Fuzz target", "external": True}, timeout=30)
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["connection"]["auth_token"]


def fuzz(platform, token: str, workspace_id: str | None,
         mode: GenerationMode = GenerationMode.POSITIVE) -> dict[str, list[str]]:
    """Every operation × EXAMPLES generated cases; the problems found, by operation. Negative
    cases must also be refused (schemathesis' ``negative_data_rejection``)."""
    checks = CHECKS if mode is GenerationMode.POSITIVE else [*CHECKS, negative_data_rejection]
    schema = schemathesis.openapi.from_url(f"{platform.url}/api/schema/?format=json")
    problems: dict[str, list[str]] = defaultdict(list)
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 80
    exercised = 0
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        allowed_server_errors = declared_server_errors(operation)

        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case):
            if workspace_id and "workspace_id" in (case.path_parameters or {}) and (
                    mode is GenerationMode.POSITIVE or is_uuid(case.path_parameters["workspace_id"])):
                case.path_parameters["workspace_id"] = workspace_id  # a negated (non-UUID) id stays
            response = case.call(base_url=platform.url, headers=headers, timeout=30)
            problem = wire_problem(response, operation, allowed_server_errors)
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 — collected; the test fails below with all of them
                problem = problem or " ".join(str(exc).split())[:600]
            if problem and len(problems[label]) < 3:
                problems[label].append(f"{problem}\n      reproduce: {case.as_curl_command(headers)}")

        try:
            run()
        except Unsatisfiable:  # nothing in this operation can be negated (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE, label
            continue
        exercised += 1
    assert exercised > 60, f"only {exercised} operations were fuzzed"
    return dict(problems)


def is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _report(problems: dict[str, list[str]], platform) -> str:
    """The problems by operation, then the platform's first server-side traceback (a 500's cause)."""
    found = "\n".join(f"{label}:\n    " + "\n    ".join(each) for label, each in sorted(problems.items()))
    output = platform.output
    start = output.find("Traceback (most recent call last)")
    return found if start < 0 else f"{found}\n\nplatform log:\n{output[start:start + 4000]}"


def test_fuzz_as_the_workspace_on_its_own_workspace(platform, target):
    workspace_id, token = target
    problems = fuzz(platform, token, workspace_id)
    assert not problems, _report(problems, platform)


def test_fuzz_as_the_admin_on_a_real_workspace(platform, target):
    problems = fuzz(platform, ADMIN, target[0])
    assert not problems, _report(problems, platform)


def test_fuzz_as_the_admin_with_generated_path_values(platform, target):
    problems = fuzz(platform, ADMIN, None)
    assert not problems, _report(problems, platform)


def test_fuzz_with_invalid_data_every_operation_refuses_it_with_a_4xx(platform, target):
    """Negative generation: bodies, queries and path values that break the schema (wrong types,
    missing required fields, out-of-range values). Each is refused with a 4xx in the wire's
    error shape, never a 5xx and never a 2xx that takes the bad data."""
    problems = fuzz(platform, ADMIN, target[0], mode=GenerationMode.NEGATIVE)
    assert not problems, _report(problems, platform)


# Spec §5.3: a deleted workspace is a row with status ``removed``, still returned (no 404, no 410)
REMOVED_ROWS_STAY_READABLE = {"GET /workspaces/{workspace_id}"}


def test_fuzz_stateful_create_use_delete(platform, target):
    """Sequences along the links schemathesis infers from the schema (a ``POST /workspaces``'s
    ``id`` feeds ``GET``/``PATCH``/``DELETE /workspaces/{id}`` and the workspace's sub-resources):
    every step keeps the conventions above, a resource just created can be read back, and one
    just deleted is gone (404) to every later step."""
    schema = schemathesis.openapi.from_url(f"{platform.url}/api/schema/?format=json")
    headers = {"Authorization": f"Bearer {ADMIN}"}
    problems: dict[str, list[str]] = defaultdict(list)
    linked_steps: set[str] = set()

    machine = schema.as_state_machine()
    create_workspace = schema["/workspaces"]["POST"]

    class Workflow(machine):
        # POST /workspaces is no root of schemathesis' own (its parent_id names a resource nothing
        # produces), so each scenario starts from one real create; its links take it from there
        @initialize(target=machine.bundles["POST /workspaces -> 201"])
        def create_a_workspace(self):
            case = create_workspace.Case(body={"name": "Stateful fuzz", "external": True}, media_type="application/json")
            step = StepInput.initial(case)
            self.recorder.record_case(case=case)  # as schemathesis' own root steps do
            self.control.record_step(step, self.recorder)
            return self._step(step)

        def step(self, input):
            if input.transition is not None:
                linked_steps.add(f"{input.transition.id}")
            return super().step(input)

        def get_call_kwargs(self, case):
            return {"base_url": platform.url, "headers": headers, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            operation = case.operation
            label = f"{operation.method.upper()} {operation.path}"
            problem = wire_problem(response, operation, declared_server_errors(operation))
            stateful_checks = [ensure_resource_availability]
            if label not in REMOVED_ROWS_STAY_READABLE:
                stateful_checks.append(use_after_free)
            try:
                case.validate_response(response, checks=[*CHECKS, *stateful_checks],
                                       headers=headers, transport_kwargs=kwargs or None, recorder=self.recorder)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 — collected; reported below
                problem = problem or " ".join(str(exc).split())[:600]
            if problem and len(problems[label]) < 3:
                problems[label].append(f"{problem}\n      reproduce: {case.as_curl_command(headers)}")

    Workflow.run(settings=hypothesis_settings(
        max_examples=STATEFUL_SCENARIOS, stateful_step_count=8, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck)))
    # the runs did walk links: from a created workspace onwards and into deletions (how far past
    # them depends on what the earlier phases left in the database)
    sources = {step.split(" -> ")[0] for step in linked_steps}
    targets = {step.rsplit(" -> ", 1)[-1] for step in linked_steps}
    assert "POST /workspaces" in sources, sorted(linked_steps)
    assert any(target.startswith("DELETE ") for target in targets), sorted(linked_steps)
    assert len(linked_steps) >= 20, sorted(linked_steps)
    assert not problems, _report(problems, platform)


CHROMIUM = "/usr/bin/chromium"
# Console errors that are no fault of the pages: a failed load is checked below by its answer,
# and ReDoc's "powered by" badge points at its CDN — the CSP refuses it, so nothing leaves.
REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"
NOT_THE_PAGES_FAULT = re.compile(rf"Failed to load resource|'{re.escape(REDOC_BADGE)}' violates")


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason=f"{CHROMIUM} not installed")
@pytest.mark.parametrize("page_path,rendered", [("/api/docs/", ".opblock"), ("/api/redoc/", "[data-section-id]")])
def test_the_readers_render_the_schema_in_a_browser_with_nothing_from_elsewhere(platform, page_path, rendered):
    """Swagger UI and ReDoc, as an operator opens them: the operations render under the page's
    CSP, no console error, and every request the page makes stays on the platform (no CDN)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            requests, errors = [], []
            page.on("request", lambda request: requests.append(request.url))
            answers = []
            page.on("response", lambda response: answers.append((response.url, response.status)))
            page.on("console", lambda message: message.type == "error" and not NOT_THE_PAGES_FAULT.search(message.text)
                    and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(platform.url + page_path)
            page.wait_for_selector(rendered, timeout=30_000)
            assert page.locator(rendered).count() > 50
            assert "Molecule platform API" in page.content()
        finally:
            browser.close()
    assert errors == []
    assert [(url, status) for url, status in answers if status >= 400 and not url.endswith("/favicon.ico")] == []
    local = (platform.url, "data:", "blob:")
    assert answers and all(url.startswith(local) for url, _ in answers), answers
    assert [url for url in requests if not url.startswith(local)] in ([], [REDOC_BADGE]), requests

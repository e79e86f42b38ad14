"""wipe_initial_environ in a fresh interpreter: what /proc/self/environ shows before and after."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/environ is Linux's")

SCRIPT = """
import json, os, subprocess, sys
from molecule_runtime.secret_env import wipe_initial_environ

def initial():
    with open("/proc/self/environ", "rb") as fh:
        return [e.decode() for e in fh.read().split(b"\\0") if e.strip(b"\\0")]

before = initial()
os.environ.pop("GH_TOKEN")  # unset before the wipe: its original bytes must go all the same
first = wipe_initial_environ()
print(json.dumps({
    "before": before, "after": initial(), "first": first, "second": wipe_initial_environ(),
    "os_environ": os.environ.get("OPENAI_API_KEY"),
    "child": subprocess.run(["sh", "-c", 'echo "$OPENAI_API_KEY|$GH_TOKEN|$PLAIN"'], capture_output=True,
                            text=True).stdout.strip(),
}))
"""


def test_secret_values_leave_the_initial_block_and_stay_in_os_environ():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "OPENAI_API_KEY": "sk-wipe-test-value-1",
           "GH_TOKEN": "ghp-wipe-test-value-2", "PLAIN": "not-a-secret"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)

    assert "OPENAI_API_KEY=sk-wipe-test-value-1" in result["before"]
    assert "GH_TOKEN=ghp-wipe-test-value-2" in result["before"]
    assert sorted(result["first"]) == ["GH_TOKEN", "OPENAI_API_KEY"] and result["second"] == []
    after = "\0".join(result["after"])
    assert "sk-wipe-test-value-1" not in after and "ghp-wipe-test-value-2" not in after
    assert "OPENAI_API_KEY=" + "*" * len("sk-wipe-test-value-1") in result["after"]
    assert "PLAIN=not-a-secret" in result["after"]
    assert result["os_environ"] == "sk-wipe-test-value-1"
    assert result["child"] == "sk-wipe-test-value-1||not-a-secret"  # a popped variable stays popped


def test_the_wiped_block_stays_readable_after_the_secret():
    """Readers of /proc/<pid>/environ stop at an empty entry (psutil does): the variables after a
    wiped secret must still be there, or the platform no longer recognises its own runtime (psutil is
    the platform's dependency, in this venv)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "OPENAI_API_KEY": "sk-wipe-test-value-3",
           "WORKSPACE_ID": "ws-after-the-secret"}
    code = ("import json, psutil\nfrom molecule_runtime.secret_env import wipe_initial_environ\n"
            "wipe_initial_environ()\nprint(json.dumps(psutil.Process().environ()))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["WORKSPACE_ID"] == "ws-after-the-secret"
    assert "sk-wipe" not in seen["OPENAI_API_KEY"]


def test_the_trace_exporters_credentials_are_wiped_too():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "LANGFUSE_SECRET_KEY": "sk-lf-wipe-test",
           "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer otlp-wipe-test", "LANGFUSE_PUBLIC_KEY": "pk-lf-public"}
    code = ("import json\nfrom molecule_runtime.secret_env import wipe_initial_environ\n"
            "print(json.dumps(sorted(wipe_initial_environ())))\n"
            "print(open('/proc/self/environ', 'rb').read().decode())\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wiped, environ = out.stdout.split("\n", 1)
    assert json.loads(wiped) == ["LANGFUSE_SECRET_KEY", "OTEL_EXPORTER_OTLP_HEADERS"]
    assert "sk-lf-wipe-test" not in environ and "otlp-wipe-test" not in environ
    assert "LANGFUSE_PUBLIC_KEY=pk-lf-public" in environ  # the public half is no secret

"""Children get allow-listed environments; the platform's own processes can be made undumpable."""

import subprocess
import sys

import pytest
from django.conf import settings

from molecule_site.hardening import NETWORK_HOST_ENV, host_environment

PR_GET_DUMPABLE = 3

# Prints whether this process is dumpable after make_undumpable(), then whether a program it
# starts is (execve resets the flag).
UNDUMPABLE_THEN_EXEC = f"""
import ctypes, subprocess, sys
from molecule_site.hardening import make_undumpable
assert make_undumpable()
print(ctypes.CDLL(None).prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0))
child = "import ctypes; print(ctypes.CDLL(None).prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0))"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout.strip())
"""


def test_host_environment_keeps_only_the_allow_listed_variables(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("ADMIN_TOKEN", "admin-token-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:password@db/molecule")

    assert host_environment()["PATH"] == "/usr/bin:/bin"
    assert not {"ADMIN_TOKEN", "DATABASE_URL", "HTTPS_PROXY"} & set(host_environment())
    network = host_environment(NETWORK_HOST_ENV)
    assert network["HTTPS_PROXY"] == "http://proxy.example:3128" and "PATH" not in network


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_DUMPABLE is Linux's")
def test_an_undumpable_process_starts_dumpable_programs():
    result = subprocess.run([sys.executable, "-c", UNDUMPABLE_THEN_EXEC], cwd=settings.BASE_DIR, check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1"]

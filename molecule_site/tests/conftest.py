"""Fixtures of the platform's end-to-end tests (the ones that start runtimes on the local backend)."""

import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def home(request):
    """A MOLECULE_HOME in /tmp, named after the test module: pytest's tmp_path is closed to the
    runtimes' own users (the local backend runs them as other users when the tests run as root)."""
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").removesuffix("_end_to_end")
    directory = Path(tempfile.mkdtemp(prefix=f"molecule-{prefix}-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)

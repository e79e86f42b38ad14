"""Standing a provisioner backend in for one test.

Backends are the adapters of the provisioner port, so a test may put one of its own in place (a
backend that records what provisioning hands it, or one that fails) to watch the service above
it; everything else stays real.
"""

from __future__ import annotations

import sys

from workspaces import provisioners


def use_backend(monkeypatch, backend):
    """Make ``backend`` the provisioner of every module that imported ``get_provisioner``, for the
    rest of the test (``monkeypatch`` undoes it); returns ``backend``."""
    def stand_in():
        return backend

    stand_in.stands_in = True
    real = provisioners.get_provisioner
    for module in list(sys.modules.values()):
        current = getattr(module, "get_provisioner", None)
        if current is real or getattr(current, "stands_in", False):
            monkeypatch.setattr(module, "get_provisioner", stand_in)
    return backend

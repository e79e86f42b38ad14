"""Molecule workspace agent runtime.

A separate installable package: the platform never imports it; the two share only the HTTP
wire contract (`spec/runtime.md`, `spec/platform-api.md`).
"""

__version__ = "0.1.0"

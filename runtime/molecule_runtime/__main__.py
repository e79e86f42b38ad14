"""`python -m molecule_runtime` = `molecule-runtime`."""

from .main import main

main()

# Two commands on a fresh machine with Python 3.11 and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Tests get their own embedded servers so they never touch the data of `make run`.
TEST_MOLECULE_HOME ?= .molecule/test
PYTEST_ARGS ?=
RUNTIME_PYTEST_ARGS ?=

# The canvas's browser tests drive Debian's Chromium (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium

.PHONY: run test venv clean-embedded

$(VENV)/.installed: requirements.txt runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m molecule_site.launcher

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else echo "make test: $(CHROMIUM) is missing; install it with: sudo apt-get install chromium" >&2; fi

test: $(VENV)/.installed $(CHROMIUM)
	MOLECULE_HOME=$(TEST_MOLECULE_HOME) $(PY) -m molecule_site.embedded exec -- $(PY) -m pytest $(PYTEST_ARGS)
	cd runtime && ../$(PY) -m pytest $(RUNTIME_PYTEST_ARGS)

# Stop the embedded PostgreSQL/Redis of MOLECULE_HOME (default .molecule) if they were left running.
clean-embedded: $(VENV)/.installed
	$(PY) -m molecule_site.embedded stop

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

# Runtimes whose pip extra cannot share the project venv (runtime/pyproject.toml says why): each gets
# an environment of its own, where the local backend runs that runtime and `make test` runs its tests.
RUNTIME_ENVS_DIR := .molecule/runtime-envs
SEPARATE_RUNTIMES := crewai hermes google-adk
RUNTIME_ENVS := $(foreach r,$(SEPARATE_RUNTIMES),$(RUNTIME_ENVS_DIR)/$(r)/.installed)

.PHONY: run test venv runtime-envs clean-embedded

$(VENV)/.installed: requirements.txt runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

$(RUNTIME_ENVS_DIR)/%/.installed: runtime/pyproject.toml
	test -x $(RUNTIME_ENVS_DIR)/$*/bin/python || $(PYTHON) -m venv $(RUNTIME_ENVS_DIR)/$*
	$(RUNTIME_ENVS_DIR)/$*/bin/python -m pip install --quiet --upgrade pip
	$(RUNTIME_ENVS_DIR)/$*/bin/python -m pip install --quiet -e './runtime[$*]' pytest==9.2.0
	touch $@

runtime-envs: $(RUNTIME_ENVS)

run: $(VENV)/.installed $(RUNTIME_ENVS)
	$(PY) -m molecule_site.launcher

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else echo "make test: $(CHROMIUM) is missing; install it with: sudo apt-get install chromium" >&2; fi

test: $(VENV)/.installed $(RUNTIME_ENVS) $(CHROMIUM)
	MOLECULE_HOME=$(TEST_MOLECULE_HOME) $(PY) -m molecule_site.embedded exec -- $(PY) -m pytest $(PYTEST_ARGS)
	cd runtime && ../$(PY) -m pytest $(RUNTIME_PYTEST_ARGS) $(foreach r,$(SEPARATE_RUNTIMES),--ignore=tests/adapters/$(subst -,_,$(r)))
	for r in $(SEPARATE_RUNTIMES); do \
	  (cd runtime && MOLECULE_TEST_RUNTIMES=$$r ../$(RUNTIME_ENVS_DIR)/$$r/bin/python -m pytest $(RUNTIME_PYTEST_ARGS) \
	     tests/adapters/$$(echo $$r | tr - _) tests/test_adapter_contract.py) || exit 1; \
	done

# Stop the embedded PostgreSQL/Redis of MOLECULE_HOME (default .molecule) if they were left running.
clean-embedded: $(VENV)/.installed
	$(PY) -m molecule_site.embedded stop

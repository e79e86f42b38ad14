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

# The npm CLIs some runtimes drive (Claude Code, OpenClaw, Codex), the versions their images get
# (runtime/pyproject.toml [tool.molecule.images]); local runtimes find them on PATH from here.
NPM_DIR := .molecule/npm
NPM_PACKAGES = $(shell $(PYTHON) -c "import tomllib; images = tomllib.load(open('runtime/pyproject.toml', 'rb'))['tool']['molecule']['images']; print(' '.join(sorted({p for i in images.values() for p in i.get('npm', [])})))")

.PHONY: run test venv runtime-envs npm-tools clean-embedded

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

$(NPM_DIR)/.installed: runtime/pyproject.toml
	@command -v npm >/dev/null || { if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null); else echo "make: npm is missing; install it with: sudo apt-get install nodejs npm" >&2; exit 1; fi; }
	@# Node from npm first (openclaw's install refuses an older one), then everything with it on PATH.
	$(if $(filter node@%,$(NPM_PACKAGES)),npm install --prefix $(NPM_DIR) --no-fund --no-audit --loglevel=error $(filter node@%,$(NPM_PACKAGES)))
	PATH="$(CURDIR)/$(NPM_DIR)/node_modules/.bin:$$PATH" npm install --prefix $(NPM_DIR) --no-fund --no-audit --loglevel=error $(filter-out node@%,$(NPM_PACKAGES))
	touch $@

npm-tools: $(NPM_DIR)/.installed

run: $(VENV)/.installed $(RUNTIME_ENVS) $(NPM_DIR)/.installed
	$(PY) -m molecule_site.launcher

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else echo "make test: $(CHROMIUM) is missing; install it with: sudo apt-get install chromium" >&2; fi

test: $(VENV)/.installed $(RUNTIME_ENVS) $(NPM_DIR)/.installed $(CHROMIUM)
	MOLECULE_HOME=$(TEST_MOLECULE_HOME) $(PY) -m molecule_site.embedded exec -- $(PY) -m pytest $(PYTEST_ARGS)
	cd runtime && ../$(PY) -m pytest $(RUNTIME_PYTEST_ARGS) $(foreach r,$(SEPARATE_RUNTIMES),--ignore=tests/adapters/$(subst -,_,$(r)))
	for r in $(SEPARATE_RUNTIMES); do \
	  (cd runtime && MOLECULE_TEST_RUNTIMES=$$r ../$(RUNTIME_ENVS_DIR)/$$r/bin/python -m pytest $(RUNTIME_PYTEST_ARGS) \
	     tests/adapters/$$(echo $$r | tr - _) tests/test_adapter_contract.py) || exit 1; \
	done

# Stop the embedded PostgreSQL/Redis of MOLECULE_HOME (default .molecule) if they were left running.
clean-embedded: $(VENV)/.installed
	$(PY) -m molecule_site.embedded stop

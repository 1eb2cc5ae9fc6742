# ML GitOps template: `make demo` bakes and runs the demo project; `make test` runs the template's tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROJECT_TEMPLATE := {{cookiecutter.project_slug}}
# The same uv bootstrap as the generated project's Makefile: a uv on PATH is used; without one, this release
# is installed from PyPI into a small virtual environment of its own (the system Python is never touched).
UV_VERSION := 0.13.9
UV_HOME ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/uv-bootstrap/$(UV_VERSION)
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_HOME)/bin/uv)

.DEFAULT_GOAL := help
.PHONY: help install lock demo test test-fast lint benchmark benchmark-install clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# The template's environment holds the tools in requirements-dev.txt and exactly what a baked project locks
# (its uv.lock, exported for this interpreter), nothing else: one environment serves every baked project.
# Compiled to bytecode once, here: where PYTHONDONTWRITEBYTECODE is set, each of the many processes the
# baked suites start would otherwise compile MLflow, scikit-learn and SHAP again (about 12 s instead of 4 s).
$(STAMP): requirements-dev.txt $(PROJECT_TEMPLATE)/pyproject.toml $(PROJECT_TEMPLATE)/uv.lock tools/project_requirements.py | $(UV)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(UV) venv --python $(PYTHON) $(VENV)
	UV=$(UV) $(PYTHON) tools/project_requirements.py export > $(VENV)/project-requirements.txt
	$(UV) pip install --exact --compile-bytecode --python $(BIN)/python -r requirements-dev.txt -r $(VENV)/project-requirements.txt
	touch $@

$(UV_HOME)/bin/uv:
	@$(PYTHON) -m venv $(UV_HOME) || { echo "Could not create a virtual environment for uv: on Debian or Ubuntu install python3-venv, or install uv yourself (it is then used from PATH)." >&2; exit 1; }
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(STAMP) ## create .venv with the template's tools and the generated project's locked dependencies

lock: | $(UV) ## re-lock the generated project's uv.lock after changing its pyproject.toml (needs .venv)
	@test -x $(BIN)/cookiecutter || { echo "Run make install first: locking bakes a project with cookiecutter." >&2; exit 1; }
	UV=$(UV) $(BIN)/python tools/project_requirements.py lock

demo: $(STAMP) ## bake the default project into build/demo and run its whole local loop
	rm -rf build/demo build/.bake
	$(BIN)/cookiecutter --no-input --output-dir build/.bake .
	mv build/.bake/* build/demo && rm -rf build/.bake
	$(MAKE) -C build/demo run UV=$(UV) BOOTSTRAP_PYTHON=$(PYTHON)
	@echo
	@echo "Demo project: $(abspath build/demo)"
	@echo "MLflow store: $(abspath build/demo/mlflow.db) (artifacts in $(abspath build/demo/mlartifacts))"

# Two workers; a worker left idle takes queued tests from the other (worksteal), so the few long bakes
# that run a generated suite never queue behind each other on one worker while the other sits idle.
# PYTHONDONTWRITEBYTECODE is cleared, as a baked project's `make test` clears it: pytest keeps the test
# modules it rewrites as bytecode instead of rewriting them in every worker of every baked suite.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest

test: $(STAMP) ## run every template test, the slow end-to-end bakes included
	$(PYTEST) -n 2 --dist worksteal --durations=15

test-fast: $(STAMP) ## run the template tests without the slow end-to-end bakes
	$(PYTEST) -n 2 --dist worksteal -m "not slow"

lint: $(STAMP) ## lint the template's own Python and workflows
	$(BIN)/ruff check hooks tests tools benchmarks
	$(BIN)/ruff format --check hooks tests tools benchmarks
	$(BIN)/zizmor --offline .github/workflows
	$(BIN)/actionlint .github/workflows/*.yml

benchmark: $(STAMP) ## framework overhead vs a bare script; evidence cost vs training at 10k-1M rows
	$(BIN)/python benchmarks/framework_overhead.py
	$(BIN)/python benchmarks/evidence_cost.py

benchmark-install: $(STAMP) ## cold and warm install of a baked project, pip against uv (downloads from PyPI)
	$(BIN)/python benchmarks/install.py

clean: ## remove build outputs (keeps .venv)
	rm -rf build .pytest_cache

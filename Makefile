# ML GitOps template: `make demo` bakes and runs the demo project; `make test` runs the template's tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROJECT_TEMPLATE := {{cookiecutter.project_slug}}

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast lint benchmark clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt $(PROJECT_TEMPLATE)/pyproject.toml tools/project_requirements.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python tools/project_requirements.py > $(VENV)/project-requirements.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -r $(VENV)/project-requirements.txt
	touch $@

install: $(STAMP) ## create .venv with the template's tools and the generated project's dependencies

demo: $(STAMP) ## bake the default project into build/demo and run its whole local loop
	rm -rf build/demo build/.bake
	$(BIN)/cookiecutter --no-input --output-dir build/.bake .
	mv build/.bake/* build/demo && rm -rf build/.bake
	$(MAKE) -C build/demo run VENV=$(abspath $(VENV))
	@echo
	@echo "Demo project: $(abspath build/demo)"
	@echo "MLflow store: $(abspath build/demo/mlflow.db) (artifacts in $(abspath build/demo/mlartifacts))"

test: $(STAMP) ## run every template test, the slow end-to-end bakes included
	$(BIN)/python -m pytest -n 2

test-fast: $(STAMP) ## run the template tests without the slow end-to-end bakes
	$(BIN)/python -m pytest -n 2 -m "not slow"

lint: $(STAMP) ## lint the template's own Python and workflows
	$(BIN)/ruff check hooks tests tools benchmarks
	$(BIN)/ruff format --check hooks tests tools benchmarks
	$(BIN)/zizmor --offline .github/workflows
	$(BIN)/actionlint .github/workflows/*.yml

benchmark: $(STAMP) ## framework overhead vs a bare script; evidence cost vs training at 10k-1M rows
	$(BIN)/python benchmarks/framework_overhead.py
	$(BIN)/python benchmarks/evidence_cost.py

clean: ## remove build outputs (keeps .venv)
	rm -rf build .pytest_cache

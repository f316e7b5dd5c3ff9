# pruning-lab: make venv · make lab · make test · make book · make clean
# Uses the python3 on PATH to create .venv; every dependency is declared in pyproject.toml.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv lab data test e2e book clean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changes (the stamp is newer than it otherwise).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[notebooks,audio,dev,deploy]'
	touch $@

# JupyterLab on notebooks/: says which Fashion-MNIST the lessons will use, then the URL to open.
# As root (a container, a course VM) it adds --allow-root. Another port: make lab LAB_PORT=8890;
# extra options: LAB_ARGS='--ip=0.0.0.0 --no-browser'.
LAB_PORT ?= 8888
LAB_ARGS ?=
lab: venv
	@$(BIN)/python -m pruning_lib.data --which
	@token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))'); \
	root_flag=""; if [ "$$(id -u)" = 0 ]; then root_flag="--allow-root"; fi; \
	echo "make lab: open http://127.0.0.1:$(LAB_PORT)/lab?token=$$token"; \
	JUPYTER_TOKEN=$$token exec $(BIN)/jupyter lab notebooks/ --port=$(LAB_PORT) \
		--ServerApp.port_retries=0 $$root_flag $(LAB_ARGS)

# The full Fashion-MNIST (60,000 / 10,000): the Debian package when root, else a torchvision download
# when PRUNING_DOWNLOAD=1, else a message saying how (the lessons then use the vendored subset).
data: venv
	$(BIN)/python -m pruning_lib.data --get

# Lint, fast tests, then every notebook in FAST mode: the lessons and the instructors' solutions (whose
# asserted checkers fail the run if a model answer is rejected; skipped where a student release left
# solutions/ out). No notebooks is a failure, and so is
# pytest's exit code 5 ("no tests collected"): make stops on any non-zero exit.
test: venv
	$(BIN)/ruff check pruning_lib tests benchmarks scripts
	$(BIN)/pytest -q -m "not slow"
	@ls notebooks/*.ipynb >/dev/null 2>&1 || { echo "make test: no notebooks in notebooks/" >&2; exit 1; }
	@$(BIN)/python -m pruning_lib.data --which
	rc=0; PRUNING_FAST=1 $(BIN)/pytest -q --nbmake --nbmake-timeout=900 notebooks/ $(wildcard solutions) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no notebooks" >&2; fi; \
	exit $$rc

# Drive JupyterLab in headless Chromium (Debian's package; never `playwright install`): open each
# lesson, run it in FAST mode, move its slider, check the read-out. Screenshots: build/e2e/.
e2e: venv
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else echo "make e2e: /usr/bin/chromium is missing; install the Debian package chromium" >&2; exit 1; fi; \
	fi
	PRUNING_E2E=1 $(BIN)/pytest -q -p no:randomly tests/e2e

# The course site in build/book/: an index, every lesson executed (default mode; `make book FAST=1`
# runs them with PRUNING_FAST=1 to check the site in a few minutes), the docs pages, a local MathJax.
# Prints each lesson as it starts and ends; wall times also in build/book_times.txt.
book: venv
	@ls notebooks/*.ipynb >/dev/null 2>&1 || { echo "make book: no notebooks in notebooks/" >&2; exit 1; }
	@$(BIN)/python -m pruning_lib.data --which 2>/dev/null || true
	$(BIN)/python scripts/build_book.py $(if $(filter 1 yes true,$(FAST)),--fast,)

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

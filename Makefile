# Two commands: `make run` (set up and start the web app) and `make test` (set up and run every test).
# Both create or refresh .venv and are quick when nothing changed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
OFFLINE_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 \
	KERAS_HOME=$(CURDIR)/.cache/keras CAPTIONER_CACHE_DIR=$(CURDIR)/.cache/captioner
# Tests turn oneDNN's reordered float sums off so results repeat exactly; benchmarks keep it on.
TEST_ENV := $(OFFLINE_ENV) TF_ENABLE_ONEDNN_OPTS=0
PYTEST_ARGS ?=
DOCS_OUT ?= docs/_build/html
SPHINXOPTS ?=
# make test builds the docs strictly: any warning (a broken link or reference, a failed generation) fails it.
STRICT_DOCS := -W --keep-going -n

.PHONY: install run dev test test-backend-torch audit docs screenshots bench system-packages clean

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: its CPU wheel; a looser requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# System packages the tests use (Java for COCO metrics, Chromium for browser tests, Graphviz for
# model diagrams); installed only where missing and only when we may (root).
system-packages:
	@bash scripts/system-packages.sh

run: install
	$(PY) -m captioner serve --host $(HOST) --port $(PORT)

# The contributors' loop: Flask's development server with reload (never for production).
dev: install
	FLASK_APP=captioner.web:create_app $(VENV)/bin/flask run --debug --host $(HOST) --port $(PORT)

test: system-packages install
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-backend-torch
	$(MAKE) --no-print-directory docs SPHINXOPTS="$(STRICT_DOCS)"
	$(MAKE) --no-print-directory audit

# The documentation site (Sphinx, MyST Markdown, Furo) into docs/_build/html; reference pages are generated
# from the code at every build.
docs: install
	$(OFFLINE_ENV) $(PY) -m sphinx -b html -q $(SPHINXOPTS) docs $(DOCS_OUT)
	@echo "documentation: $(DOCS_OUT)/index.html"

# Known vulnerabilities in the pinned requirements (pip-audit); says so plainly when it cannot check.
audit: install
	$(PY) scripts/audit-requirements.py

# The model and decoding tests again on Keras's PyTorch backend.
test-backend-torch: install
	$(TEST_ENV) KERAS_BACKEND=torch $(PY) -m pytest -m backend $(PYTEST_ARGS)

# The browser tests again, writing their screenshots into docs/screenshots/ (make test keeps them in a
# temporary folder, so it leaves the tree as it was).
screenshots: system-packages install
	$(TEST_ENV) $(PY) -m pytest tests/browser --screenshots docs/screenshots $(PYTEST_ARGS)

bench: install
	$(OFFLINE_ENV) $(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .cache

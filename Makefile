# The course's commands. `make course` and `make test` each set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
SITE_VENV ?= .venv-site

.PHONY: setup course test test-fast lessons check-lessons timings download site site-setup browser bench clean

setup: $(VENV)/.ftlib-installed

$(VENV)/.ftlib-installed: requirements.txt requirements-dev.txt requirements-offline.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -c constraints.txt torch
	$(PIP) -c constraints.txt -r requirements-dev.txt
	$(PIP) --no-deps -c constraints.txt -r requirements-offline.txt
	$(PIP) --no-deps -e .
	touch $@

course: setup  ## set up, then open the lessons in JupyterLab
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) lessons/

test: setup site-setup browser  ## set up, then run every test and execute every notebook (smoke profile, offline)
	$(PY) -m pytest

test-fast: setup  ## unit tests only, no notebooks
	$(PY) -m pytest -m "not notebooks"

lessons: setup  ## regenerate lessons/ from solutions/ (after editing a solution notebook)
	$(PY) -m tools.course build

timings: setup  ## execute every solution notebook in PROFILE (default lite) and report times
	$(PY) -m tools.course run --profile $(or $(PROFILE),lite) --out build/executed-$(or $(PROFILE),lite)

download: setup  ## pre-download the full profile's hub models (CACHE=folder to choose where), then check they load offline
	$(PY) -m tools.course download --profile full $(if $(CACHE),--cache $(CACHE))

site-setup: $(SITE_VENV)/.installed

$(SITE_VENV)/.installed: requirements-site.txt
	$(PYTHON) -m venv $(SITE_VENV)
	$(SITE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-site.txt
	touch $@

site: setup site-setup  ## build the course site (Jupyter Book) into build/book/_build/html, with the outputs of `make timings`
	$(PY) -m tools.book build/book --executed build/executed-$(or $(PROFILE),lite)
	$(SITE_VENV)/bin/jupyter-book build --quiet build/book
	@echo "open build/book/_build/html/index.html"

browser:  ## Debian's chromium for the browser tests (installs it when root or sudo is available)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	  else echo "no chromium and no way to install it: the browser tests will be skipped"; fi; }

bench: setup  ## the benchmark suite: bench/results.json and bench/results.md (idle machine, about 20 min + lessons)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache

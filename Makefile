# The course's commands. `make course` and `make test` each set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: setup course test test-fast lessons check-lessons timings download clean

setup: $(VENV)/.ftlib-installed

$(VENV)/.ftlib-installed: requirements.txt requirements-dev.txt requirements-offline.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -c constraints.txt torch
	$(PIP) -c constraints.txt -r requirements-dev.txt
	$(PIP) --no-deps -c constraints.txt -r requirements-offline.txt
	$(PIP) --no-deps -e .
	touch $@

course: setup  ## set up, then open the lessons in JupyterLab
	$(VENV)/bin/jupyter lab lessons/

test: setup  ## set up, then run every test and execute every notebook (smoke profile, offline)
	$(PY) -m pytest

test-fast: setup  ## unit tests only, no notebooks
	$(PY) -m pytest -m "not notebooks"

lessons: setup  ## regenerate lessons/ from solutions/ (after editing a solution notebook)
	$(PY) -m ftlib.course build

timings: setup  ## execute every solution notebook in PROFILE (default lite) and report times
	$(PY) -m ftlib.course run --profile $(or $(PROFILE),lite) --out build/executed-$(or $(PROFILE),lite)

download: setup  ## pre-download the full profile's hub models (CACHE=folder to choose where), then check they load offline
	$(PY) -m ftlib.course download --profile full $(if $(CACHE),--cache $(CACHE))

clean:
	rm -rf build .pytest_cache

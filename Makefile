# Two entry points (see README): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv on first use and install everything the project needs into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision: the tested versions; another build: make TORCH='torch==X torchvision==Y'
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv test test-slow test-all demo clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: venv
	$(PY) -m pytest

test-slow: venv
	$(PY) -m pytest -m slow

test-all: venv
	$(PY) -m pytest -m ''

demo: venv
	$(VENV)/bin/pixart-bench demo

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

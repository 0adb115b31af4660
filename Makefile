# ra2: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out
# demo: shipped detectors + regressors trained in minutes; smoke: tiny models (tests); cpu: hours (docs/pipeline.md)
DEMO_PROFILE ?= demo
EXTRA ?= cpu

.PHONY: setup test test-all test-slow demo bench image image-test clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRA),test]"
	touch $@

setup: $(VENV)/.installed

# Two tiers (README, "Tests"): test = the fast tier (pyproject's default marker expression: not thorough, not
# slow; at most 4 minutes on 2 cores); test-all = everything, the fast and the thorough tier (what CI runs).
test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "" --durations=25

test-slow: setup
	$(PY) -m pytest -q -m slow

demo: setup
	$(PY) -m ra2 demo --out $(DEMO_OUT) --profile $(DEMO_PROFILE)

bench: setup
	$(PY) bench/run_all.py

# The submission image (docker/image.sh: starts a Docker daemon / a local base stand-in where none is there).
# image-test: hadolint, build, run it on a small phantom challenge as the organisers did, check /output.
image:
	docker/image.sh build

image-test: setup
	PY=$(abspath $(PY)) docker/image.sh test

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

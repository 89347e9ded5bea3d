# openk2: two commands on a fresh machine.
#   make test  - set up .venv and run ruff, the import contracts and pytest
#   make demo  - set up .venv and run the main job on the embedded default
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: setup browser test lint demo clean

setup: $(STAMP)

# The web chat page is tested in a real headless Chromium (Debian's package). Installing it needs
# root and the Debian mirror; without it the browser test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium could not be installed: the web chat browser test will be skipped"

# torch goes in first and pinned: the local CPU wheel. Anything later that asks for torch finds
# it satisfied and pip never reaches for a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

test: lint browser
	$(VENV)/bin/pytest

demo: setup
	$(VENV)/bin/openk2 generate --model tiny --prompt "def add(a, b):" --max-new-tokens 16

clean:
	rm -rf $(VENV)

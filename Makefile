# openk2: two commands on a fresh machine.
#   make test  - set up .venv and run ruff, the import contracts and pytest
#   make demo  - set up .venv and run the main job on the embedded default
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: setup browser sandbox test lint demo web embedded-model embedded-vision clean

setup: $(STAMP)

# The web chat page is tested in a real headless Chromium (Debian's package). Installing it needs
# root and the Debian mirror; without it the browser test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium could not be installed: the web chat browser test will be skipped"

# `openk2 code` runs every shell command inside bubblewrap and refuses to run them without it.
# Installing it needs root and the Debian mirror; without it the sandbox tests skip and say why.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } || \
	  echo "bubblewrap could not be installed: openk2 code will refuse shell commands (or use --no-sandbox)"

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

test: lint browser sandbox
	$(VENV)/bin/pytest

# The main job, offline: serve the embedded model and run an agent swarm over the demo workspace.
demo: setup
	$(VENV)/bin/openk2 demo

# The web app on the embedded model, with the demo workspace's tools: open http://127.0.0.1:8000/
web: setup
	$(VENV)/bin/openk2 serve --tools demo

# Rebuild the embedded model from scratch (~4 h on 2 quiet cores): corpora, eight training
# stages (the last four teach it small talk), export into the package, then its held-out task
# success through `openk2 serve`.
embedded-model: setup
	$(VENV)/bin/openk2 embedded corpus --out data/embedded
	$(VENV)/bin/openk2 embedded corpus --out data/embedded-echo --echo 30000
	$(VENV)/bin/openk2 train --config examples/embedded/stage1.yaml
	$(VENV)/bin/openk2 train --config examples/embedded/stage2.yaml
	$(VENV)/bin/openk2 train --config examples/embedded/stage3.yaml
	$(VENV)/bin/openk2 embedded corpus --out data/embedded-swarm --client 3000 --swarm 4000 \
		--echo 10000 --heldout 1 --seed 3
	$(VENV)/bin/openk2 train --config examples/embedded/stage4.yaml
	$(VENV)/bin/openk2 embedded export runs/embedded-stage4/final
	$(VENV)/bin/openk2 embedded corpus --out data/embedded-chat --client 1200 --swarm 300 \
		--chat 4000 --echo 600 --heldout 1 --seed 5
	$(VENV)/bin/openk2 train --config examples/embedded/stage5.yaml
	$(VENV)/bin/openk2 embedded corpus --out data/embedded-chat2 --client 500 --swarm 700 \
		--chat 1000 --echo 2000 --heldout 1 --seed 6
	$(VENV)/bin/openk2 train --config examples/embedded/stage6.yaml
	$(VENV)/bin/openk2 embedded corpus --out data/embedded-chat3 --client 300 --swarm 800 \
		--chat 600 --echo 1500 --heldout 1 --seed 7
	$(VENV)/bin/openk2 train --config examples/embedded/stage7.yaml
	$(VENV)/bin/openk2 embedded corpus --out data/embedded-chat4 --client 300 --swarm 600 \
		--chat 1200 --echo 1000 --heldout 1 --seed 8
	$(VENV)/bin/openk2 train --config examples/embedded/stage8.yaml
	$(VENV)/bin/openk2 embedded export runs/embedded-stage8/final
	$(VENV)/bin/openk2 embedded eval --tasks data/embedded --report runs/embedded-stage8/eval.json

# Build the embedded model's multimodal sibling `embedded-vl` (~20 min on one busy core): a
# MoonViT-3D tower + projector trained with the shipped text model on seeded synthetic images
# and clips, exported into the package, then its held-out accuracy (200 images, 200 clips).
# Work in progress: this recipe does not yet beat chance (README), so nothing is shipped.
embedded-vision: setup
	$(VENV)/bin/openk2 embedded vision-train --out-dir runs/embedded-vision
	$(VENV)/bin/openk2 embedded export runs/embedded-vision/final
	$(VENV)/bin/openk2 embedded vision-eval --report runs/embedded-vision/heldout.json

clean:
	rm -rf $(VENV)

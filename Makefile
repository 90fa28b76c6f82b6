# One entry point. `make repro` sets everything up and runs the pipeline; `make test` the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock pyproject.toml | sha1sum | cut -c1-12)

export PATH := $(BIN):$(PATH)
export BENTOML_DO_NOT_TRACK := true
export GRADIO_ANALYTICS_ENABLED := False
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro tune test lint format params plots bench serve bento container container-run \
	container-stop clean

setup: $(STAMP)

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as here), every stage,
# server and test process would otherwise compile what it imports again, ten seconds for Evidently.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	awk '/^uv==/{p=1;print;next} p&&/^ /{print;next} {p=0}' requirements.lock > $(VENV)/uv.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(VENV)/uv.txt
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes --compile-bytecode requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

repro: setup
	dvc repro
	@echo
	@echo "Metrics: reports/data.json (and every metric DVC tracks, below)."
	@dvc metrics show

# The tuning search, a pipeline of its own (tuning/dvc.yaml) that `make repro` never runs: writes
# conf/model/tuned.yaml and reports/tuning.html; `dvc exp run -S model=tuned` then trains with it.
tune: setup
	dvc repro tuning/dvc.yaml

test: setup
	pytest

lint: setup
	ruff check .
	ruff format --check .

format: setup
	ruff check --fix .
	ruff format .

params: setup
	python -m credit_scoring.config

# Plots of the workspace against other revisions or experiments, as a page that works offline:
# make plots REVS="main my-experiment"
plots: setup
	python -m credit_scoring.plots .dvc/tmp/offline-plots.html
	dvc plots diff $(REVS) --html-template .dvc/tmp/offline-plots.html -o reports/plots
	@echo "Open reports/plots/index.html"

# The package DVC versions (models/package, from `make repro` or `dvc pull`), put into the BentoML
# model store (idempotent), then served on loopback or built into a Bento.
STORE = python -m credit_scoring.serving.store
PORT ?= 3000
serve: setup
	tag=$$($(STORE)) && CREDIT_SCORING_MODEL=$$tag bentoml serve service:CreditScoring --host 127.0.0.1 --port $(PORT)

bento: setup
	tag=$$($(STORE)) && CREDIT_SCORING_MODEL=$$tag bentoml build

# The Bento built into an image by Docker or Podman, whichever runs here, and tagged with the
# package's version: what `make serve` serves. `make container-run` starts it on loopback, its
# decision record on a volume (RECORDS) and its API key from the environment or a file
# (KEY_FILE, readable by the image's user, uid 1034), never from the image.
ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
IMAGE ?= credit-scoring
CONTAINER ?= credit-scoring
RECORDS ?= credit-scoring-decisions
KEY_FILE ?=
PACKAGE_VERSION = $(shell $(BIN)/python -c 'import json; print(json.load(open("models/package/manifest.json"))["version"])')
READYZ = import urllib.request as u; u.urlopen("http://127.0.0.1:3000/readyz", timeout=2)

container: setup
	tag=$$($(STORE)) && \
	bento=$$(CREDIT_SCORING_MODEL=$$tag bentoml build --output tag) && \
	bentoml containerize $${bento##*__tag__:} --backend $(ENGINE) --image-tag $(IMAGE):$${tag#*:}

container-run:
	$(ENGINE) run --detach --name $(CONTAINER) --publish 127.0.0.1:$(PORT):3000 \
	  --volume $(RECORDS):/home/bentoml/decisions \
	  $(if $(KEY_FILE),--volume $(abspath $(KEY_FILE)):/run/secrets/api-key:ro \
	    --env CREDIT_SCORING_API_KEY_FILE=/run/secrets/api-key,--env CREDIT_SCORING_API_KEY) \
	  --health-cmd 'python -c '"'"'$(READYZ)'"'"'' --health-interval 30s \
	  $(IMAGE):$(PACKAGE_VERSION)
	@echo "Serving $(IMAGE):$(PACKAGE_VERSION) on http://127.0.0.1:$(PORT); records in $(RECORDS)"

container-stop:
	$(ENGINE) stop $(CONTAINER) && $(ENGINE) rm $(CONTAINER)

bench: setup
	python -m benchmarks.synthetic_generation
	python -m benchmarks.history_lift
	python -m benchmarks.aggregate --data data/raw  # at the scale data/raw holds

clean:
	rm -rf $(VENV) data models reports dvclive

# The Gradio screen, a client of the service at CREDIT_SCORING_URL (default http://127.0.0.1:3000).
.PHONY: ui screenshot
ui: setup
	python app_gradio.py

# Render the screen in headless Chromium against a freshly packaged small run: docs/screenshot.png.
screenshot: setup
	CREDIT_SCORING_SCREENSHOT=$(CURDIR)/docs/screenshot.png pytest tests/test_gradio.py -m browser

# DeepCycle Book: two commands.
#   make book   build the environment, run every chapter under book/params/default.yaml, render _build/html
#   make test   unit tests + nbval of the committed chapters + the headless-browser check of the rendered book
# Pins live in the requirements files only (requirements.txt: the package; requirements-book.txt and
# requirements-test.txt: its book and test extras); pyproject.toml reads them, so
# `pip install -e '.[book,test]'` installs exactly those.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deepcycle-installed
PROFILE ?= default
JB_FLAGS ?= -W --keep-going
CHROMIUM ?= /usr/bin/chromium

.PHONY: all book run html model smoke test unit nbval other-cpu browser chromium venv clean distclean help

all: book

help:
	@echo "make book     create .venv if needed, run all chapters (profile $(PROFILE)) in place, build _build/html"
	@echo "make test     unit tests + nbval of book/*.ipynb + headless Chromium check of the rendered book"
	@echo "make model    retrain the reference networks in data/reference/ (the default chapters use them)"
	@echo "make smoke    run all chapters under the smoke profile into data/runs/smoke/ (no build)"
	@echo "make html     render the book from the committed chapters (no execution)"
	@echo "make other-cpu  nbval of the chapters and the simulator's identity again on the x86-64 baseline code paths"
	@echo "make clean    remove _build and the vendored JavaScript; make distclean also removes .venv and data/runs"

# The environment: created once, re-installed only when the pins or the packaging change.
# The package with its book extra (papermill, jupyter-book, ...) and test extra (pytest, nbval), then the
# released peer of chapter 05 (CellCycleNet) without its dependencies: its own pins conflict with ours
# (requirements-peer.txt says why; hash-checked).
REQUIREMENTS := requirements.txt requirements-book.txt requirements-test.txt requirements-peer.txt
venv: $(STAMP)
$(STAMP): $(REQUIREMENTS) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[book,test]'
	$(BIN)/pip install --no-deps --require-hashes -r requirements-peer.txt
	@touch $@

book: run html

run: $(STAMP)
	$(BIN)/deepcycle run --profile $(PROFILE)

html: $(STAMP)
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "open _build/html/index.html"

# The reference networks the default chapters install (data/reference/: weights + card.json). Trains the
# recipe in deepcycle_core.net.reference on the default profile's movie (simulated first if missing), then
# the oracle-label reference (the both network on TRUE ages; only its held-out outputs are kept);
# about 25 min on a 2-core CPU with AMX (bf16, ~900 img/s), about 4 h on a 2-core AVX2-only one (fp32,
# 65-85 img/s): 10 epochs over ~21.7k training cells a network. Commit data/reference/ afterwards.
model: $(STAMP)
	$(BIN)/deepcycle run --profile default --chapters 01_data
	$(BIN)/deepcycle reference train --run data/runs/default
	$(BIN)/deepcycle reference oracle --run data/runs/default

smoke: $(STAMP)
	$(BIN)/deepcycle run --profile smoke

# Headless Chromium for the browser test (Debian's package; we run as root in CI).
chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "NOTE: apt-get is not available and $(CHROMIUM) is missing: the browser test will be skipped"; \
	fi

# The chapters in _toc.yml order, as nbval must execute them (each reads what the previous ones wrote).
# A toc entry without its file fails here rather than silently skipping the notebooks.
LIST_CHAPTERS = $(BIN)/python -c "from deepcycle_core.book.profiles import toc_chapters; import pathlib; r = pathlib.Path.cwd(); print(' '.join(p.relative_to(r).as_posix() for p in toc_chapters(r)))"
NBVAL = --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

test: $(STAMP) chromium
	@chapters="$$($(LIST_CHAPTERS))" || exit 1; \
	echo "pytest: unit tests, browser test, nbval of: $$chapters"; \
	$(BIN)/python -m pytest tests $$chapters $(NBVAL) --durations=30

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not browser"

nbval: $(STAMP)
	@chapters="$$($(LIST_CHAPTERS))" || exit 1; \
	$(BIN)/python -m pytest $$chapters $(NBVAL)

# Another CPU on this one: numpy's dispatch, torch's ATen kernels and oneDNN forced to the x86-64
# baseline (no AVX2, AVX-512 or AMX), so float sums run in another order, as on a user's machine, and a
# figure printed with one digit too many or a digest of float bytes fails here first. The outputs made
# from the networks' float outputs are removed first so that the chapters make them again on this path
# (the simulated stores stay: their crops are integers, pinned by the identity test run here too).
# Override the three variables to emulate something else (see .ci/run).
NPY_DISABLE_CPU_FEATURES ?= X86_V3 X86_V4 AVX512_ICL AVX512_SPR
ATEN_CPU_CAPABILITY ?= default
ONEDNN_MAX_CPU_ISA ?= SSE41
NETWORK_OUTPUTS := embed describe trajectory validate
other-cpu: $(STAMP)
	@chapters="$$($(LIST_CHAPTERS))" || exit 1; \
	for d in $(NETWORK_OUTPUTS); do rm -rf data/runs/default/$$d; done; \
	echo "other CPU: NPY_DISABLE_CPU_FEATURES='$(NPY_DISABLE_CPU_FEATURES)' ATEN_CPU_CAPABILITY=$(ATEN_CPU_CAPABILITY) ONEDNN_MAX_CPU_ISA=$(ONEDNN_MAX_CPU_ISA)"; \
	NPY_DISABLE_CPU_FEATURES="$(NPY_DISABLE_CPU_FEATURES)" ATEN_CPU_CAPABILITY="$(ATEN_CPU_CAPABILITY)" \
	ONEDNN_MAX_CPU_ISA="$(ONEDNN_MAX_CPU_ISA)" \
	$(BIN)/python -m pytest tests/sim/test_conditions_sim.py::test_default_store_identical_to_the_simulator_before_conditions \
		tests/test_other_cpu.py $$chapters $(NBVAL)

browser: $(STAMP) chromium
	$(BIN)/python -m pytest tests/test_browser.py

clean:
	rm -rf _build book/_static/vendor

distclean: clean
	rm -rf $(VENV) data/runs

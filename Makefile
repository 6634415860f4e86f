# ovfkit: `make book` builds the Jupyter Book on the embedded synthetic cohort, `make test` runs the tests.
# Both create the environment (.venv) on first use from requirements.lock; it is re-created only when
# pyproject.toml or requirements.lock change (stamp file).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ovfkit-stamp
MATHJAX := .vendor/node_modules/mathjax/es5/tex-chtml.js
PROFILE ?= default
# Where `make book` works and writes the HTML (defaults: build/<profile> and the repository root).
BUILD_DIR ?=
OUT_DIR ?=
RUN_DIRS := $(if $(BUILD_DIR),--build-dir $(BUILD_DIR)) $(if $(OUT_DIR),--out-dir $(OUT_DIR))

.PHONY: book test env vendor lock bench clean

book: $(STAMP) $(MATHJAX)
	$(BIN)/ovfkit run --modality all --profile $(PROFILE) $(RUN_DIRS)

test: $(STAMP) $(MATHJAX)
	$(BIN)/python -m pytest -n 2 --dist loadfile

env: $(STAMP)

vendor: $(MATHJAX)

# PyRadiomics 3.0.1 does not build in pip's isolated build environment: install its build
# requirements first, then PyRadiomics without isolation, then everything else from the lock.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $$(grep -E '^(numpy|setuptools|wheel|versioneer)==' requirements.lock)
	$(BIN)/python -m pip install -q --no-build-isolation $$(grep -E '^pyradiomics==' requirements.lock)
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# MathJax 3 served from the book itself, so formulas render offline.
$(MATHJAX):
	npm install --silent --no-audit --no-fund --prefix .vendor mathjax@3.2.2

# Re-resolve the newest versions allowed by pyproject.toml in a scratch environment and pin them.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/python -m pip install -q numpy setuptools wheel versioneer
	.lockvenv/bin/python -m pip install -q --no-build-isolation 'pyradiomics==3.0.1'
	.lockvenv/bin/python -m pip install -q '.[test,book,dask]'
	.lockvenv/bin/python -m pip freeze --all --exclude-editable | grep -v -E '^(pip==|ovfkit[ =@])' > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock && rm -rf .lockvenv

# Performance targets live here, not in the tests: each script prints its ratios from one run.
bench: $(STAMP)
	$(BIN)/python benchmarks/radiomics.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/delong.py

clean:
	rm -rf build _build

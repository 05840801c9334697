# Set-up and entry points. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup kernels kernels-all data browser cross run test lint readme-table clean

# torch is pinned here: on our machines 2.13.0 is a local CPU build, while an
# unpinned torch pulls a multi-GB CUDA build. The package itself needs torch>=2.4.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The fused CPU kernels, compiled once per machine into $TORCH_EXTENSIONS_DIR (or
# ~/.cache/torch_extensions): neither the first study run nor a test pays for it.
# A failed build is reported and the pure-PyTorch path runs; `learnact kernels info`
# says why.
kernels: $(STAMP)
	$(BIN)/learnact kernels build || echo "learnact: fused kernels unavailable; see 'learnact kernels info'"

# every variant (baseline, AVX2, AVX-512), so the tests can run each one this CPU can
kernels-all: $(STAMP)
	$(BIN)/learnact kernels build --isa all

setup: $(STAMP) kernels

# Fashion-MNIST from Debian's dataset-fashion-mnist package (where apt exists).
data:
	bash scripts/apt-install.sh dataset-fashion-mnist

# Debian's chromium, for the report page's headless-browser test.
browser:
	bash scripts/apt-install.sh chromium

# A 64-bit ARM cross compiler and qemu, so the tests also run the kernels' NEON
# SIMD layer (tests/test_simd_portable.py; skipped where these are missing).
cross:
	bash scripts/apt-install.sh g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
	  || echo "learnact: no ARM64 cross toolchain; its tests will be skipped"

# The main job: the `quick` study (Fashion-MNIST, LeNet5, 8 activations) and its
# report (learnact-results/report/index.html), then response curves.
run: setup data
	$(BIN)/learnact study --preset quick --report
	$(BIN)/learnact plot relu leaky_relu prelu gelu swish mish dp_relu dual_line --out learnact-plots/curves.png

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint data browser cross kernels-all
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

# Regenerate the README's zoo table from the registry.
readme-table: $(STAMP)
	$(BIN)/python scripts/update_readme_table.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

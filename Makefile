# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv,
# install everything (Debian packages too, when missing), and build the extension.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Debian packages the build and the tests need beyond a stock Python + Rust machine.
DEB_PACKAGES :=
DEPS_STAMP := $(VENV)/.deps-stamp
REFERENCE := empanada-napari==1.2.4

.PHONY: all demo test build deps system-deps rust-test lint stubtest pytest bench clean

all: test

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(DEPS_STAMP): requirements/dev.txt | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/dev.txt
	# The reference implementation (parity oracle) without its stale pins.
	$(PIP) install -q --no-deps $(REFERENCE)
	touch $@

deps: $(DEPS_STAMP)

build: deps
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin develop --release --quiet

demo: build
	$(PY) -m empanada_rs.demo --out out

rust-test:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace --exclude empanada-py

lint: deps
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches

stubtest: build
	$(PY) -m mypy.stubtest empanada_rs._core --allowlist tests/stubtest-allowlist.txt

pytest: build
	$(PY) -m pytest -q -p no:cacheprovider

test: build rust-test lint stubtest pytest

# Side-by-side benchmarks (minutes; the reference is slow). Figures go to benches/RESULTS.md.
bench: build
	cd benches && ../$(PY) bench_panoptic.py
	PYTHONPATH=python $(PY) benches/bench_components.py
	PYTHONPATH=python $(PY) benches/bench_labels.py
	cargo bench -p empanada-core

clean:
	rm -rf target $(VENV) out

# DeepProspect — set-up, demo, tests, lint, benchmarks and the installable zip.
# `make demo` and `make test` install what is missing first (QGIS from apt when running as root, then a
# .venv with the pinned packages), so both work on a fresh Debian/Ubuntu machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

SYSTEM_PYTHON ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QGIS_APT := qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-venv python3-pip git
DEMO_OUT := demo_output
export QT_QPA_PLATFORM := offscreen

.PHONY: help setup qgis demo test test-sid lint bench package clean

help:
	@echo "make demo     run the main job headless on the bundled demo survey (installs what is missing)"
	@echo "make test     run every test (installs what is missing)"
	@echo "make test-sid run every test against QGIS from Debian unstable in a throwaway root file system (root)"
	@echo "make lint     ruff"
	@echo "make bench    benchmarks against gdal_grid, gdal_proximity and QGIS built-ins (SLOW=1 adds the slow QGIS anchors, SCALE=1 the national-size run)"
	@echo "make package  dist/deepprospect.zip for QGIS 'Install from ZIP'"

setup: qgis $(STAMP)

qgis:
	@if $(SYSTEM_PYTHON) -c "import qgis.core, osgeo" 2>/dev/null && command -v gdal_grid >/dev/null \
	    && $(SYSTEM_PYTHON) -c "import ensurepip" 2>/dev/null && command -v git >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "Installing QGIS and GDAL from apt (about 2 minutes)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(QGIS_APT) >/dev/null || exit 1; \
	else \
	  echo "QGIS 3.22+ with its Python bindings is missing. Install it first:"; \
	  echo "  sudo apt-get install $(QGIS_APT)"; exit 1; \
	fi

$(STAMP): requirements.txt requirements-dev.txt | qgis
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	@# keep the numpy QGIS's GDAL bindings were built with (numpy 1 and 2 are not interchangeable for them)
	@$(PY) -c "import numpy; print('numpy==' + numpy.__version__)" > $(VENV)/constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check -c $(VENV)/constraints.txt \
	  -r requirements.txt -r requirements-dev.txt
	@touch $@

demo: setup
	@scripts/demo.sh $(DEMO_OUT)

test: setup
	$(PY) -m pytest

test-sid:
	scripts/test_debian_sid.sh

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) bench/bench_idw.py $(if $(SLOW),--slow)
	$(PY) bench/bench_density.py $(if $(SLOW),--slow)
	$(PY) bench/bench_screening.py
	$(PY) bench/bench_labels.py
	$(PY) bench/bench_training.py
	$(PY) bench/bench_inference.py
	$(PY) bench/bench_dask.py
	$(PY) bench/bench_science.py
	$(if $(SCALE),$(PY) bench/bench_scale.py)

package:
	@rm -rf build/package dist/deepprospect.zip && mkdir -p build/package/deepprospect dist
	@git ls-files -z | grep -zvE '^(tests|bench|scripts|docs|\.ci)/|^\.git|^(Makefile|pyproject.toml|requirements.*)$$' \
	  | xargs -0 -I{} cp --parents {} build/package/deepprospect/
	@cd build/package && python3 -m zipfile -c ../../dist/deepprospect.zip deepprospect
	@echo "dist/deepprospect.zip (Plugins ▸ Manage and Install Plugins ▸ Install from ZIP)"

clean:
	rm -rf build dist $(DEMO_OUT) bench_output .pytest_cache .ruff_cache

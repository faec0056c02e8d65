# splitinf — the two commands a newcomer needs:  `make demo`  and  `make test`.
# Each sets up .venv with pip first (torch/torchvision pinned to the releases the project is tested with).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed

.PHONY: demo test lint test-slow test-readme test-arm bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## demo: edge + emulated LTE uplink + device on the shared person video, once per mode (split, jpeg, local, auto)
demo: $(STAMP)
	$(VENV)/bin/splitinf demo

## test: lint, import layering, then the fast test suite
test: $(STAMP) lint
	$(PY) -m pytest -q

## lint: ruff, and the layering contracts of DESIGN.md §3 (import-linter on a regular, non-editable install)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	rm -rf build/layering && $(PY) -m pip install -q --no-deps --no-compile --target build/layering . 2>/dev/null
	cd build/layering && PYTHONPATH=. ../../$(VENV)/bin/lint-imports ../../.importlinter

## test-slow: the long end-to-end, training and benchmark tests excluded from `make test`
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

## test-readme: every command the README shows, started for real (about 20 minutes)
test-readme: $(STAMP)
	$(PY) -m pytest -q -m readme

## test-arm: splitinf-device on aarch64 under qemu (a user-space built from Debian's and PyPI's packages in
## build/arm) against an x86 edge; the last line is JSON (about 2 minutes, 1 of them downloads on first use)
test-arm: $(STAMP)
	$(VENV)/bin/splitinf bench arm --json

## bench: head ∘ tail is bitwise the unsplit model, for every detector and split point
bench: $(STAMP)
	$(VENV)/bin/splitinf bench split-exact --json

clean:
	rm -rf build $(VENV) .pytest_cache .ruff_cache

# One command installs and runs each job; the virtual environment is rebuilt when requirements change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run run-seq test lint check clean

# Two steps: what running needs (requirements.txt), then what testing and linting add.
$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt requirements-ray.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

## run: install (requirements.txt only), then train the default sweep (model_builder_loop.py); pass options in ARGS="..."
run: $(BIN)/.installed
	$(BIN)/python model_builder_loop.py $(ARGS)

## run-seq: install, then train the same variants block by block (model_builder_seq.py)
run-seq: $(BIN)/.installed
	$(BIN)/python model_builder_seq.py $(ARGS)

## test: install (with requirements-dev.txt: pytest, ruff, Ray, Selenium), then run the whole suite on
## the JAX backend, and the tests that depend on the backend (marked `backend`) again on TensorFlow
test: $(BIN)/.installed-dev
	KERAS_BACKEND=jax $(BIN)/python -m pytest
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest -m backend

## lint: ruff (style, and the size and complexity of functions), then the import contracts
lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

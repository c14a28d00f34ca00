# One command installs and runs each job; the virtual environment is rebuilt when requirements change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# JupyterLab refuses to start as root without --allow-root: many containers and cloud notebooks run so.
AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# make test: the suite's files on parallel workers (pytest-xdist), a file's tests in one worker, so
# that a file's shared runs (module fixtures) are trained once; PARALLEL= runs them one by one.
PARALLEL ?= -n auto --maxprocesses=4 --dist loadfile

.PHONY: run run-seq notebook dashboard test lint check clean

# Two steps: what running needs (requirements.txt), then what testing and linting add.
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .  # the engine, importable from any folder
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

## notebook: install, add JupyterLab to .venv (once), and open notebooks/explore_mnist.ipynb
notebook: $(BIN)/.installed
	$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet jupyterlab
	$(BIN)/jupyter lab $(AS_ROOT) notebooks/explore_mnist.ipynb

## dashboard: add optuna-dashboard to .venv (once) and open a search's study: make dashboard RUN=runs/<id>
dashboard: $(BIN)/.installed
	@test -n "$(RUN)" -a -f "$(RUN)/study.db" || { echo "error: give a searched run folder: make dashboard RUN=runs/<id> (it holds study.db)"; exit 2; }
	$(BIN)/python -c "import optuna_dashboard" 2>/dev/null || $(BIN)/python -m pip install --quiet optuna-dashboard==0.21.0
	$(BIN)/optuna-dashboard "sqlite:///$(abspath $(RUN))/study.db"

## test: install (with requirements-dev.txt: pytest, ruff, Ray, Selenium), then run the whole suite on
## the JAX backend, and the tests that depend on the backend (marked `backend`) again on TensorFlow
test: $(BIN)/.installed-dev
	KERAS_BACKEND=jax $(BIN)/python -m pytest $(PARALLEL)
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest -m backend $(PARALLEL)

## lint: ruff (style, and the complexity of functions), the sizes (a module within 400 lines, a
## function within 60), then the import contracts (the stages' layers)
lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/check_sizes.py explorer common.py model_builder_seq.py model_builder_loop.py
	$(BIN)/lint-imports

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

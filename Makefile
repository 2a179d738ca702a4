# The two commands a newcomer needs: `make run` and `make test`. Both set everything up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: run test install openapi admin clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

run: install  ## Serve the API on http://127.0.0.1:$(PORT) with AWS emulated locally.
	PORT=$(PORT) $(BIN)/python scripts/local_stack.py

test: install  ## Lint and type-check, then run every test.
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2

openapi: install  ## Regenerate the OpenAPI component schemas from the pydantic models.
	$(BIN)/python scripts/gen_openapi.py

admin: install  ## Operator command, e.g. make admin ARGS="list"
	$(BIN)/python scripts/dispatch_admin.py $(ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache .hypothesis .mypy_cache

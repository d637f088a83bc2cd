# Lorebase: `make run` and `make test` work from a fresh clone; both install what they need.
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
POETRY := $(TOOLS)/bin/poetry
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export POETRY_VIRTUALENVS_IN_PROJECT := true
export POETRY_VIRTUALENVS_CREATE := true
export POETRY_NO_INTERACTION := 1

.PHONY: install run test lint fmt bench clean chromium

install: $(STAMP)

$(POETRY):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "poetry>=2.0,<3"

# Re-install only when the lock or the project metadata changed.
$(STAMP): $(POETRY) poetry.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(POETRY) install --with dev --no-interaction
	@# Bytecode once, here: with PYTHONDONTWRITEBYTECODE set (as on the build machines) every
	@# `lorebase serve` would compile the whole dependency tree again (11 CPU s, 5 with this).
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib src > /dev/null || true
	@touch $(STAMP)

run: install
	$(BIN)/lorebase serve

lint: install
	$(BIN)/ruff check src tests bench clients
	$(BIN)/black --check src tests bench clients
	$(BIN)/mypy --strict src
	$(BIN)/mypy --strict clients/python/src
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff check --fix src tests bench clients
	$(BIN)/black src tests bench clients

# The browser tests (tests/browser) drive Debian's chromium; as root (CI) it is installed when
# missing. Without it those tests fail with a message saying so; they never skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || test -x "$${CHROMIUM:-/usr/bin/chromium}" || \
	{ if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: sudo apt-get install -y chromium (browser tests need it)"; fi; }

test: lint chromium
	$(BIN)/pytest -q

bench: install
	$(BIN)/lorebase bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

# Two commands do everything on a fresh machine with Python 3.11:
#   make lab    set up .venv, then JupyterLab on the course
#   make test   set up .venv, then the whole test suite
#   make site   the course as a static website in _build/site/ (prints its index.html)
# The set-up (make venv) is idempotent: it re-installs only when a
# requirements file or pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader and friends call tools (alembic, jupyter) from PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv lab test lint clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-site.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed, found " + sys.version' \
		|| { echo "Set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -c 'import torch, metalearn_lib; print("torch", torch.__version__, "| metalearn_lib ready")'
	touch $@

# Jupyter refuses to run as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: venv
	$(BIN)/jupyter lab $(ALLOW_ROOT) --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/course

test: venv lint
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# --- the course website (website/build.py; requirements-site.txt) -----------
.PHONY: site

site: venv  ## every chapter executed (cached in _build/chapter-cache/) -> _build/site/index.html
	$(BIN)/python website/build.py

# --- benchmarks (results: docs/benchmarks.md; see benchmarks/run_all.py) -----
.PHONY: bench bench-quick

bench: venv  ## full benchmarks (one to two hours on 2 cores): rewrites docs/benchmarks.md and docs/benchmarks/
	$(BIN)/pip install -q -r requirements-bench.txt  # JAX for speed.py's JAX column (optional elsewhere)
	$(BIN)/python benchmarks/run_all.py

bench-quick: venv  ## every benchmark with tiny settings, into a temporary folder (< 1 min)
	$(BIN)/python benchmarks/run_all.py --quick

# --- nbgrader (instructors; see docs/instructor_guide.md) -------------------
# Run from the repository root, which is the nbgrader course root; "*" means
# every assignment in solutions/ (inner_loop, first_order, variants_quiz, variants).
.PHONY: release autograde feedback grades

release: venv  ## solutions/ -> exercises/ (student versions)
	$(BIN)/nbgrader generate_assignment "*" --force

autograde: venv  ## grade submitted/; a broken submission fails alone (non-zero exit at the end)
	$(BIN)/nbgrader autograde "*"

feedback: venv  ## feedback/<student>/<assignment>/*.html from autograded/
	$(BIN)/nbgrader generate_feedback "*"

grades: venv  ## every student's scores -> grades.csv
	$(BIN)/nbgrader export --to grades.csv

# --- JupyterHub for a class (docs/classroom.md) -------------------------------
# configurable-http-proxy from the npm registry (Node.js >= 20), into .hub-node/.
CHP_VERSION := 5.2.0

.PHONY: hub-proxy hub

hub-proxy:  ## install JupyterHub's proxy into .hub-node/ (needs npm)
	@test "$$(.hub-node/node_modules/.bin/configurable-http-proxy --version 2>/dev/null)" = "$(CHP_VERSION)" \
		|| npm install --prefix .hub-node --no-audit --no-fund --no-save --no-package-lock \
			configurable-http-proxy@$(CHP_VERSION)

hub: venv hub-proxy  ## JupyterHub on 127.0.0.1:8000; set COURSE_HUB_PASSWORD and COURSE_HUB_USERS
	$(BIN)/jupyterhub -f jupyterhub_config.py

# A class with one OS account per person (as root; docs/classroom.md, section 6).
CLASS_ROOT ?= /srv/maml-class
.PHONY: class class-hub

class: venv  ## as root: accounts, groups, folders and permissions from ROSTER=roster.csv
	@test -n "$(ROSTER)" || { echo "usage: sudo make class ROSTER=roster.csv [CLASS_ROOT=$(CLASS_ROOT)]"; exit 2; }
	$(BIN)/python classroom/class_setup.py create "$(ROSTER)" --root "$(CLASS_ROOT)"

class-hub: venv hub-proxy  ## as root: the class's hub (PAM logins, each server as its own user)
	COURSE_HUB_MODE=isolated COURSE_CLASS_ROOT="$(CLASS_ROOT)" $(BIN)/jupyterhub -f jupyterhub_config.py

# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"
SHELL  := /bin/bash
# pandas 2 beside the venv's pandas 3: pyproject admits both lines, so the data stages are tested on both
PANDAS2 := $(VENV)/pandas2

.PHONY: demo test test-fast docs pull install clean screenshots

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing segbench and its dependencies into $(VENV) (a few minutes; log: $(VENV)/install.log)"
	@$(BIN)/pip install -e '.[test]' > $(VENV)/install.log 2>&1 || { tail -n 30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

$(PANDAS2): | $(STAMP)
	@$(BIN)/pip install --quiet --no-deps --target $(PANDAS2) 'pandas>=2.1,<3' pytz >> $(VENV)/install.log 2>&1

demo: $(STAMP)
	@# Snakemake records what it made in dvc.lock when it finishes (the Snakefile's onsuccess), so `dvc status`
	@# and `snakemake -n` both have nothing to do afterwards. One line per finished job here, the rest in the log.
	@echo "running the demo sweep: snakemake --cores all (log: logs/demo.log)"
	@mkdir -p logs; set -o pipefail; $(RUN) snakemake --cores all --quiet rules host reason 2>&1 | tee logs/demo.log \
		| { grep --line-buffered -E "^[0-9]+ of [0-9]+ steps|^Nothing to be done" || true; } \
		|| { tail -n 40 logs/demo.log; exit 1; }
	@$(RUN) segbench results
	@echo "The commands in the README run in the project's environment: source $(BIN)/activate"

screenshots: demo  # the README's pictures of the demo's report and Bone Detect, in headless Chromium
	$(RUN) python docs/screenshots.py

test: $(STAMP) $(PANDAS2)  # every tier: unit, integration, e2e (real snakemake, dvc, Slurm, Chromium, LibreOffice)
	@# a module per worker at a time, in collection order: the few long end-to-end modules (tests/e2e) first;
	@# xdist's default order (most tests first) left the one-test Slurm module alone at the end
	$(RUN) pytest --numprocesses auto --maxprocesses 4 --dist loadscope --no-loadscope-reorder
	@# the data stages again on pandas 2 (the venv has pandas 3)
	PYTHONPATH=$(PANDAS2) $(RUN) python -c "import pandas; assert pandas.__version__ < '3', pandas.__version__"
	PYTHONPATH=$(PANDAS2) $(RUN) pytest -m data --quiet -p no:cacheprovider

test-fast: $(STAMP)  # the unit tier: no training, no pipeline tools
	$(RUN) pytest -n auto tests/unit

docs: $(STAMP)  # the reference pages from the code, then the site (site/), strictly
	$(RUN) python docs/generate.py
	$(RUN) mkdocs build --strict

pull: $(STAMP)  # a collaborator's clone: data and models from the DVC remote, nothing left to rerun
	$(RUN) workflow/scripts/pull

clean:
	rm -rf data results/*/ logs .snakemake

# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test pull install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores all
	@# record what Snakemake made in dvc.lock, so `dvc status` and `dvc repro` see it as up to date
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc commit --force --quiet || echo "(not a DVC repository: dvc.lock not written)"
	@echo "Report: $(CURDIR)/results/report/report.html (tables: comparison.md, comparison.xlsx)"

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" pytest

pull: $(STAMP)  # a collaborator's clone: data and models from the DVC remote, nothing left to rerun
	PATH="$(CURDIR)/$(BIN):$$PATH" workflow/scripts/pull

clean:
	rm -rf data results/runs results/report logs .snakemake

# Two commands do all the set-up:  `make demo`  and  `make test`.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.synfield-installed
RUN     ?= runs/perceptron

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@py=$$(tools/find-python) || exit 1; \
	  [ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[fem,test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/synfield run -o $(RUN)

test: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -m "not mpi"
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout 900 $(BIN)/mpiexec -n 2 $(BIN)/python -m pytest -m mpi -p no:cacheprovider -q

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) runs .pytest_cache

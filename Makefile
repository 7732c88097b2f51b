# operascope — every target creates .venv and installs the project into it first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export QT_QPA_PLATFORM ?= offscreen

.PHONY: install run test bench gui clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# run: a 2C charge to the 4.3 V cut-off (~28 min of rig time) at the experiment's 10 Hz, 15x real time: the
# simulated camera (rendered on this CPU) makes 150 frames per wall second; the acquisition takes about 2 min.
run: $(STAMP)
	$(BIN)/operascope devices
	$(BIN)/operascope acquire --out runs/demo.h5 --protocol charge --c-rate 2 --duration 1800 --fps 10 --speed 15 --bin 20 --focus-lock --seed 1
	$(BIN)/operascope analyze runs/demo.h5 --out runs/demo_report

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

gui: $(STAMP)
	QT_QPA_PLATFORM= $(BIN)/operascope gui

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

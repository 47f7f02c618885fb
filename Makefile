# The two entry points of the project. Both create .venv on first use.
PYTHON := .venv/bin/python

.PHONY: eval test test-fast benchmark export setup

setup:
	@bash scripts/setup_env.sh

# Score the exported SmolLM2 model against the HF reference (teacher forcing).
eval: setup
	$(PYTHON) eval.py models/HuggingFaceTB/SmolLM2-135M-Instruct/n150/functional/model.py

# Everything CI runs: the unit tests, the full eval on the real weights and the notebooks.
# pytest exits with 5 when it collects no tests, which is not a failure of the code under test.
test: setup
	$(PYTHON) -m pytest -q --run-slow tests || [ $$? -eq 5 ]

# The fast subset that `python -m pytest -q` runs by default.
test-fast: setup
	$(PYTHON) -m pytest -q tests

benchmark: setup
	$(PYTHON) benchmarks/bench_emulator.py
	$(PYTHON) benchmarks/bench_eval.py

export: setup
	$(PYTHON) scripts/export_model.py

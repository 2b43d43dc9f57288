# Targets mirror CI (.ci/run).
.PHONY: setup test lint format train bench-throughput

setup:
	bash scripts/setup.sh

lint:
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/python -m csml.devtools.layers

format:
	.venv/bin/ruff check --fix src tests benchmarks
	.venv/bin/ruff format src tests benchmarks

test:
	.venv/bin/python -m pytest

test-slow:
	.venv/bin/python -m pytest -m slow

train:
	.venv/bin/csml train experiment=intent_banking77

bench-throughput:
	.venv/bin/python benchmarks/train_throughput.py

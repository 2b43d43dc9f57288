#!/usr/bin/env bash
# Starts (up) or stops (down) the team stack locally without Docker: PostgreSQL (databases mlflow and
# optuna) and an MLflow server on it, on 127.0.0.1. deploy/compose.yaml is the same stack with Docker.
#   scripts/local_team_stack.sh up   [--dir /tmp/csml-team-stack] [--pg-port 55432] [--mlflow-port 5000]
#   source /tmp/csml-team-stack/env  # CSML_PG_PASSWORD and MLFLOW_TRACKING_URI
#   scripts/local_team_stack.sh down [--dir /tmp/csml-team-stack]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m csml.team.local_stack "$@"

"""Team infrastructure: the local PostgreSQL + MLflow server stack (deploy/compose.yaml without Docker)."""

"""MLflow tracking: runs, config and dataset logging, pyfunc models and the model registry."""

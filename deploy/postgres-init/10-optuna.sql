-- Optuna's study storage lives beside MLflow's backend store, owned by the same user.
CREATE DATABASE optuna OWNER csml;

"""Hyper-parameter sweeps: Optuna studies over ``csml train`` (``csml sweep``), shared through an RDB storage."""

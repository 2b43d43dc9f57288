"""The toolkit below csml's pipelines: ``csml train`` and ``csml train-response`` are built from it, and the
commands that track their own work (``csml eval``, ``promote``, ``audit``, ``calibrate-judge``) use parts.

- :mod:`csml.pipeline.runs`: opening or resuming a pipeline's MLflow run (its id kept in
  :data:`~csml.pipeline.runs.RUN_ID_FILE`), and the git commit a run records.
- :mod:`csml.pipeline.fitting`: readying a pipeline (offline settings, seeds, output folder, the checkpoint to
  resume from), fitting a LightningModule with the configured Trainer, restoring its best weights.
- :mod:`csml.pipeline.results`: what a pipeline leaves in its run: evaluation metrics, reports and
  per-sample rows, the best checkpoint, the registered model.

A training pipeline reads as a recipe of these::

    output_dir, ckpt_path = setup_pipeline(cfg)
    ...                                              # data and model
    with tracked_run(cfg, output_dir, model_kind, identity) as run:
        trainer = fit(cfg, model, datamodule, run.info.run_id, ckpt_path)
        best = load_best_weights(trainer, model)
        ...                                          # its own evaluation, logged with log_...
        log_best_checkpoint(best)
        ...                                          # save the model, log it to registered_name(cfg.tracking)
        return metrics, logged_model_result(run, info, registered, headline, ...)
"""

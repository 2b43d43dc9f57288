"""``csml eval``: score a registered MLflow model or a csml checkpoint on a dataset config."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from csml.config import apply_offline_env

if TYPE_CHECKING:
    from csml.data.splits import DatasetSplits
    from csml.evaluation import Evaluation

log = logging.getLogger(__name__)


def eval_model(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores ``cfg.model_uri`` or ``cfg.ckpt_path`` on ``cfg.data``'s splits and logs an MLflow run.

    Logs the same metric names, reports and plots as ``csml train``'s evaluation.
    """
    from hydra.utils import instantiate

    from csml.evaluation import card_decision_rule
    from csml.tracking.runs import log_config, mlflow_run, setup_tracking
    from csml.train import git_commit

    apply_offline_env(cfg.offline)
    if (cfg.model_uri is None) == (cfg.ckpt_path is None):
        raise ValueError(
            "csml eval needs exactly one of model_uri=<MLflow model URI> or ckpt_path=<checkpoint>"
        )
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    splits = instantiate(cfg.data.source).load(cfg.data.label_field)
    threshold = cfg.evaluation.oos_threshold
    oos_label = cfg.data.get("oos_label")
    if cfg.model_uri is not None:
        setup_tracking(cfg.tracking)  # models:/ URIs resolve against the configured registry
        model = load_text_classifier(cfg.model_uri)
        net, tokenizer, labels, max_length = (
            model.net,
            model.tokenizer,
            model.labels,
            model.card["max_length"],
        )
        scorer, card = model.oos_scorer, model.card
        if threshold == "auto" and cfg.evaluation.get("oos_score") is None:
            threshold = model.card.get("oos_threshold")
    else:
        net, tokenizer, labels = _checkpoint_model(cfg.ckpt_path)
        max_length, scorer, card = cfg.data.max_length, None, None
    positive_label, decision_threshold = card_decision_rule(
        labels,
        card,
        cfg.evaluation.get("decision_threshold", "auto"),
        cfg.evaluation.get("positive_label"),
    )
    if cfg.evaluation.get("oos_score") is not None or scorer is None:
        scorer = _fit_scorer(cfg.evaluation, net, tokenizer, max_length, labels, oos_label, splits)

    def predict_scored(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from csml.models.components.oos_scorers import softmax

        features, logits = net.encode_texts(tokenizer, texts, max_length)
        return softmax(logits), scorer.score(features, logits)

    tags = {
        "csml.task": "eval",
        "csml.evaluated_model": str(cfg.model_uri or cfg.ckpt_path),
        "csml.git_commit": git_commit(),
    }
    with mlflow_run(
        cfg.tracking, cfg.get("run_name"), output_dir / "mlflow_run.json", tags, resume=False
    ) as run:
        log_config(cfg)
        evaluation = log_evaluation(
            splits,
            cfg.splits,
            labels,
            None,
            oos_label,
            threshold,
            output_dir / "evaluation",
            oos_min_recall=cfg.evaluation.get("oos_min_recall"),
            predict_scored=predict_scored,
            oos_score=scorer.name,
            oos_in_scope_acceptance=cfg.evaluation.get("oos_in_scope_acceptance"),
            positive_label=positive_label,
            decision_threshold=decision_threshold,
        )
        log.info("metrics: %s", {k: round(v, 4) for k, v in evaluation.metrics.items() if k.count("/") == 1})
        return evaluation.metrics, {"run_id": run.info.run_id, "evaluation": evaluation}


def log_evaluation(
    splits: DatasetSplits,
    split_names: Sequence[str],
    labels: list[str],
    predict_proba: Callable[[list[str]], np.ndarray] | None,
    oos_label: str | None,
    oos_threshold: float | str | None,
    out_dir: Path,
    oos_min_recall: float | None = None,
    *,
    predict_scored: Callable[[list[str]], tuple[np.ndarray, np.ndarray]] | None = None,
    oos_score: str = "softmax",
    oos_in_scope_acceptance: float | None = None,
    positive_label: str | None = None,
    decision_threshold: float | str | None = None,
) -> Evaluation:
    """Scores a model on ``split_names`` of ``splits`` and logs it to the active MLflow run.

    Logs the dataset identity, the metrics, and the reports and plots of
    :func:`csml.evaluation.write_reports` (written under ``out_dir``, logged under ``evaluation/``).
    Shared by ``csml eval`` and ``csml promote``. ``predict_scored`` (texts to probabilities and in-scope
    OOS scores named ``oos_score``) replaces ``predict_proba`` for models with an OOS scorer.
    ``positive_label`` and ``decision_threshold`` (from :func:`csml.evaluation.card_decision_rule`) apply a
    two-label model's decision threshold instead of the argmax, as its users do.
    """
    import mlflow

    from csml.evaluation import evaluate, write_reports
    from csml.tracking.runs import log_dataset_identity

    log_dataset_identity(splits.identity())
    if (predict_proba is None) == (predict_scored is None):
        raise ValueError("log_evaluation needs exactly one of predict_proba and predict_scored")
    texts = {split: [r.text for r in splits[split]] for split in split_names}
    scores_by_split = None
    if predict_scored is not None:
        scored = {split: predict_scored(split_texts) for split, split_texts in texts.items()}
        probs_by_split = {split: probs for split, (probs, _) in scored.items()}
        scores_by_split = {split: scores for split, (_, scores) in scored.items()}
    else:
        probs_by_split = {split: predict_proba(split_texts) for split, split_texts in texts.items()}
    evaluation = evaluate(
        {split: (splits[split], probs) for split, probs in probs_by_split.items()},
        labels,
        splits.label_field,
        oos_label=oos_label,
        oos_threshold=oos_threshold,
        oos_min_recall=oos_min_recall,
        oos_scores_by_split=scores_by_split,
        oos_score=oos_score,
        oos_in_scope_acceptance=oos_in_scope_acceptance,
        positive_label=positive_label,
        decision_threshold=decision_threshold,
    )
    mlflow.log_metrics(evaluation.metrics)
    for path in write_reports(evaluation, out_dir):
        mlflow.log_artifact(str(path), "evaluation")
    return evaluation


def load_registered_model(model_uri: str) -> tuple[list[str], Any, dict[str, Any]]:
    """Loads a csml classifier from an MLflow model URI: its labels, ``predict_proba`` and model card."""
    model = load_text_classifier(model_uri)
    return model.labels, model.predict_proba, model.card


def load_text_classifier(model_uri: str) -> Any:
    """The :class:`~csml.tracking.pyfunc.TextClassifierModel` logged at an MLflow model URI."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()


def _fit_scorer(
    evaluation_cfg: DictConfig,
    net: Any,
    tokenizer: Any,
    max_length: int,
    labels: list[str],
    oos_label: str | None,
    splits: DatasetSplits,
) -> Any:
    """The OOS scorer ``evaluation.oos_score`` names (default softmax), fitted on the data's train split
    when it needs training features (for models saved without it, or to compare scores)."""
    from csml.evaluation import label_indices
    from csml.models.components.oos_scorers import make_oos_scorer

    scorer = make_oos_scorer(
        evaluation_cfg.get("oos_score") or "softmax",
        labels,
        oos_label,
        evaluation_cfg.get("oos_score_params"),
    )
    if scorer.fitted_from_features:
        train = splits["train"]
        features, _ = net.encode_texts(tokenizer, [r.text for r in train], max_length)
        scorer.fit(features, label_indices(train, splits.label_field, labels))
    return scorer


def _checkpoint_model(ckpt_path: str) -> tuple[Any, Any, list[str]]:
    import torch

    from csml.models.classifier import SequenceClassifier
    from csml.models.components.encoder_classifier import load_tokenizer

    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    model = SequenceClassifier.load_from_checkpoint(
        ckpt_path, map_location="cpu", optimizer=torch.optim.AdamW
    )
    model.eval()
    tokenizer = load_tokenizer(model.hparams.backbone, model.hparams.get("gguf_file"))
    return model.net, tokenizer, model.labels

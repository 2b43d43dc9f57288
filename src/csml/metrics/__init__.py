"""Evaluation metrics for csml classifiers: accuracy/F1, calibration, journey slices, OOS detection, plots.

Everything here takes numpy arrays (class indices, softmax probabilities) and returns plain floats or
PNG paths; importing the package loads only numpy (matplotlib is imported when a plot is drawn).
"""

from __future__ import annotations

from csml.metrics.calibration import (
    ReliabilityBins,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from csml.metrics.classification import compute_classification_metrics, per_class_report
from csml.metrics.oos import choose_oos_threshold, oos_scores, predict_with_oos
from csml.metrics.plots import plot_confusion_matrix, plot_reliability_diagram, plot_slice_bars

__all__ = [
    "ReliabilityBins",
    "choose_oos_threshold",
    "compute_classification_metrics",
    "expected_calibration_error",
    "negative_log_likelihood",
    "oos_scores",
    "per_class_report",
    "plot_confusion_matrix",
    "plot_reliability_diagram",
    "plot_slice_bars",
    "predict_with_oos",
    "reliability_bins",
]

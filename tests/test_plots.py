"""csml.metrics.plots writes real PNGs, sized for the label count, quickly enough for every run."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest

from csml.metrics.classification import compute_classification_metrics
from csml.metrics.plots import plot_confusion_matrix, plot_reliability_diagram, plot_slice_bars

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height in pixels from a PNG's IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_confusion_matrix_for_150_labels_is_large_png_written_quickly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = [f"intent_with_a_long_name_{i}" for i in range(150)]
    y_true = rng.integers(0, 150, size=3000)
    y_pred = np.where(rng.random(3000) < 0.8, y_true, rng.integers(0, 150, size=3000))

    start = time.perf_counter()
    out = plot_confusion_matrix(y_true, y_pred, labels, tmp_path / "figs" / "cm.png")
    elapsed = time.perf_counter() - start

    assert out == tmp_path / "figs" / "cm.png"
    width, height = png_size(out)
    assert width > 2500 and height > 2500  # about 0.15 inch per label at 120 dpi
    assert out.stat().st_size > 50_000
    assert elapsed < 30


def test_small_confusion_matrix_of_counts_is_annotated(tmp_path: Path) -> None:
    y_true = np.array([0, 0, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0])

    out = plot_confusion_matrix(
        y_true, y_pred, ["a", "b", "c"], tmp_path / "cm.png", normalize=False, title="T"
    )

    width, height = png_size(out)
    assert 500 < width < 1500 and 500 < height < 1500
    assert out.stat().st_size > 5_000


def test_reliability_diagram_writes_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=400)
    y_true = rng.integers(0, 5, size=400)

    out = plot_reliability_diagram(probs, y_true, tmp_path / "reliability.png", n_bins=10)

    width, height = png_size(out)
    assert (width, height) == (720, 840)  # 6 x 7 inches at 120 dpi
    assert out.stat().st_size > 10_000


def test_slice_bars_plot_stage_metric_from_computed_metrics(tmp_path: Path) -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    metrics = compute_classification_metrics(
        np.array([0, 1, 1, 1]), probs, ["neg", "pos"], prefix="test", stages=["support", "retention"] * 2
    )

    out = plot_slice_bars(metrics, "test", "stage", "accuracy", tmp_path / "stage_accuracy.png")

    png_size(out)
    assert out.stat().st_size > 5_000


def test_slice_bars_name_what_is_available_when_nothing_matches(tmp_path: Path) -> None:
    metrics = {"test/stage/support/accuracy": 0.5, "test/stage/support/count": 2.0}

    with pytest.raises(ValueError, match=r"no 'test/channel/<slice>/accuracy' entries"):
        plot_slice_bars(metrics, "test", "channel", "accuracy", tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\['accuracy', 'count'\]"):
        plot_slice_bars(metrics, "test", "stage", "macro_f1", tmp_path / "x.png")


def test_plots_refuse_non_png_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must end in \.png"):
        plot_confusion_matrix(np.array([0, 1]), np.array([0, 1]), ["a", "b"], tmp_path / "cm.jpg")
    assert not (tmp_path / "cm.jpg").exists()
